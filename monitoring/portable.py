"""The dashboard's figures that PostgreSQL computes in one statement each (monitoring/dashboard.py ADHERENCE_SQL,
OPEN_ALERTS_SQL and the median wait to acknowledge), computed in Python from plain ORM reads for the other
databases Django runs on: the SQLite file of `make run`'s demo (a few dozen patients). The same definitions (RULES
S-4 grace for adherence) and the same output; time to normalization has its own Python path beside its statement
(monitoring/normalization.py). tests/monitoring/test_dashboard_portable.py checks that both paths give the same
figures on PostgreSQL."""

from __future__ import annotations

import statistics
from datetime import date
from typing import Any

from django.db.models import Count, QuerySet

from notifications.models import Alert, AlertStatus
from regimens.models import DoseStatus, ScheduledDose
from tracker.clock import local_date


def adherence_rows(clinic: Any, start: date, end: date, grace_days: int, neuro_days: int) -> list[dict[str, Any]]:
    """Per month of due date: due, given, given within the S-4 grace (the clinic's day of giving), not given, and
    still planned; the rows of ADHERENCE_SQL."""
    months: dict[date, dict[str, Any]] = {}
    doses = ScheduledDose.objects.filter(
        clinic=clinic,
        due_date__range=(start, end),
        status__in=[DoseStatus.GIVEN, DoseStatus.NOT_GIVEN, DoseStatus.PLANNED],
    ).values_list("due_date", "status", "administered_at", "patient__neurological_involvement")
    for due_date, status, administered_at, neurological in doses:
        row = months.setdefault(
            due_date.replace(day=1),
            {"month": due_date.replace(day=1), "due": 0, "given": 0, "on_time": 0, "not_given": 0, "missed": 0},
        )
        row["due"] += 1
        if status == DoseStatus.GIVEN:
            row["given"] += 1
            allowed = neuro_days if neurological else grace_days
            given_on = None if administered_at is None else local_date(administered_at, clinic.timezone)
            if given_on is not None and (given_on - due_date).days <= allowed:
                row["on_time"] += 1
        elif status == DoseStatus.NOT_GIVEN:
            row["not_given"] += 1
        else:
            row["missed"] += 1
    return [months[m] for m in sorted(months)]


def open_alert_rows(clinic: Any) -> list[dict[str, Any]]:
    """The clinic's open alerts counted by severity (kind None) and by kind (severity None): OPEN_ALERTS_SQL's
    rows, in its order (most first, then kind)."""
    open_alerts = Alert.objects.filter(patient__clinic=clinic, status=AlertStatus.OPEN).order_by()
    rows = [
        {"severity": r["severity"], "kind": None, "n": r["n"]}
        for r in open_alerts.values("severity").annotate(n=Count("id"))
    ] + [{"severity": None, "kind": r["kind"], "n": r["n"]} for r in open_alerts.values("kind").annotate(n=Count("id"))]
    return sorted(rows, key=lambda r: (-r["n"], r["kind"] is None, r["kind"] or ""))


def acknowledgement_median(acknowledged: QuerySet[Alert]) -> dict[str, Any]:
    """How many alerts were acknowledged and the median seconds from opening to acknowledgement."""
    waits = [
        (at - opened).total_seconds()
        for at, opened in acknowledged.values_list("acknowledged_at", "opened_at")
        if at is not None and opened is not None
    ]
    return {"n": len(waits), "median": statistics.median(waits) if waits else None}
