"""Write services on a lab recheck: a clinician closes it by hand (RULES §10 V-10).

A recheck closed by hand keeps its note and author, and the engine's re-plan never reopens it
(planning.sync_plan leaves rows with a close note alone).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone as djtz

from regimens.models import LabRecheck, RecheckStatus
from regimens.services.planning import recorded_by
from tracker import events
from tracker.errors import ConflictError, ServiceError

OPEN = (RecheckStatus.DUE, RecheckStatus.OVERDUE)


def _close(*, recheck: LabRecheck, status: str, text: str, field: str, user: Any) -> LabRecheck:
    text = (text or "").strip()
    if not text:
        raise ServiceError(field, "is required")
    with transaction.atomic():
        recheck = LabRecheck.objects.select_for_update().get(pk=recheck.pk)
        if recheck.status == status and recheck.close_note == text:
            return recheck  # the same request again
        if recheck.status not in OPEN:
            raise ConflictError("status", f"the recheck is already {recheck.get_status_display().lower()}")
        recheck.status = status
        recheck.close_note = text[:500]
        recheck.closed_by = recorded_by(user)
        update = ["status", "close_note", "closed_by"]
        if status == RecheckStatus.DONE:
            recheck.completed_at = djtz.now()
            update.append("completed_at")
        recheck.save(update_fields=update)
        # The §3.3 "overdue test" alert closes on the next evaluation once no recheck is left overdue.
        events.announce_on_commit("patient.changed", patient_id=recheck.patient_id)
    return recheck


def recheck_complete(*, recheck: LabRecheck, note: str, user: Any = None) -> LabRecheck:
    """Done without a result here (drawn elsewhere): the note says where and when."""
    return _close(recheck=recheck, status=RecheckStatus.DONE, text=note, field="note", user=user)


def recheck_cancel(*, recheck: LabRecheck, reason: str, user: Any = None) -> LabRecheck:
    """No longer needed: the reason says why."""
    return _close(recheck=recheck, status=RecheckStatus.CANCELLED, text=reason, field="reason", user=user)
