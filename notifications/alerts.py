"""Alert services: raise, close, acknowledge. One unresolved alert per patient and kind.

`alert_raise` must run inside the transaction of the event that causes the alert; it announces
"alert.opened", "alert.severity_raised" or "alert.reopened" through tracker/events.py, whose listeners run in
that same transaction, so the staff notification rows (notifications/staff.py) are written atomically with
the alert.

The life of an alert (RULES §3.6 as revised by §10 V-2 and V-3):
- open -> acknowledged: a person has seen it (who, when, what they did);
- the finding fires again with NEW evidence (a result, fact, dose ... it did not show before) or at a higher
  severity: an acknowledged alert is open again and staff are told as if it were new (V-3); the same
  evidence changes nothing, so evaluating twice is harmless;
- a later result meets the target (`alert_close`): INFO, MEDIUM and HIGH alerts resolve; a CRITICAL one
  stays open showing "target met" with that result until a person acknowledges it, which then closes it
  (V-2). If the problem comes back first, "target met" is cleared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from notifications.models import SEVERITY_RANK, Alert, AlertStatus, Severity
from patients.models import Patient
from tracker import bulk, events
from tracker.errors import ConflictError, ServiceError

# Evidence keys that name a record (RULES §10 V-3 "new evidence"): a finding whose evidence names a record
# the alert did not show before is a new event. Other keys (days overdue, a rule's note, the baseline the
# finding is compared with) change without anything new having happened.
_ID_LIST_KEYS = {"result_ids": "result", "fact_ids": "fact"}
_ID_KEYS = {"dose_id": "dose", "medication_id": "medication", "regimen_id": "regimen"}
_ROW_LIST_KEYS = {"results": "result", "rechecks": "recheck"}


def evidence_refs(evidence: Mapping[str, Any] | None) -> set[tuple[str, int]]:
    """The records an alert's evidence names, as (kind, id)."""
    refs: set[tuple[str, int]] = set()
    for key, value in (evidence or {}).items():
        if key in _ID_LIST_KEYS and isinstance(value, list):
            refs |= {(_ID_LIST_KEYS[key], int(v)) for v in value if isinstance(v, int)}
        elif key in _ID_KEYS and isinstance(value, int):
            refs.add((_ID_KEYS[key], value))
        elif key in _ROW_LIST_KEYS and isinstance(value, list):
            refs |= {
                (_ROW_LIST_KEYS[key], int(row["id"]))
                for row in value
                if isinstance(row, dict) and isinstance(row.get("id"), int)
            }
    return refs


def has_new_evidence(alert: Alert, evidence: Mapping[str, Any] | None) -> bool:
    """Whether `evidence` names a record the alert's current evidence does not (V-3)."""
    return bool(evidence_refs(evidence) - evidence_refs(alert.evidence))


def _reopen(alert: Alert, at: datetime) -> dict[str, Any]:
    """V-3: acknowledged -> open. Returns the acknowledgement it clears (the history keeps it too), for the
    staff message. Escalation starts again from now (notifications/staff.py)."""
    previous = {
        "by": alert.acknowledged_by.get_username() if alert.acknowledged_by is not None else None,
        "at": alert.acknowledged_at,
        "note": alert.acknowledgement_note,
    }
    alert.status = AlertStatus.OPEN
    alert.acknowledged_at = None
    alert.acknowledged_by = None
    alert.acknowledgement_note = ""
    alert.reopened_at = at
    alert.escalated_at = None
    return previous


REOPEN_FIELDS = ["status", "acknowledged_at", "acknowledged_by", "acknowledgement_note", "reopened_at", "escalated_at"]
TARGET_FIELDS = ["target_met_at", "target_met_evidence"]


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
    none_unresolved: bool = False,
) -> tuple[Alert, bool]:
    """Open an alert, or return the unresolved one of the same kind. Returns (alert, created).

    `none_unresolved`: the caller has just read, in its transaction, that the patient has no unresolved alert of
    `kind` (the monitoring evaluation), so it is not looked up again before the INSERT; one that another
    transaction opened meanwhile is found by the unique constraint and then treated as below.

    The finding behind it fires now, so on an existing alert:
    - a higher severity raises it (message and evidence updated), so an escalating condition is visible
      without a second alert;
    - "target met" (V-2) is cleared: the problem is back;
    - an acknowledged alert with a higher severity or new evidence (`has_new_evidence`) is reopened (V-3),
      and announced as "alert.reopened" (staff hear about it as if it were new);
    - otherwise nothing changes (the same evidence again is not a new event).
    """
    at = at or timezone.now()
    evidence = evidence or {}
    existing = None if none_unresolved else _unresolved_locked(patient, kind)
    if existing is None:
        alert = Alert(
            patient=patient,
            kind=kind,
            severity=severity,
            message=message,
            action_text=action_text,
            evidence=evidence,
            rule_id=rule_id,
            opened_at=at,
        )
        # Skipped (no savepoint to roll back) when the one-unresolved-per-kind constraint holds one already.
        if bulk.insert_new_with_history(alert, ("patient_id", "kind")):
            events.announce("alert.opened", alert=alert)
            return alert, True
        # A concurrent transaction opened the same kind first: the constraint keeps one.
        existing = _unresolved_locked(patient, kind) if none_unresolved else None
        if existing is None:
            return Alert.objects.get(patient=patient, kind=kind, status__in=["open", "acknowledged"]), False
    _raise_existing(
        existing,
        severity=severity,
        message=message,
        action_text=action_text,
        evidence=evidence,
        rule_id=rule_id,
        at=at,
    )
    return existing, False


def _unresolved_locked(patient: Patient, kind: str) -> Alert | None:
    """The patient's unresolved alert of `kind`, locked for the caller's transaction."""
    return (
        Alert.objects.select_for_update()
        .filter(patient=patient, kind=kind)
        .exclude(status=AlertStatus.RESOLVED)
        .first()
    )


@dataclass(frozen=True)
class NewAlert:
    """An alert to open for a patient that has no unresolved alert of its kind (`alerts_open_many`)."""

    patient_id: int
    kind: str
    severity: str
    message: str
    action_text: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    rule_id: str = ""


# Alerts inserted per statement by `alerts_open_many`.
OPEN_BATCH_SIZE = 1000


def alerts_open_many(new: list[NewAlert], *, at: datetime) -> list[Alert]:
    """Open many alerts at once (a sweep's first run after a go-live, an outage or an import): the rows, their
    history rows and the staff notifications of the HIGH and CRITICAL ones, each written in bulk, in a number
    of queries that grows with len(new) / OPEN_BATCH_SIZE only. Must run inside the caller's transaction (as
    `alert_raise`). A patient who already has an unresolved alert of the kind (opened concurrently) keeps it:
    the insert skips that row (ON CONFLICT DO NOTHING on the one-unresolved-per-kind constraint). Returns the
    alerts opened, and announces them as "alerts.opened" (the bulk form of "alert.opened")."""
    opened: list[Any] = []
    for start in range(0, len(new), OPEN_BATCH_SIZE):
        batch = new[start : start + OPEN_BATCH_SIZE]
        rows = [
            Alert(
                patient_id=a.patient_id,
                kind=a.kind,
                severity=a.severity,
                message=a.message,
                action_text=a.action_text,
                evidence=a.evidence,
                rule_id=a.rule_id,
                opened_at=at,
            )
            for a in batch
        ]
        created = bulk.insert_new(Alert, rows, ("patient_id", "kind"), batch_size=OPEN_BATCH_SIZE)
        Alert.history.bulk_history_create(created, batch_size=OPEN_BATCH_SIZE)
        opened += created
    if opened:
        events.announce("alerts.opened", alerts=opened)
    return opened


def _raise_existing(
    existing: Alert,
    *,
    severity: str,
    message: str,
    action_text: str,
    evidence: dict[str, Any],
    rule_id: str,
    at: datetime,
) -> bool:
    """The existing-alert half of `alert_raise`. Returns whether it changed."""
    higher = SEVERITY_RANK[severity] > SEVERITY_RANK[existing.severity]
    reopen = existing.status == AlertStatus.ACKNOWLEDGED and (higher or has_new_evidence(existing, evidence))
    target_back = existing.target_met_at is not None
    if not (higher or reopen or target_back):
        return False
    fields = ["message", "action_text", "evidence", "rule_id"]
    previous_severity = existing.severity
    if higher:
        existing.severity = severity
        fields.append("severity")
    existing.message = message
    existing.action_text = action_text
    existing.evidence = evidence
    existing.rule_id = rule_id or existing.rule_id
    if target_back:
        existing.target_met_at = None
        existing.target_met_evidence = {}
        fields += TARGET_FIELDS
    acknowledged: dict[str, Any] | None = None
    if reopen:
        acknowledged = _reopen(existing, at)
        fields += REOPEN_FIELDS
    existing.save(update_fields=fields)
    if acknowledged is not None:
        events.announce("alert.reopened", alert=existing, acknowledged=acknowledged)
    elif higher:
        # Risen to HIGH/CRITICAL: staff hear about it now, in this same transaction.
        events.announce("alert.severity_raised", alert=existing, previous=previous_severity)
    return True


def alert_close(*, alert: Alert, resolution: str, at: datetime, target_met_evidence: dict[str, Any]) -> str:
    """A later result (or event) meets the alert's target (RULES §3.6, §10 V-2). Returns what happened:
    "resolved", "target_met" or "" (nothing new).

    - INFO, MEDIUM, HIGH: resolved.
    - CRITICAL, not acknowledged: stays open with `target_met_at` and the evidence that met it (the first
      time only: a second run changes nothing) until a person acknowledges it (`alert_acknowledge`).
    - CRITICAL already acknowledged (a person saw it before the target was met): resolved, the resolution
      naming who acknowledged it. Decision needing clinical sign-off (docs/clinical-reference.md).
    """
    if alert.status == AlertStatus.RESOLVED:
        return ""
    if alert.severity != Severity.CRITICAL:
        alert.status, alert.resolved_at, alert.resolution = AlertStatus.RESOLVED, at, resolution[:200]
        alert.save(update_fields=["status", "resolved_at", "resolution"])
        return "resolved"
    fields: list[str] = []
    if alert.target_met_at is None:
        alert.target_met_at, alert.target_met_evidence = at, target_met_evidence
        fields += TARGET_FIELDS
    if alert.status == AlertStatus.ACKNOWLEDGED:
        who = alert.acknowledged_by.get_username() if alert.acknowledged_by is not None else "a person"
        alert.status, alert.resolved_at = AlertStatus.RESOLVED, at
        alert.resolution = f"{resolution}; acknowledged before by {who} (RULES §10 V-2)"[:200]
        alert.save(update_fields=[*fields, "status", "resolved_at", "resolution"])
        return "resolved"
    if not fields:
        return ""
    alert.save(update_fields=fields)
    return "target_met"


def alert_resolve(*, patient: Patient, kind: str, resolution: str, at: datetime | None = None) -> int:
    """Resolve the unresolved alert of this kind, if any (a CRITICAL one only records "target met", V-2).
    Returns how many were resolved (0 or 1)."""
    alert = (
        Alert.objects.select_for_update()
        .filter(patient=patient, kind=kind)
        .exclude(status=AlertStatus.RESOLVED)
        .first()
    )
    if alert is None:
        return 0
    done = alert_close(alert=alert, resolution=resolution, at=at or timezone.now(), target_met_evidence={})
    return int(done == "resolved")


def alert_acknowledge(*, alert: Alert, user: Any, note: str = "", at: datetime | None = None) -> Alert:
    """Record who acknowledged the alert and what they did (RULES §3.6). An alert whose target a later
    result has met (a CRITICAL one, V-2) is closed by this acknowledgement."""
    if alert.status == AlertStatus.RESOLVED:
        return alert
    at = at or timezone.now()
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_at = at
    alert.acknowledged_by = user
    alert.acknowledgement_note = note
    fields = ["status", "acknowledged_at", "acknowledged_by", "acknowledgement_note"]
    if alert.target_met_at is not None:
        met = alert.target_met_evidence or {}
        shown = " ".join(str(met[k]) for k in ("analyte", "value", "unit") if met.get(k))
        on = f" on {met['collected_on']}" if met.get("collected_on") else ""
        by = f" ({shown}{on})" if shown else ""
        alert.status, alert.resolved_at = AlertStatus.RESOLVED, at
        alert.resolution = f"target met{by}; closed on acknowledgement (RULES §10 V-2)"[:200]
        fields += ["resolved_at", "resolution"]
    alert.save(update_fields=fields)
    return alert


def alert_acknowledge_by_staff(*, alert: Alert, user: Any, note: str = "") -> Alert:
    """A member of staff acknowledges the alert with a note of what was done (RULES §3.6), as the API and the
    web pages do: a critical alert needs a note; a resolved alert, or one someone else already acknowledged,
    is a conflict; repeating the same acknowledgement (same person, same note) changes nothing. One
    transaction, with the alert locked, so two people acknowledging at once cannot both succeed."""
    note = (note or "").strip()
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if _same_acknowledgement(alert, user, note):
            return alert
        if alert.status == AlertStatus.RESOLVED:
            when = f" on {alert.resolved_at:%Y-%m-%d %H:%M %Z}" if alert.resolved_at else ""
            raise ConflictError("status", f"the alert was resolved{when}; there is nothing to acknowledge")
        if alert.status == AlertStatus.ACKNOWLEDGED:
            who = alert.acknowledged_by.get_username() if alert.acknowledged_by else "someone"
            raise ConflictError("status", f"the alert was already acknowledged by {who}")
        if alert.severity == Severity.CRITICAL and not note:
            raise ServiceError("note", "a critical alert needs a note saying what was done")
        return alert_acknowledge(alert=alert, user=user, note=note)


def _same_acknowledgement(alert: Alert, user: Any, note: str) -> bool:
    """The request repeats the acknowledgement already recorded (also one that closed the alert, V-2)."""
    return (
        alert.status != AlertStatus.OPEN
        and alert.acknowledged_at is not None
        and alert.acknowledged_by_id == user.pk
        and alert.acknowledgement_note == note
    )
