"""Patient reminders (docs/reminders.md).

The reminders sweep writes one Delivery row per reminder a little before it is due (within
REMINDER_LOOKAHEAD_HOURS); the outbox sweep and the workers send it. Nothing here sends.

- Doses given at the clinic (not self-administered): a maintenance dose 7 and 1 days before (RULES S-4),
  any other dose ("loading") the day before; a follow-up to the patient once a dose is
  REMINDER_OVERDUE_AFTER_DAYS past due and still not recorded.
- Lab rechecks: 2 days before the window opens.
- Sent on the reminder's local date at REMINDER_LOCAL_TIME in the patient's zone, moved out of quiet hours.

Idempotency: the key names the reminder, the date it is about and the channel
("remind:dose:<dose>:7d:<due date>:email"), so the same instant twice writes nothing new, and a dose
moved to a new date gets reminders for the new date while the old ones are cancelled.

Set-based: a fixed number of queries whatever the number of patients (writes in statements of 1,000 rows;
new contact_missing alerts opened in bulk by alerts_open_many).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import transaction
from django.db.models import Min, Q, QuerySet, TextField
from django.db.models.functions import MD5, Cast

from notifications import messages, outbox, purposes
from notifications.alerts import NewAlert, alerts_open_many
from notifications.models import Alert, AlertKind, AlertStatus, Delivery, DeliveryStatus, Purpose
from notifications.timing import Timing
from patients.models import ReminderChannel
from regimens.models import DoseStatus, LabRecheck, RecheckStatus, Regimen, RegimenStatus, ScheduledDose
from regimens.selectors import appointment_time
from tracker import bulk
from tracker.clock import end_of_day, local_date
from tracker.sweeps import in_shard

# The same reading of "maintenance" as the S-4 overdue rule (monitoring/sweep.py): a phase that runs for
# life or until the cause is resolved; every other clinic-given phase counts as loading.
MAINTENANCE_END_CONDITIONS = ("lifelong", "until_cause_resolved")
REMINDER_PURPOSES = (
    Purpose.DOSE_REMINDER,
    Purpose.RECHECK_REMINDER,
    Purpose.DOSE_OVERDUE,
    Purpose.APPOINTMENT_MOVED,
    Purpose.HOME_DOSE_PROMPT,
)
DOSE_PURPOSES = (Purpose.DOSE_REMINDER, Purpose.DOSE_OVERDUE, Purpose.APPOINTMENT_MOVED)


# --- Pure rules ------------------------------------------------------------------------------------------


def reminder_key(kind: str, object_id: int, offset: str, about: date, channel: str) -> str:
    return f"remind:{kind}:{object_id}:{offset}:{about.isoformat()}:{channel}"


def moved_from(key: str) -> date | None:
    """The old date of an "appointment moved" key (remind:moved:<dose>:from<old>:<new>:<channel>)."""
    parts = key.split(":")
    try:
        return date.fromisoformat(parts[3].removeprefix("from"))
    except (IndexError, ValueError):
        return None


def key_date(key: str) -> date | None:
    """The date a reminder key is about (the dose's due date or the recheck window's start)."""
    parts = key.split(":")
    try:
        return date.fromisoformat(parts[4])
    except (IndexError, ValueError):
        return None


def usable_address(channel: str, email: str, phone: str) -> str:
    if channel == ReminderChannel.EMAIL:
        email = (email or "").strip()
        return email if "@" in email else ""
    if channel == ReminderChannel.SMS:
        return (phone or "").strip()
    return ""


def irrelevance(
    *,
    purpose: str,
    key: str,
    channel: str,
    patient_channel: str,
    dose_status: str | None,
    dose_due: date | None,
    recheck_status: str | None,
    recheck_start: date | None,
) -> str:
    """Why a written reminder should no longer go out ("" = it still should)."""
    if patient_channel == ReminderChannel.NONE:
        return "patient opted out of reminders"
    if patient_channel != channel:
        return f"patient now prefers {patient_channel}"
    about = key_date(key)
    if purpose in DOSE_PURPOSES:
        if dose_status != DoseStatus.PLANNED:
            return f"dose is {dose_status or 'gone'}"
        if about is not None and dose_due != about:
            return f"dose moved to {dose_due}"
    if purpose == Purpose.RECHECK_REMINDER:
        if recheck_status != RecheckStatus.DUE:
            return f"recheck is {recheck_status or 'gone'}"
        if about is not None and recheck_start != about:
            return f"recheck window moved to {recheck_start}"
    return ""


# What `irrelevance` reads of a delivery row.
RELEVANCE_FIELDS = (
    "purpose",
    "idempotency_key",
    "channel",
    "patient__reminder_channel",
    "dose__status",
    "dose__due_date",
    "recheck__status",
    "recheck__window_start",
    "recheck__window_end",
)


def row_irrelevance(row: dict[str, Any]) -> str:
    return irrelevance(
        purpose=row["purpose"],
        key=row["idempotency_key"],
        channel=row["channel"],
        patient_channel=row["patient__reminder_channel"] or ReminderChannel.NONE,
        dose_status=row["dose__status"],
        dose_due=row["dose__due_date"],
        recheck_status=row["recheck__status"],
        recheck_start=row["recheck__window_start"],
    )


# --- Before sending: what the worker asks (notifications/purposes.py) --------------------------------------


def still_relevant(delivery: Delivery) -> bool:
    """Checked by the worker just before it sends: False cancels the delivery (e.g. the dose it
    reminds of was given, not given or cancelled since the reminder was written)."""
    if delivery.purpose not in REMINDER_PURPOSES:
        return True
    row = Delivery.objects.filter(pk=delivery.pk).values(*RELEVANCE_FIELDS).first()
    return row is not None and not row_irrelevance(row)


def hold_for_quiet_hours(delivery: Delivery, now: datetime) -> datetime | None:
    """A reminder that would reach the patient in their quiet hours (the workers were behind) waits for
    the end of them."""
    if delivery.patient is None:
        return None
    return Timing.from_settings().quiet_until(now, delivery.patient.timezone)


# The order a merged message tells things in: what was missed, what moved, what comes next, what to book.
MERGE_ORDER = {
    Purpose.DOSE_OVERDUE: 0,
    Purpose.APPOINTMENT_MOVED: 1,
    Purpose.DOSE_REMINDER: 2,
    Purpose.RECHECK_REMINDER: 3,
    Purpose.HOME_DOSE_PROMPT: 4,
}


def merge_same_day(delivery: Delivery, now: datetime) -> None:
    """Just before a reminder goes out, fold into it the patient's other reminders due by the end of their
    day, so that they get one message that makes sense ("we missed you on Monday; your next appointment is
    on Wednesday") instead of two at once that seem to contradict each other. Each one folded in is checked
    for relevance first and claimed with a compare-and-set (pending -> cancelled, "merged into <id>"), so a
    row another worker is already sending is left to it and nothing is told twice."""
    patient = delivery.patient
    if patient is None:
        return
    tz = patient.timezone
    fields = ("id", "dose_id", "dose__appointment_time", *RELEVANCE_FIELDS)
    row = Delivery.objects.filter(pk=delivery.pk).values(*fields).first()
    if row is None:
        return
    siblings = (
        Delivery.objects.filter(
            patient_id=patient.pk,
            channel=delivery.channel,
            status=DeliveryStatus.PENDING,
            purpose__in=REMINDER_PURPOSES,
            due_at__lt=end_of_day(local_date(now, tz), tz),
        )
        .exclude(pk=delivery.pk)
        .order_by("due_at", "id")
        .values(*fields)
    )
    rows = [row]
    for sibling in siblings:
        reason = row_irrelevance(sibling)
        if reason:
            outbox.cancel(Delivery.objects.filter(pk=sibling["id"]), reason)
            continue
        taken = Delivery.objects.filter(pk=sibling["id"], status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.CANCELLED, last_error=f"merged into delivery {delivery.pk}", updated_at=now
        )
        if taken:
            rows.append(sibling)
    if len(rows) == 1:
        return
    subject, body = messages.render_combined(
        patient.language,
        {
            "name": patient.given_name,
            "clinic": patient.clinic.name,
            "clinic_phone": patient.clinic.phone,
            "can_reply": delivery.channel == ReminderChannel.EMAIL and bool(patient.clinic.email),
        },
        _merged_lines(rows, patient.clinic.session_start),
    )
    Delivery.objects.filter(pk=delivery.pk).update(subject=subject, body=body, updated_at=now)
    delivery.subject, delivery.body = subject, body


def _merged_lines(rows: list[dict[str, Any]], session_start: time | None) -> list[tuple[str, dict[str, Any]]]:
    lines: list[tuple[str, dict[str, Any]]] = []
    moved_doses = {r["dose_id"] for r in rows if r["purpose"] == Purpose.APPOINTMENT_MOVED}
    seen: set[tuple[str, Any]] = set()
    for r in sorted(rows, key=lambda r: (MERGE_ORDER.get(r["purpose"], 9), key_date(r["idempotency_key"]) or date.min)):
        purpose = r["purpose"]
        if purpose == Purpose.DOSE_OVERDUE:
            line = ("missed", {"date": r["dose__due_date"]})
        elif purpose == Purpose.APPOINTMENT_MOVED:
            when = appointment_time(r["dose__appointment_time"], session_start)
            line = ("moved", {"old_date": moved_from(r["idempotency_key"]), "date": r["dose__due_date"], "time": when})
        elif purpose == Purpose.DOSE_REMINDER:
            if r["dose_id"] in moved_doses:
                continue  # "has moved to <date>" already says it
            when = appointment_time(r["dose__appointment_time"], session_start)
            line = ("next", {"date": r["dose__due_date"], "time": when})
        elif purpose == Purpose.HOME_DOSE_PROMPT:
            line = ("home", {})
        else:
            line = ("book", {"start": r["recheck__window_start"], "end": r["recheck__window_end"]})
        key = (line[0], tuple(sorted(line[1].items())))
        if key not in seen:  # a 7-day and a 1-day reminder of the same appointment (late sweep): once
            seen.add(key)
            lines.append(line)
    return lines


for _purpose in REMINDER_PURPOSES:
    purposes.register(_purpose, relevant=still_relevant, hold_until=hold_for_quiet_hours, prepare=merge_same_day)


# --- The sweep -------------------------------------------------------------------------------------------


def _offsets(key: str) -> list[int]:
    return sorted({int(v) for v in settings.COBALT[key]})


def maintenance_indexes(snapshot: dict[str, Any] | None) -> set[int]:
    """The indexes of a protocol copy's maintenance phases (lifelong or until the cause resolves)."""
    phases = (snapshot or {}).get("phases", [])
    return {i for i, p in enumerate(phases) if p.get("end_condition") in MAINTENANCE_END_CONDITIONS}


def _maintenance_phases(regimen_ids: Iterable[int]) -> dict[int, set[int]]:
    """Regimen id -> its maintenance phase indexes, reading each distinct protocol copy once per run (issue 16:
    tens of thousands of regimens share a handful of copies): two queries, the first reads only a hash per
    regimen, the second one copy per distinct hash."""
    ids = list(regimen_ids)
    if not ids:
        return {}
    hashes = Regimen.objects.filter(id__in=ids).annotate(h=MD5(Cast("protocol_snapshot", TextField())))
    by_hash: dict[str, list[int]] = defaultdict(list)
    for rid, digest in hashes.values_list("id", "h"):
        by_hash[digest].append(rid)
    first = {rids[0]: digest for digest, rids in by_hash.items()}
    out: dict[int, set[int]] = {}
    for rid, snapshot in Regimen.objects.filter(id__in=first).values_list("id", "protocol_snapshot"):
        indexes = maintenance_indexes(snapshot)
        out.update(dict.fromkeys(by_hash[first[rid]], indexes))
    return out


@dataclass
class Candidate:
    key: str
    purpose: str
    patient: dict[str, Any]
    send_at: datetime
    context: dict[str, Any]
    dose_id: int | None = None
    recheck_id: int | None = None


PATIENT_FIELDS = (
    "patient_id",
    "patient__given_name",
    "patient__timezone",
    "patient__language",
    "patient__reminder_channel",
    "patient__email",
    "patient__phone",
    "patient__clinic__name",
    "patient__clinic__phone",
    "patient__clinic__email",
    "patient__clinic__session_start",
)


def _patient(row: dict[str, Any]) -> dict[str, Any]:
    return {f.removeprefix("patient__"): row[f] for f in PATIENT_FIELDS}


def _dose_candidates(at: datetime, timing: Timing, lo: date, hi: date) -> list[Candidate]:
    maintenance_days = _offsets("REMINDER_MAINTENANCE_DAYS_BEFORE")
    loading_days = _offsets("REMINDER_LOADING_DAYS_BEFORE")
    overdue_after = int(settings.COBALT["REMINDER_OVERDUE_AFTER_DAYS"])
    before = [0, *maintenance_days, *loading_days]
    rows = list(
        in_shard(ScheduledDose.objects.all(), "patient_id")
        .filter(
            status=DoseStatus.PLANNED,
            self_administered=False,  # taken at home daily: no appointment to remind of
            regimen__status=RegimenStatus.ACTIVE,
            due_date__gte=lo - timedelta(days=overdue_after),
            due_date__lte=hi + timedelta(days=max(before)),
        )
        .exclude(patient__reminder_channel=ReminderChannel.NONE)
        .values("id", "regimen_id", "phase_index", "phase", "due_date", "appointment_time", *PATIENT_FIELDS)
    )
    maintenance = _maintenance_phases({r["regimen_id"] for r in rows})
    out: list[Candidate] = []
    for r in rows:
        phases = maintenance.get(r["regimen_id"])
        is_maintenance = r["phase_index"] in phases if phases else r["phase"] == "maintenance"
        due: date = r["due_date"]
        wanted = [
            (Purpose.DOSE_REMINDER, f"{n}d", due - timedelta(days=n), "dose")
            for n in (maintenance_days if is_maintenance else loading_days)
        ]
        wanted.append((Purpose.DOSE_OVERDUE, f"+{overdue_after}d", due + timedelta(days=overdue_after), "overdue"))
        for purpose, offset, local_day, kind in wanted:
            send_at = timing.send_at(local_day, r["patient__timezone"])
            if not timing.in_window(send_at, at, r["patient__timezone"]):
                continue
            channel = r["patient__reminder_channel"]
            out.append(
                Candidate(
                    key=reminder_key(kind, r["id"], offset, due, channel),
                    purpose=purpose,
                    patient=_patient(r),
                    send_at=send_at,
                    context={
                        "date": due,
                        # The day the patient missed needs no time; the one to come does.
                        "time": None
                        if kind == "overdue"
                        else appointment_time(r["appointment_time"], r["patient__clinic__session_start"]),
                    },
                    dose_id=r["id"],
                )
            )
    return out


def _recheck_candidates(at: datetime, timing: Timing, lo: date, hi: date) -> list[Candidate]:
    days = _offsets("REMINDER_RECHECK_DAYS_BEFORE")
    if not days:
        return []
    rows = (
        in_shard(LabRecheck.objects.all(), "patient_id")
        .filter(
            status=RecheckStatus.DUE,
            regimen__status=RegimenStatus.ACTIVE,
            window_start__gte=lo + timedelta(days=min(days)),
            window_start__lte=hi + timedelta(days=max(days)),
        )
        .exclude(patient__reminder_channel=ReminderChannel.NONE)
        .values("id", "window_start", "window_end", *PATIENT_FIELDS)
    )
    out: list[Candidate] = []
    for r in rows:
        start: date = r["window_start"]
        for n in days:
            send_at = timing.send_at(start - timedelta(days=n), r["patient__timezone"])
            if not timing.in_window(send_at, at, r["patient__timezone"]):
                continue
            channel = r["patient__reminder_channel"]
            out.append(
                Candidate(
                    key=reminder_key("recheck", r["id"], f"{n}d", start, channel),
                    purpose=Purpose.RECHECK_REMINDER,
                    patient=_patient(r),
                    send_at=send_at,
                    context={"start": start, "end": r["window_end"]},
                    recheck_id=r["id"],
                )
            )
    return out


def _home_dose_candidates(at: datetime, timing: Timing, lo: date, hi: date) -> list[Candidate]:
    """A note every REMINDER_HOME_DOSE_EVERY_MONTHS months from the first dose taken at home, while the
    patient still has home doses planned around the day (RULES L-11: oral failure is mostly adherence; the
    month-3 review itself is the L-11 recheck, reminded like any recheck)."""
    every = int(settings.COBALT["REMINDER_HOME_DOSE_EVERY_MONTHS"])
    if every <= 0:
        return []
    running = (
        in_shard(ScheduledDose.objects.all(), "patient_id")
        .filter(
            self_administered=True,
            status=DoseStatus.PLANNED,
            regimen__status=RegimenStatus.ACTIVE,
            due_date__gte=lo,
            due_date__lte=hi,
        )
        .exclude(patient__reminder_channel=ReminderChannel.NONE)
        .values("regimen_id")
    )
    rows = (
        ScheduledDose.objects.filter(regimen_id__in=running, self_administered=True)
        .values("regimen_id", *PATIENT_FIELDS)
        .annotate(first=Min("due_date"))
    )
    out: list[Candidate] = []
    for r in rows:
        first: date = r["first"]
        day = lo
        while day <= hi:
            months = (day.year - first.year) * 12 + day.month - first.month
            # relativedelta clamps (31 January + 1 month = 28 February), as the schedule engine does.
            if months > 0 and months % every == 0 and first + relativedelta(months=months) == day:
                send_at = timing.send_at(day, r["patient__timezone"])
                if timing.in_window(send_at, at, r["patient__timezone"]):
                    channel = r["patient__reminder_channel"]
                    out.append(
                        Candidate(
                            key=reminder_key("home", r["regimen_id"], f"m{months}", day, channel),
                            purpose=Purpose.HOME_DOSE_PROMPT,
                            patient=_patient(r),
                            send_at=send_at,
                            context={},
                        )
                    )
            day += timedelta(days=1)
    return out


def _moved_candidates(at: datetime, timing: Timing) -> list[Candidate]:
    """One "your appointment moved" message per patient whose clinic dose was re-planned after they were
    told its date (a reminder or an earlier "moved" message went out, alone or merged into another): the
    first such appointment only, since one re-plan moves every later dose too. Sent now, or when the
    patient's quiet hours end."""
    told = Q(status=DeliveryStatus.SENT) | Q(status=DeliveryStatus.CANCELLED, last_error__startswith="merged into")
    rows = (
        in_shard(Delivery.objects.all(), "patient_id")
        .filter(
            told,
            purpose__in=(Purpose.DOSE_REMINDER, Purpose.APPOINTMENT_MOVED),
            dose__status=DoseStatus.PLANNED,
            dose__self_administered=False,
            dose__regimen__status=RegimenStatus.ACTIVE,
            dose__due_date__gte=(at - timedelta(days=1)).date(),
        )
        .exclude(patient__reminder_channel=ReminderChannel.NONE)
        .order_by("dose_id", "updated_at", "id")
        .values("dose_id", "idempotency_key", "dose__due_date", "dose__appointment_time", *PATIENT_FIELDS)
    )
    latest: dict[int, dict[str, Any]] = {}
    for r in rows:
        latest[r["dose_id"]] = r  # ordered by time: the last one told wins
    first_per_patient: dict[int, Candidate] = {}
    for dose_id, r in sorted(latest.items(), key=lambda item: (item[1]["dose__due_date"], item[0])):
        was, now_due, tz = key_date(r["idempotency_key"]), r["dose__due_date"], r["patient__timezone"]
        if was is None or was == now_due or now_due < local_date(at, tz) or r["patient_id"] in first_per_patient:
            continue
        send_at = timing.quiet_until(at, tz) or at
        first_per_patient[r["patient_id"]] = Candidate(
            key=reminder_key("moved", dose_id, f"from{was.isoformat()}", now_due, r["patient__reminder_channel"]),
            purpose=Purpose.APPOINTMENT_MOVED,
            patient=_patient(r),
            send_at=send_at,
            context={
                "date": now_due,
                "old_date": was,
                "time": appointment_time(r["dose__appointment_time"], r["patient__clinic__session_start"]),
            },
            dose_id=dose_id,
        )
    return list(first_per_patient.values())


def _delivery(c: Candidate, address: str) -> Delivery:
    p = c.patient
    subject, body = messages.render(
        c.purpose,
        p["language"],
        {
            "name": p["given_name"],
            "clinic": p["clinic__name"],
            "clinic_phone": p["clinic__phone"],
            # "or reply to this message" only where a reply reaches the clinic (its email as Reply-To).
            "can_reply": p["reminder_channel"] == ReminderChannel.EMAIL and bool(p["clinic__email"]),
            **c.context,
        },
    )
    return Delivery(
        idempotency_key=c.key,
        purpose=c.purpose,
        channel=p["reminder_channel"],
        patient_id=p["patient_id"],
        address=address,
        language=messages.language_of(p["language"]),
        subject=subject,
        body=body,
        due_at=c.send_at,
        dose_id=c.dose_id,
        recheck_id=c.recheck_id,
    )


def _contact_missing(patient_ids: set[int], channels: dict[int, str], at: datetime) -> int:
    """One contact_missing alert per patient (one unresolved per kind; RULES §3.6), MEDIUM: it reaches
    staff in the next digest. The new ones are opened in bulk (alerts_open_many)."""
    if not patient_ids:
        return 0
    open_already = set(
        _unresolved(AlertKind.CONTACT_MISSING).filter(patient_id__in=patient_ids).values_list("patient_id", flat=True)
    )
    new: list[NewAlert] = []
    for pid in sorted(patient_ids - open_already):
        channel = channels[pid]
        what = "an email address" if channel == ReminderChannel.EMAIL else "a mobile phone number"
        new.append(
            NewAlert(
                patient_id=pid,
                kind=AlertKind.CONTACT_MISSING,
                severity="medium",
                message=f"Reminders are due by {channel} but the patient has no {what} on file: they are not sent.",
                action_text=f"Add {what} to the patient's record, or change their reminder channel.",
                evidence={"reminder_channel": channel},
            )
        )
    return len(alerts_open_many(new, at=at))


def _unresolved(kind: str) -> QuerySet[Alert]:
    return Alert.objects.filter(kind=kind).exclude(status=AlertStatus.RESOLVED)


def _resolve_contact_missing(at: datetime) -> int:
    """Close contact_missing alerts once the patient has a usable contact (or opted out)."""
    fixed = (
        Q(patient__reminder_channel=ReminderChannel.NONE)
        | Q(patient__reminder_channel=ReminderChannel.EMAIL, patient__email__contains="@")
        | (Q(patient__reminder_channel=ReminderChannel.SMS) & ~Q(patient__phone=""))
    )
    return int(
        in_shard(_unresolved(AlertKind.CONTACT_MISSING), "patient_id")
        .filter(fixed)
        .update(status=AlertStatus.RESOLVED, resolved_at=at, resolution="contact details added or opted out")
    )


def cancel_irrelevant(at: datetime) -> int:
    """Cancel pending reminders whose dose was given, not given, cancelled or moved, whose recheck is no
    longer due, or whose patient opted out or changed channel; point the rest at the patient's current
    address."""
    rows = (
        in_shard(Delivery.objects.all(), "patient_id")
        .filter(status=DeliveryStatus.PENDING, purpose__in=REMINDER_PURPOSES)
        .values("id", "address", "patient__email", "patient__phone", *RELEVANCE_FIELDS)
    )
    by_reason: dict[str, list[int]] = {}
    readdressed: list[Delivery] = []
    for r in rows:
        current = usable_address(r["channel"], r["patient__email"], r["patient__phone"])
        if current and current != r["address"]:
            # The patient updated their contact details since the row was written.
            readdressed.append(Delivery(pk=r["id"], address=current))
        reason = row_irrelevance(r)
        if reason:
            by_reason.setdefault(reason, []).append(r["id"])
    # Inside the sweep's transaction, on rows it just read as pending: one joined UPDATE per 1,000 rows.
    bulk.update_rows(Delivery, readdressed, ["address"], where={"status": DeliveryStatus.PENDING})
    return sum(outbox.cancel(Delivery.objects.filter(id__in=ids), reason) for reason, ids in by_reason.items())


def plan_reminders(at: datetime) -> dict[str, int]:
    """The "reminders" sweep: write the reminders due within the lookahead, cancel the ones no longer
    wanted, and raise contact_missing for patients we cannot reach. Idempotent for the same `at`. Reads only
    the running shard's patients (tracker.sweeps.in_shard)."""
    timing = Timing.from_settings()
    # Local dates anywhere on earth (UTC-12 .. UTC+14) whose send time can fall in the window.
    lo = (at - timing.stale - timedelta(hours=12)).date()
    hi = (at + timing.lookahead + timedelta(hours=14)).date()
    with transaction.atomic():
        cancelled = cancel_irrelevant(at)
        candidates = (
            _dose_candidates(at, timing, lo, hi)
            + _recheck_candidates(at, timing, lo, hi)
            + _moved_candidates(at, timing)
            + _home_dose_candidates(at, timing, lo, hi)
        )
        existing = set(
            Delivery.objects.filter(idempotency_key__in=[c.key for c in candidates]).values_list(
                "idempotency_key", flat=True
            )
        )
        new: list[Delivery] = []
        missing: dict[int, str] = {}
        for c in candidates:
            if c.key in existing:
                continue
            p = c.patient
            address = usable_address(p["reminder_channel"], p["email"], p["phone"])
            if not address:
                missing[p["patient_id"]] = p["reminder_channel"]
                continue
            existing.add(c.key)
            new.append(_delivery(c, address))
        # ignore_conflicts: a concurrent sweep may have written the same keys; the unique key keeps one.
        # Rows already due are sent by the outbox sweep that runs next (tracker/sweeps.py order).
        Delivery.objects.bulk_create(new, ignore_conflicts=True, batch_size=bulk.BATCH_SIZE)
        resolved = _resolve_contact_missing(at)
        raised = _contact_missing(set(missing), missing, at)
    return {
        "reminders_written": len(new),
        "reminders_cancelled": cancelled,
        "contact_missing_raised": raised,
        "contact_missing_resolved": resolved,
    }
