"""The clinic admin's dashboard: one selector for the page (/dashboard/) and the API (/api/dashboard/).

`dashboard_for` reads every app's data, which is why it lives in monitoring (the top app: it may import
them all). Every figure is an aggregate query, so the number of queries does not grow with rows
(tests/monitoring/test_dashboard.py pins it at two sizes); two of them are written in SQL, for shapes the ORM
cannot say (a count per day summed per month, two grouping sets in one pass). Days are the clinic's days:
"today" is the clinic's date, and a dose given at 23:30 in London counts on that London day.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Min, Q
from django.db.models.functions import Extract
from django.utils import timezone

from monitoring import portable
from monitoring.normalization import day_bands, normalization_summary
from notifications.management.commands.queue_health import queue_health
from notifications.models import Alert, AlertKind, AlertStatus, Delivery, DeliveryStatus, Purpose, Severity
from patients.models import Clinic, Patient, ReminderChannel
from regimens.models import DoseStatus, LabRecheck, RecheckStatus, ScheduledDose
from tracker.clock import local_date
from tracker.errors import ServiceError

MAX_PERIOD_DAYS = 731  # two years: the adherence table has a row per month
WORKLOAD_DAYS = 8 * 7  # the workload chart: today and the next 8 weeks
# RULES A-H4, A-P2, A-H7: the alerts that say a patient is not normalizing.
NOT_NORMALIZING_KINDS = (
    AlertKind.HEMOGLOBIN_NOT_NORMALIZED,
    AlertKind.PLATELETS_NOT_NORMALIZED,
    AlertKind.HEMOGLOBIN_REFRACTORY,
)
PATIENT_REMINDERS = (Purpose.DOSE_REMINDER, Purpose.RECHECK_REMINDER, Purpose.DOSE_OVERDUE)
UNRESOLVED = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)
OPEN_RECHECKS = (RecheckStatus.DUE, RecheckStatus.OVERDUE)


class Median(Aggregate):
    """PostgreSQL's median (the 50th percentile, interpolated) of a number."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


@dataclass(frozen=True)
class Grace:
    """RULES S-4: a maintenance dose is overdue (MEDIUM) after this many days, fewer for neurological
    patients. A dose given within the grace counts as given on time. The numbers are the monitoring
    sweep's (COBALT OVERDUE_*_AFTER_DAYS), defined once in tracker/settings/cobalt_monitoring.py."""

    days: int
    neuro_days: int
    high_days: int

    @classmethod
    def from_settings(cls) -> Grace:
        cobalt = settings.COBALT
        return cls(
            days=int(cobalt["OVERDUE_MEDIUM_AFTER_DAYS"]),
            neuro_days=int(cobalt["OVERDUE_NEURO_MEDIUM_AFTER_DAYS"]),
            high_days=int(cobalt["OVERDUE_HIGH_AFTER_DAYS"]),
        )

    def overdue_bands(self) -> list[tuple[str, int, int | None]]:
        """(key, first day, last day or None) of the overdue histogram, cut at S-4's thresholds."""
        return day_bands({self.neuro_days, self.days, self.high_days})


def default_period(today: date) -> tuple[date, date]:
    """The first day of the month five months back, to today: six calendar months of adherence."""
    year, month = today.year, today.month - 5
    while month < 1:
        month += 12
        year -= 1
    return date(year, month, 1), today


def check_period(start: date | None, end: date | None) -> None:
    """Refuse a period that ends before it starts or is longer than two years (naming the field). A period of one
    bound is checked against its default other end by `period`, which knows the clinic's today."""
    if start and end and start > end:
        raise ServiceError("to", "must be on or after the first day of the period (`from`).")
    if start and end and (end - start).days > MAX_PERIOD_DAYS:
        raise ServiceError("from", f"the period may be at most {MAX_PERIOD_DAYS} days long.")


def period(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """The period asked for, an end not given taken from `default_period(today)`, checked as a whole: `from` alone
    runs to today and `to` alone from the first of the month five months back, so either alone can still make a
    period that ends before it starts or is longer than two years. The error names the day that was given."""
    check_period(start, end)
    default_start, default_end = default_period(today)
    first, last = start or default_start, end or default_end
    too_long = f"the period may be at most {MAX_PERIOD_DAYS} days long"
    if start is None and end is not None:
        if end < first:
            raise ServiceError(
                "to", f"must be on or after the first day of the period ({first} when no first day is given)."
            )
        if (end - first).days > MAX_PERIOD_DAYS:
            raise ServiceError("to", f"{too_long} (without a first day it starts on {first}).")
    if start is not None and end is None:
        if start > last:
            raise ServiceError(
                "from", "must be on or before the last day of the period (today when no last day is given)."
            )
        if (last - start).days > MAX_PERIOD_DAYS:
            raise ServiceError("from", f"{too_long} (without a last day it ends today).")
    return first, last


def _months(start: date, end: date) -> list[date]:
    months, cursor = [], date(start.year, start.month, 1)
    while cursor <= end:
        months.append(cursor)
        cursor = date(cursor.year + (cursor.month == 12), cursor.month % 12 + 1, 1)
    return months


def _start_of_day(day: date, zone: zoneinfo.ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def dashboard_for(
    *, clinic: Clinic, start: date | None = None, end: date | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Every figure of the clinic's dashboard for the period `start`..`end` (clinic days, inclusive;
    default: six calendar months to today). Work figures are about today and the weeks ahead; adherence,
    acknowledgement times and reminders about the period; open alerts and the outbox about now."""
    now = now or timezone.now()
    zone = zoneinfo.ZoneInfo(clinic.timezone)
    today = local_date(now, clinic.timezone)
    start, end = period(start, end, today)
    period_from, period_to = _start_of_day(start, zone), _start_of_day(end + timedelta(days=1), zone)
    grace = Grace.from_settings()
    return {
        "clinic": {"id": clinic.id, "name": clinic.name, "timezone": clinic.timezone},
        "today": today.isoformat(),
        "period": {"from": start.isoformat(), "to": end.isoformat()},
        "work": _work(clinic, today, grace),
        "adherence": _adherence(clinic, start, min(end, today - timedelta(days=1)), grace),
        "outcomes": _outcomes(clinic, period_from, period_to, today),
        "delivery": _delivery(clinic, now, period_from, period_to),
    }


def _work(clinic: Clinic, today: date, grace: Grace) -> dict[str, Any]:
    # The counts count a column of the index they read (due_date, window_end; never null), not the id: PostgreSQL
    # then answers from the index alone (COUNT(*) cannot take a filter in Django).
    planned = ScheduledDose.objects.filter(clinic=clinic, status=DoseStatus.PLANNED)
    last = today + timedelta(days=WORKLOAD_DAYS - 1)
    per_day = dict(
        planned.filter(due_date__range=(today, last)).values_list("due_date").annotate(n=Count("due_date")).order_by()
    )
    closed = set(clinic.closed_dates.filter(date__range=(today, last)).values_list("date", flat=True))
    days = []
    for offset in range(WORKLOAD_DAYS):
        day = today + timedelta(days=offset)
        days.append(
            {
                "date": day.isoformat(),
                "doses": per_day.get(day, 0),
                "open": day.weekday() in clinic.open_weekdays and day not in closed,
            }
        )
    end_of_week = today + timedelta(days=6 - today.weekday())
    # Overdue: still planned and due before the clinic's today, in S-4's bands of days overdue.
    band_counts = planned.filter(due_date__lt=today).aggregate(
        **{
            key: Count(
                "due_date",
                filter=Q(due_date__lte=today - timedelta(days=low))
                & (Q(due_date__gte=today - timedelta(days=high)) if high is not None else Q()),
            )
            for key, low, high in grace.overdue_bands()
        }
    )
    # Only the open rechecks (recheck_open_patient_idx), not every recheck ever done.
    open_rechecks = LabRecheck.objects.filter(patient__clinic=clinic, status__in=OPEN_RECHECKS)
    rechecks = open_rechecks.aggregate(
        due=Count("window_end", filter=Q(status=RecheckStatus.DUE, window_start__lte=today, window_end__gte=today)),
        # A due recheck whose window has closed is overdue before the sweep marks it (as the API says).
        overdue=Count("window_end", filter=Q(status=RecheckStatus.OVERDUE) | Q(window_end__lt=today)),
    )
    return {
        "due_this_week": sum(d["doses"] for d in days if d["date"] <= end_of_week.isoformat()),
        "due_next_8_weeks": sum(d["doses"] for d in days),
        "days": days,
        "overdue": sum(band_counts.values()),
        "overdue_by_days": [
            {"days": key, "from": low, "to": high, "doses": band_counts[key]}
            for key, low, high in grace.overdue_bands()
        ],
        "rechecks_due": rechecks["due"],
        "rechecks_overdue": rechecks["overdue"],
    }


# The adherence table in one pass over the period's doses: counted per due date first (a date is cheap to group
# by), then the few day rows per month (cheaper than truncating every dose's date to its month).
# A dose is on time when given (on the clinic's day) within the S-4 grace of its patient.
ADHERENCE_SQL = """
SELECT date_trunc('month', day::timestamp)::date AS month, SUM(due)::int AS due, SUM(given)::int AS given,
       SUM(on_time)::int AS on_time, SUM(not_given)::int AS not_given, SUM(missed)::int AS missed
FROM (
    SELECT d.due_date AS day, COUNT(*) AS due,
           COUNT(*) FILTER (WHERE d.status = %(given)s) AS given,
           COUNT(*) FILTER (
               WHERE d.status = %(given)s AND (d.administered_at AT TIME ZONE %(zone)s)::date - d.due_date
                     <= CASE WHEN p.neurological_involvement THEN %(neuro_days)s ELSE %(days)s END
           ) AS on_time,
           COUNT(*) FILTER (WHERE d.status = %(not_given)s) AS not_given,
           COUNT(*) FILTER (WHERE d.status = %(planned)s) AS missed
    FROM regimens_scheduleddose d JOIN patients_patient p ON p.id = d.patient_id
    WHERE d.clinic_id = %(clinic)s AND d.due_date BETWEEN %(start)s AND %(end)s
      AND d.status IN (%(given)s, %(not_given)s, %(planned)s)
    GROUP BY d.due_date
) per_day
GROUP BY 1
"""


def _rows(sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of one SQL statement, as dicts by column name."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _adherence(clinic: Clinic, start: date, end: date, grace: Grace) -> dict[str, Any]:
    """Doses due in the period up to yesterday (today's may still be given), per month: how many were
    due, given, given within the S-4 grace, not given, and still planned (missed so far)."""
    due = ScheduledDose.objects.filter(
        clinic=clinic,
        due_date__range=(start, end),
        status__in=[DoseStatus.GIVEN, DoseStatus.NOT_GIVEN, DoseStatus.PLANNED],
    )
    if connection.vendor != "postgresql":  # SQLite (`make run`'s demo): the same rows counted in Python
        rows = portable.adherence_rows(clinic, start, end, grace.days, grace.neuro_days)
    else:
        rows = _rows(
            ADHERENCE_SQL,
            {
                "clinic": clinic.pk,
                "start": start,
                "end": end,
                "zone": clinic.timezone,
                "days": grace.days,
                "neuro_days": grace.neuro_days,
                "given": DoseStatus.GIVEN.value,
                "not_given": DoseStatus.NOT_GIVEN.value,
                "planned": DoseStatus.PLANNED.value,
            },
        )
    by_month = {row["month"]: row for row in rows}
    months = []
    for month in _months(start, end) if start <= end else []:
        row = by_month.get(month, {"due": 0, "given": 0, "on_time": 0, "not_given": 0, "missed": 0})
        months.append(
            {
                "month": month.isoformat()[:7],  # YYYY-MM, the year in four digits (strftime's %Y is not)
                **{key: row[key] for key in ("due", "given", "on_time", "not_given", "missed")},
                "on_time_share": _share(row["on_time"], row["due"]),
            }
        )
    reasons = (
        due.filter(status=DoseStatus.NOT_GIVEN)
        .values("not_given_reason")
        .annotate(n=Count("*"))
        .order_by("-n", "not_given_reason")
    )
    total_due = sum(m["due"] for m in months)
    total_on_time = sum(m["on_time"] for m in months)
    return {
        "grace_days": grace.days,
        "grace_days_neurological": grace.neuro_days,
        "due": total_due,
        "on_time": total_on_time,
        "on_time_share": _share(total_on_time, total_due),
        "months": months,
        "not_given_by_reason": [{"reason": r["not_given_reason"] or "", "doses": r["n"]} for r in reasons],
    }


# The clinic's open alerts by severity and by kind in one pass (two grouping sets: a row per severity, whose kind
# is NULL, and a row per kind, whose severity is NULL).
OPEN_ALERTS_SQL = """
SELECT a.severity, a.kind, COUNT(*) AS n
FROM notifications_alert a JOIN patients_patient p ON p.id = a.patient_id
WHERE p.clinic_id = %(clinic)s AND a.status = %(open)s
GROUP BY GROUPING SETS ((a.severity), (a.kind))
ORDER BY n DESC, a.kind
"""


def _outcomes(clinic: Clinic, period_from: datetime, period_to: datetime, today: date) -> dict[str, Any]:
    alerts = Alert.objects.filter(patient__clinic=clinic)
    if connection.vendor == "postgresql":
        open_alerts = _rows(OPEN_ALERTS_SQL, {"clinic": clinic.pk, "open": AlertStatus.OPEN.value})
    else:  # SQLite (`make run`'s demo): two GROUP BYs
        open_alerts = portable.open_alert_rows(clinic)
    by_severity = {r["severity"]: r["n"] for r in open_alerts if r["severity"] is not None}
    by_kind = [r for r in open_alerts if r["kind"] is not None]
    in_period = alerts.filter(acknowledged_at__gte=period_from, acknowledged_at__lt=period_to)
    if connection.vendor == "postgresql":
        acknowledged = in_period.aggregate(
            n=Count("id"), median=Median(Extract(F("acknowledged_at") - F("opened_at"), "epoch"))
        )
    else:  # SQLite (`make run`'s demo): the median of the few acknowledgements in Python
        acknowledged = portable.acknowledgement_median(in_period)
    not_normalizing = alerts.filter(kind__in=NOT_NORMALIZING_KINDS, status__in=UNRESOLVED).aggregate(
        **{kind.value: Count("patient", distinct=True, filter=Q(kind=kind)) for kind in NOT_NORMALIZING_KINDS},
        patients=Count("patient", distinct=True),
    )
    kinds = dict(AlertKind.choices)
    median = acknowledged["median"]
    return {
        "open_alerts": sum(by_severity.values()),
        "open_by_severity": [
            {"severity": value, "alerts": by_severity.get(value, 0)} for value in reversed(Severity.values)
        ],
        "open_by_kind": [
            {"kind": r["kind"], "label": kinds.get(r["kind"], r["kind"]), "alerts": r["n"]} for r in by_kind
        ],
        "acknowledged_in_period": acknowledged["n"],
        "median_hours_to_acknowledge": round(median / 3600, 1) if median is not None else None,
        "not_normalizing_patients": not_normalizing.pop("patients"),
        "not_normalizing_by_kind": [
            {"kind": kind.value, "label": kinds[kind.value], "patients": not_normalizing[kind.value]}
            for kind in NOT_NORMALIZING_KINDS
        ],
        # Now, not the period: every patient on a regimen (monitoring/normalization.py).
        "time_to_normalization": normalization_summary(clinic, today),
    }


def _delivery(clinic: Clinic, now: datetime, period_from: datetime, period_to: datetime) -> dict[str, Any]:
    reminders = Delivery.objects.filter(patient__clinic=clinic, purpose__in=PATIENT_REMINDERS)
    counts = reminders.aggregate(
        sent=Count("id", filter=Q(status=DeliveryStatus.SENT, sent_at__gte=period_from, sent_at__lt=period_to)),
        failed=Count(
            "id", filter=Q(status=DeliveryStatus.FAILED, updated_at__gte=period_from, updated_at__lt=period_to)
        ),
        oldest=Min("due_at", filter=Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING], due_at__lte=now)),
    )
    oldest = counts["oldest"]
    return {
        "reminders_sent": counts["sent"],
        "reminders_failed": counts["failed"],
        "opted_out_patients": Patient.objects.filter(clinic=clinic, reminder_channel=ReminderChannel.NONE).count(),
        "oldest_undelivered_due_at": oldest.isoformat() if oldest else None,
        "oldest_undelivered_age_hours": round((now - oldest).total_seconds() / 3600, 1) if oldest else None,
        # The whole outbox, every clinic's: what `manage.py queue_health` prints.
        "outbox": queue_health(now),
    }
