"""Monitoring's one table: the patients whose rules must run again (monitoring/queue.py)."""

from __future__ import annotations

from django.db import models


class PendingEvaluation(models.Model):
    """A patient whose monitoring rules have not yet run over a committed change (a result, a dose, a fact).

    Written in the same transaction as the change, so a change never commits without it; a Celery worker runs
    the rules and deletes it (monitoring/queue.py). One row per patient: a second change before the worker
    gets there replaces the token, and the worker deletes only the token it read before evaluating, so a change
    committed while it ran keeps its marker. A marker older than COBALT_EVALUATION_RETRY_AFTER_SECONDS (its task
    was lost) is evaluated by the "evaluations" sweep."""

    patient = models.OneToOneField(
        "patients.Patient", on_delete=models.CASCADE, primary_key=True, related_name="pending_evaluation"
    )
    token = models.UUIDField()
    requested_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "pending evaluation"

    def __str__(self) -> str:
        return f"patient {self.patient_id} since {self.requested_at:%Y-%m-%d %H:%M:%S}"
