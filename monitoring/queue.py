"""The monitoring rules of a patient run by a Celery worker after a write (COBALT_EVALUATE_IN_WORKER).

An API request that stores a result, records a dose or a fact answers at the speed of its write: inside its
transaction it writes a PendingEvaluation marker (monitoring/listeners.py, `listen_in_transaction`), and once it
commits it queues `monitoring.evaluate_patient` for a worker. The worker runs monitoring.evaluation.evaluate_patient
(the same code a page runs at once) and deletes the marker it read. So nothing is lost:

- the broker refuses the task: the rules run at once, in the request, as they would without a worker;
- the task is lost (a worker killed mid-task, a broker restart): the marker stays, and the "evaluations" sweep
  (every minute) runs the rules of every marker older than COBALT_EVALUATION_RETRY_AFTER_SECONDS;
- a second write while the worker runs: the worker deletes only the token it read before it started, so the
  second write's marker stays for its own task (READ COMMITTED: an evaluation that starts after a token was
  committed reads that write's rows).

Web pages run the rules before they answer (tracker.events.at_once, tracker.middleware.AtOnceMiddleware), and so
does the test suite (COBALT_EVALUATE_IN_WORKER=False in tracker/settings/test.py).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db import connection
from django.utils import timezone as djtz

from monitoring import evaluation
from monitoring.models import PendingEvaluation
from patients.models import Patient
from tracker import events
from tracker.sweeps import register

log = logging.getLogger(__name__)

# The "evaluations" sweep evaluates at most this many markers per run (oldest first); the rest wait a minute.
SWEEP_LIMIT = 1000


def in_worker() -> bool:
    """Whether the rules of a write go to a worker: the setting is on and nobody waits for them (at_once)."""
    return bool(settings.COBALT.get("EVALUATE_IN_WORKER")) and not events.wanted_at_once()


# Written out: bulk_create(update_conflicts=True) took three times as long to build the statement as PostgreSQL to run
# it, on the path of every write that queues the rules (issue 16). PostgreSQL and SQLite both take it.
_MARK = (
    "INSERT INTO {table} (patient_id, token, requested_at) VALUES (%s, %s, %s) ON CONFLICT (patient_id)"
    " DO UPDATE SET token = excluded.token, requested_at = excluded.requested_at"
)


def mark(patient_id: int) -> None:
    """The patient's marker, inside the caller's transaction (a new token each time); one INSERT ... ON CONFLICT."""
    token = PendingEvaluation._meta.get_field("token").get_db_prep_value(uuid.uuid4(), connection)
    with connection.cursor() as cursor:
        cursor.execute(
            _MARK.format(table=PendingEvaluation._meta.db_table),
            [patient_id, token, connection.ops.adapt_datetimefield_value(djtz.now())],
        )


def dispatch(patient_id: int) -> None:
    """Queue the evaluation for a worker (after the commit); with the broker down, run it here instead."""
    try:
        evaluate_patient_task.delay(patient_id)
    except Exception:
        log.exception("could not queue the monitoring rules of patient %s: running them here", patient_id)
        run(patient_id)


def run(patient_id: int) -> bool:
    """Run the patient's rules if a marker is there; delete the marker read. False when there was none (another
    run evaluated them after the write committed) or the patient is gone."""
    token = PendingEvaluation.objects.filter(patient_id=patient_id).values_list("token", flat=True).first()
    if token is None:
        return False
    try:
        evaluation.evaluate_patient(patient_id)
    except Patient.DoesNotExist:
        return False  # deleted since: its marker went with it (CASCADE)
    PendingEvaluation.objects.filter(patient_id=patient_id, token=token).delete()
    return True


@shared_task(name="monitoring.evaluate_patient", acks_late=True)
def evaluate_patient_task(patient_id: int) -> bool:
    # acks_late: a worker killed mid-evaluation leaves the message for another (the evaluation is idempotent, and
    # one transaction); the marker and the sweep cover a message lost with the broker.
    return run(patient_id)


@register("evaluations", once=True)
def evaluations_sweep(at: datetime) -> dict[str, int]:
    """The markers whose task was lost: older than COBALT_EVALUATION_RETRY_AFTER_SECONDS at `at`, oldest first.
    A patient whose evaluation fails keeps its marker (logged) and does not hold up the others."""
    cutoff = at - timedelta(seconds=int(settings.COBALT.get("EVALUATION_RETRY_AFTER_SECONDS", 60)))
    ids = list(
        PendingEvaluation.objects.filter(requested_at__lte=cutoff)
        .order_by("requested_at")
        .values_list("patient_id", flat=True)[:SWEEP_LIMIT]
    )
    counts = {"evaluations_retried": 0, "evaluations_failed": 0}
    for patient_id in ids:
        try:
            counts["evaluations_retried"] += int(run(patient_id))
        except Exception:
            log.exception("the monitoring rules of patient %s failed; its marker stays for the next run", patient_id)
            counts["evaluations_failed"] += 1
    return counts
