"""Staff notifications for alerts (RULES §3.2; docs/reminders.md).

- A new HIGH or CRITICAL alert reaches every active staff member of the patient's clinic at once: an
  email (when they have an address) and an inbox message, written in the transaction that opens it.
- MEDIUM alerts wait for the clinic's daily digest (STAFF_DIGEST_LOCAL_TIME, clinic time); INFO ones are
  timeline notes only (§3.2).
- HIGH and CRITICAL alerts still open (not acknowledged) after ESCALATE_*_AFTER_HOURS escalate to the
  clinic lead (no lead: the clinic admins; none either: all clinic staff), once (Alert.escalated_at).
- An acknowledged alert reopened by new evidence (RULES §10 V-3) is announced as if it were new: HIGH and
  CRITICAL at once, MEDIUM in the next digest; its escalation counts from the reopening.

Staff deliveries carry the alert, not the patient: Delivery.patient marks messages to or about a patient's
own reminders, and a failed staff email must not look like the patient's delivery failure.
"""

from __future__ import annotations

import logging
import zoneinfo
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone as djtz

from notifications import messages, outbox, purposes
from notifications.models import Alert, AlertStatus, Channel, Delivery, Purpose, Severity
from notifications.timing import parse_time
from patients.models import Clinic, ClinicMembership, Role
from tracker import bulk, events
from tracker.clock import local_date
from tracker.sweeps import in_shard

logger = logging.getLogger(__name__)

NOTIFY_AT_ONCE = (Severity.HIGH, Severity.CRITICAL)

# Staff messages matter until they are sent and go at any hour (notifications/purposes.py): an alert does
# not wait for office hours, and a digest or escalation is written for the moment it is due.
for _purpose in (Purpose.ALERT, Purpose.ESCALATION, Purpose.DIGEST):
    purposes.register(_purpose)


def _alert_context(alert: dict[str, Any]) -> dict[str, Any]:
    opened: datetime = alert["opened_at"]
    zone = zoneinfo.ZoneInfo(alert["patient__clinic__timezone"])
    reopened: datetime | None = alert.get("reopened_at")
    return {
        "id": alert["id"],
        "patient_id": alert["patient_id"],
        "patient": f"{alert['patient__family_name']}, {alert['patient__given_name']} ({alert['patient__mrn']})",
        "kind": alert["kind"],
        "severity": alert["severity"],
        "rule_id": alert["rule_id"],
        "message": alert["message"],
        "action_text": alert["action_text"],
        "opened_at": opened.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z"),
        "reopened_at": reopened.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if reopened else "",
    }


ALERT_FIELDS = (
    "id",
    "kind",
    "severity",
    "rule_id",
    "message",
    "action_text",
    "opened_at",
    "reopened_at",
    "patient_id",
    "patient__family_name",
    "patient__given_name",
    "patient__mrn",
    "patient__clinic_id",
    "patient__clinic__name",
    "patient__clinic__timezone",
)


def _memberships(
    clinic_ids: list[int], roles: tuple[str, ...] | None = None, *, with_clinic: bool = False
) -> list[Any]:
    """The memberships of the clinics' active staff, with their user (and clinic), by user (one query)."""
    memberships = ClinicMembership.objects.filter(clinic_id__in=clinic_ids, user__is_active=True)
    if roles is not None:
        memberships = memberships.filter(role__in=roles)
    return list(memberships.select_related("user", *(["clinic"] if with_clinic else [])).order_by("user_id"))


def _staff(clinic_ids: list[int], roles: tuple[str, ...] | None = None) -> dict[int, list[Any]]:
    """Clinic id -> its active staff users (one query)."""
    out: dict[int, list[Any]] = defaultdict(list)
    for m in _memberships(clinic_ids, roles):
        out[m.clinic_id].append(m.user)
    return out


def _channels(user: Any) -> list[tuple[str, str]]:
    """(channel, address) for a staff user: email when they have one, and always the inbox."""
    email = (getattr(user, "email", "") or "").strip()
    channels = [(str(Channel.EMAIL), email)] if email else []
    return [*channels, (str(Channel.INBOX), "")]


def _rows(
    users: list[Any],
    *,
    key: str,
    purpose: str,
    subject: str,
    body: str,
    due_at: datetime,
    alert_id: int | None = None,
) -> list[Delivery]:
    """Unsaved delivery rows, one per user and channel, keyed `<key>:<user>:<channel>` (see _write_new)."""
    return [
        Delivery(
            idempotency_key=f"{key}:{user.pk}:{channel}",
            purpose=purpose,
            channel=channel,
            user=user,
            address=address,
            subject=subject,
            body=body,
            due_at=due_at,
            alert_id=alert_id,
        )
        for user in users
        for channel, address in _channels(user)
    ]


def _fan_out(alert: Alert, key_prefix: str, *, due_at: datetime | None = None, **extra: Any) -> int:
    """The staff deliveries of one alert (a single opening, a severity rise, a reopening) in a fixed number of
    queries, however many staff the clinic has: its clinic's staff, one INSERT ... ON CONFLICT DO NOTHING, and
    the alert with its patient and clinic unless `alert` holds its patient already (one it opened: the patient
    row the caller read), whose clinic then comes with the staff. The rows already due are handed to a worker
    once the transaction commits."""
    patient = alert.patient if Alert.patient.is_cached(alert) else None
    if patient is None:
        row = Alert.objects.filter(pk=alert.pk).values(*ALERT_FIELDS).get()
        users = [m.user for m in _memberships([row["patient__clinic_id"]])]
    else:
        memberships = _memberships([patient.clinic_id], with_clinic=True)
        if not memberships:
            return 0  # nobody to tell
        clinic = memberships[0].clinic
        row = {name: getattr(alert, name) for name in ALERT_FIELDS if "__" not in name}
        row |= {
            "patient_id": patient.pk,
            "patient__family_name": patient.family_name,
            "patient__given_name": patient.given_name,
            "patient__mrn": patient.mrn,
            "patient__clinic_id": clinic.pk,
            "patient__clinic__name": clinic.name,
            "patient__clinic__timezone": clinic.timezone,
        }
        users = [m.user for m in memberships]
    subject, body = messages.render(
        Purpose.ALERT, "en", {"alert": _alert_context(row), "clinic": row["patient__clinic__name"], **extra}
    )
    rows = _rows(
        users,
        key=key_prefix,
        purpose=Purpose.ALERT,
        subject=subject,
        body=body,
        due_at=due_at or alert.opened_at,
        alert_id=alert.pk,
    )
    return _write_new(rows, dispatch=True)


@events.listen("alert.opened")
def on_alert_opened(*, alert: Alert) -> None:
    """Announced in the transaction that opens `alert` (notifications.alerts.alert_raise): write the staff
    delivery rows here."""
    if alert.severity in NOTIFY_AT_ONCE:
        _fan_out(alert, f"alert:{alert.id}")


@events.listen("alerts.opened")
def on_alerts_opened(*, alerts: list[Alert]) -> None:
    """The bulk form of "alert.opened" (notifications.alerts.alerts_open_many): the staff delivery rows of
    every HIGH and CRITICAL alert, in a fixed number of queries (the alerts, the clinics' staff, the keys
    already written, one insert per 1,000 rows), with the keys and texts `_fan_out` writes."""
    ids = [a.pk for a in alerts if a.severity in NOTIFY_AT_ONCE]
    if not ids:
        return
    rows = list(Alert.objects.filter(pk__in=ids).values(*ALERT_FIELDS).order_by("id"))
    staff = _staff(sorted({r["patient__clinic_id"] for r in rows}))
    new: list[Delivery] = []
    for row in rows:
        subject, body = messages.render(
            Purpose.ALERT, "en", {"alert": _alert_context(row), "clinic": row["patient__clinic__name"]}
        )
        new += _rows(
            staff.get(row["patient__clinic_id"], []),
            key=f"alert:{row['id']}",
            purpose=Purpose.ALERT,
            subject=subject,
            body=body,
            due_at=row["opened_at"],
            alert_id=row["id"],
        )
    _write_new(new)


@events.listen("alert.severity_raised")
def on_alert_severity_raised(*, alert: Alert, previous: str) -> None:
    """An open alert rose to a higher severity (notifications.alerts.alert_raise): once it reaches HIGH or
    CRITICAL, staff hear about it as if it were new, once per severity reached."""
    if alert.severity in NOTIFY_AT_ONCE and alert.severity != previous:
        _fan_out(alert, f"alert:{alert.id}:{alert.severity}")


@events.listen("alert.reopened")
def on_alert_reopened(*, alert: Alert, acknowledged: dict[str, Any]) -> None:
    """RULES §10 V-3: new evidence made an acknowledged alert open again (notifications.alerts.alert_raise).
    HIGH and CRITICAL: staff hear about it at once, as for a new alert, once per reopening; MEDIUM: the next
    digest (it counts from `reopened_at`); INFO: nobody."""
    if alert.severity not in NOTIFY_AT_ONCE or alert.reopened_at is None:
        return
    at = alert.reopened_at
    when = acknowledged.get("at")
    previous = {
        "by": acknowledged.get("by") or "someone",
        "at": when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if isinstance(when, datetime) else "",
        "note": acknowledged.get("note") or "",
    }
    _fan_out(alert, f"alert:{alert.id}:reopened:{at.astimezone(UTC):%Y%m%dT%H%M%S}", due_at=at, reopened=previous)


# --- The staff sweep: daily digest and escalation ----------------------------------------------------------


def _local_instant(day: date, tz: str, hhmm: Any) -> datetime:
    return datetime.combine(day, parse_time(hhmm), tzinfo=zoneinfo.ZoneInfo(tz)).astimezone(UTC)


def digest_window(at: datetime, tz: str, hhmm: Any) -> tuple[date, datetime, datetime]:
    """(digest date, previous digest instant, this digest instant): the latest digest time at or before
    `at` in the clinic's zone, and the one the day before (each computed in the zone: DST-correct)."""
    today = local_date(at, tz)
    day = today if _local_instant(today, tz, hhmm) <= at else today - timedelta(days=1)
    return day, _local_instant(day - timedelta(days=1), tz, hhmm), _local_instant(day, tz, hhmm)


def send_digests(at: datetime) -> int:
    """Each clinic's digest of the MEDIUM alerts opened since the previous digest and still unresolved:
    one email + inbox message per member per clinic-day; nothing when there is nothing to say."""
    hhmm = settings.COBALT["STAFF_DIGEST_LOCAL_TIME"]
    clinics = Clinic.objects.values_list("id", "name", "timezone")
    windows = {cid: (name, *digest_window(at, tz, hhmm)) for cid, name, tz in clinics}
    if not windows:
        return 0
    earliest = min(w[2] for w in windows.values())
    latest = max(w[3] for w in windows.values())
    by_clinic: dict[int, list[dict[str, Any]]] = defaultdict(list)
    # A MEDIUM alert reopened by new evidence (V-3) is in the digest of its reopening, as if new.
    alerts = (
        Alert.objects.annotate(announced_at=Coalesce("reopened_at", "opened_at"))
        .filter(severity=Severity.MEDIUM, announced_at__gte=earliest, announced_at__lt=latest)
        .exclude(status=AlertStatus.RESOLVED)
        .order_by("announced_at", "patient_id", "kind", "id")  # the same order however the alerts were written
        .values(*ALERT_FIELDS, "announced_at")
    )
    for a in alerts:
        _name, _day, start, end = windows[a["patient__clinic_id"]]
        if start <= a["announced_at"] < end:
            by_clinic[a["patient__clinic_id"]].append(a)
    if not by_clinic:
        return 0
    staff = _staff(list(by_clinic))
    new: list[Delivery] = []
    for cid, rows in by_clinic.items():
        name, day, _start, end = windows[cid]
        subject, body = messages.render(
            Purpose.DIGEST, "en", {"clinic": name, "date": day.isoformat(), "alerts": [_alert_context(r) for r in rows]}
        )
        key = f"digest:{cid}:{day.isoformat()}"
        new += _rows(staff.get(cid, []), key=key, purpose=Purpose.DIGEST, subject=subject, body=body, due_at=end)
    return _write_new(new)


def _write_new(rows: list[Delivery], *, dispatch: bool = False) -> int:
    """Insert the rows whose keys are new (INSERT ... ON CONFLICT DO NOTHING on the idempotency key, one
    statement per 1,000 rows: a key already written, or written concurrently, is skipped); how many were new.
    The outbox sweep sends them; with `dispatch`, those already due go to a worker as soon as the caller's
    transaction commits (as outbox.enqueue does)."""
    fresh = bulk.insert_new(Delivery, rows, ("idempotency_key",))
    if dispatch:
        now = djtz.now()
        for delivery in fresh:
            if isinstance(delivery, Delivery) and delivery.due_at <= now:
                transaction.on_commit(partial(outbox.dispatch, delivery.pk))
    return len(fresh)


def escalate(at: datetime) -> dict[str, int]:
    """RULES §3.2 [P]: HIGH needs review within 1 working day, CRITICAL is interruptive. Still open (not
    acknowledged) after the set hours -> the clinic lead hears about it, once. Counted from the opening, or
    from the reopening of an alert that new evidence reopened (V-3; reopening clears escalated_at)."""
    hours = {
        Severity.HIGH: int(settings.COBALT["ESCALATE_HIGH_AFTER_HOURS"]),
        Severity.CRITICAL: int(settings.COBALT["ESCALATE_CRITICAL_AFTER_HOURS"]),
    }
    overdue = Q(pk__in=[])
    for severity, h in hours.items():
        overdue |= Q(severity=severity, announced_at__lte=at - timedelta(hours=h))
    rows = list(
        in_shard(Alert.objects.all(), "patient_id")  # the running sweep's shard (tracker/sweeps.py)
        .annotate(announced_at=Coalesce("reopened_at", "opened_at"))
        .filter(status=AlertStatus.OPEN, escalated_at__isnull=True)
        .filter(overdue)
        .values(*ALERT_FIELDS, "patient__clinic__lead_id")
    )
    if not rows:
        return {"escalated": 0, "escalation_unrouted": 0}
    clinic_ids = sorted({r["patient__clinic_id"] for r in rows})
    admins = _staff(clinic_ids, (Role.ADMIN,))
    everyone = _staff(clinic_ids)
    leads = {
        u.pk: u
        for u in get_user_model().objects.filter(
            pk__in={r["patient__clinic__lead_id"] for r in rows if r["patient__clinic__lead_id"]}, is_active=True
        )
    }
    new: list[Delivery] = []
    escalated: list[int] = []
    unrouted = 0
    for r in rows:
        cid = r["patient__clinic_id"]
        lead = leads.get(r["patient__clinic__lead_id"])
        recipients = [lead] if lead is not None else admins.get(cid) or everyone.get(cid) or []
        if not recipients:
            unrouted += 1
            logger.warning("alert %s cannot escalate: clinic %s has no active staff", r["id"], cid)
            continue
        subject, body = messages.render(
            Purpose.ESCALATION,
            "en",
            {"alert": _alert_context(r), "clinic": r["patient__clinic__name"], "hours": hours[r["severity"]]},
        )
        # Once per opening, and once again per reopening (V-3).
        reopened = f":reopened:{r['reopened_at'].astimezone(UTC):%Y%m%dT%H%M%S}" if r["reopened_at"] else ""
        new += _rows(
            recipients,
            key=f"escalation:{r['id']}{reopened}",
            purpose=Purpose.ESCALATION,
            subject=subject,
            body=body,
            due_at=at,
            alert_id=r["id"],
        )
        escalated.append(r["id"])
    with transaction.atomic():
        _write_new(new)
        # Compare-and-set: a concurrent sweep that got here first has already set it.
        done = Alert.objects.filter(id__in=escalated, escalated_at__isnull=True).update(escalated_at=at)
    return {"escalated": done, "escalation_unrouted": unrouted}
