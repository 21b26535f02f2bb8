"""Alert services: raise, resolve, acknowledge. One unresolved alert per patient and kind.

`alert_raise` must run inside the transaction of the event that causes the alert; it announces
"alert.opened" (and "alert.severity_raised") through tracker/events.py, whose listeners run in that same
transaction, so the staff notification rows (notifications/staff.py) are written atomically with the
alert.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.models import SEVERITY_RANK, Alert, AlertStatus
from patients.models import Patient
from tracker import events


def alert_raise(
    *,
    patient: Patient,
    kind: str,
    severity: str,
    message: str,
    action_text: str = "",
    evidence: dict[str, Any] | None = None,
    rule_id: str = "",
    at: datetime | None = None,
) -> tuple[Alert, bool]:
    """Open an alert, or return the unresolved one of the same kind. Returns (alert, created).

    An existing alert whose severity is lower is raised to the new severity (and its message and
    evidence updated), so an escalating condition is visible without opening a second alert.
    """
    at = at or timezone.now()
    existing = Alert.objects.select_for_update().filter(patient=patient, kind=kind).exclude(
        status=AlertStatus.RESOLVED
    ).first()
    if existing is not None:
        if SEVERITY_RANK[severity] > SEVERITY_RANK[existing.severity]:
            previous = existing.severity
            existing.severity = severity
            existing.message = message
            existing.action_text = action_text
            existing.evidence = evidence or {}
            existing.rule_id = rule_id or existing.rule_id
            existing.save(update_fields=["severity", "message", "action_text", "evidence", "rule_id"])
            # Risen to HIGH/CRITICAL: staff hear about it now, in this same transaction.
            events.announce("alert.severity_raised", alert=existing, previous=previous)
        return existing, False
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                patient=patient,
                kind=kind,
                severity=severity,
                message=message,
                action_text=action_text,
                evidence=evidence or {},
                rule_id=rule_id,
                opened_at=at,
            )
    except IntegrityError:
        # A concurrent transaction opened the same kind first: the constraint keeps one.
        return Alert.objects.get(patient=patient, kind=kind, status__in=["open", "acknowledged"]), False
    events.announce("alert.opened", alert=alert)
    return alert, True


def alert_resolve(*, patient: Patient, kind: str, resolution: str, at: datetime | None = None) -> int:
    """Resolve the unresolved alert of this kind, if any. Returns how many were resolved (0 or 1)."""
    return (
        Alert.objects.filter(patient=patient, kind=kind)
        .exclude(status=AlertStatus.RESOLVED)
        .update(status=AlertStatus.RESOLVED, resolved_at=at or timezone.now(), resolution=resolution[:200])
    )


def alert_acknowledge(*, alert: Alert, user: Any, note: str = "", at: datetime | None = None) -> Alert:
    """Record who acknowledged the alert and what they did (RULES §3.6)."""
    if alert.status == AlertStatus.RESOLVED:
        return alert
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_at = at or timezone.now()
    alert.acknowledged_by = user
    alert.acknowledgement_note = note
    alert.save(update_fields=["status", "acknowledged_at", "acknowledged_by", "acknowledgement_note"])
    return alert
