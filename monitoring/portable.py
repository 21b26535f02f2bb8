"""The dashboard's figures that PostgreSQL computes in one statement each (monitoring/dashboard.py ADHERENCE_SQL and
OPEN_ALERTS_SQL, monitoring/normalization.py MEASURED_SQL), computed in Python from plain ORM reads for the other
databases Django runs on: the SQLite file of `make run`'s demo (a few dozen patients). The same definitions
(RULES S-4 grace for adherence; V-1, T0, §3.6 and the A-H4/A-P2 targets for time to normalization) and the same
output; tests/monitoring/test_dashboard_portable.py checks that both give the same figures on PostgreSQL."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date
from typing import TYPE_CHECKING, Any

from django.db.models import Count, QuerySet

from notifications.models import Alert, AlertStatus
from patients.models import FactKind, LabResult, PatientFact
from regimens.models import DoseStatus, Regimen, RegimenStatus, ScheduledDose
from tracker.clock import local_date

if TYPE_CHECKING:
    from monitoring.normalization import PatientNormalization
    from monitoring.rules.base import RuleSettings


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


def normalization_rows(clinic: Any, today: date, settings: RuleSettings) -> list[PatientNormalization]:
    """Every measured patient's time to normalization of each analyte (monitoring/normalization.py for the
    definitions), read patient by patient in Python."""
    from monitoring.normalization import (
        ANALYTES,
        AT_TARGET,
        BELOW,
        NOT_YET,
        PatientNormalization,
        _band_of,
        bands,
    )

    cut = bands(settings)
    # 1. The patients' current regimens (V-1): the active one, else the latest by start date, then id; not
    # entered by enrolment at maintenance.
    current: dict[int, dict[str, Any]] = {}
    for raw in (
        Regimen.objects.filter(patient__clinic=clinic)
        .order_by("patient_id", "-start_date", "-id")
        .values("id", "patient_id", "status", "options", "patient__mrn", "patient__given_name",
                "patient__family_name", "patient__timezone")
    ):  # fmt: skip
        row: dict[str, Any] = dict(raw)
        held = current.get(row["patient_id"])
        if held is None or (row["status"] == RegimenStatus.ACTIVE and held["status"] != RegimenStatus.ACTIVE):
            current[row["patient_id"]] = row
    enrolled = {
        p for p, r in current.items() if isinstance(r["options"], dict) and r["options"].get("enrol") is not None
    }
    current = {p: r for p, r in current.items() if p not in enrolled}
    # 2. T0: the first dose given in that regimen, on the patient's clock.
    first_given: dict[int, Any] = {}
    for regimen_id, at in (
        ScheduledDose.objects.filter(patient__clinic=clinic, status=DoseStatus.GIVEN, administered_at__isnull=False)
        .order_by("regimen_id", "administered_at")
        .values_list("regimen_id", "administered_at")
    ):
        first_given.setdefault(regimen_id, at)
    t0s = {
        patient_id: local_date(first_given[held["id"]], held["patient__timezone"])
        for patient_id, held in current.items()
        if held["id"] in first_given
    }
    # 3. Their Hb and platelet results (not entered in error), oldest first; 4. transfusion dates (§3.6).
    results: dict[tuple[int, str], list[tuple[date, str, Any]]] = defaultdict(list)
    for patient_id, analyte, at, interpretation, value in (
        LabResult.objects.filter(patient__clinic=clinic, analyte__in=ANALYTES, error_recorded_at__isnull=True)
        .order_by("patient_id", "analyte", "collected_at", "id")
        .values_list("patient_id", "analyte", "collected_at", "interpretation", "value_canonical")
    ):
        if patient_id in t0s:
            results[(patient_id, analyte)].append(
                (local_date(at, current[patient_id]["patient__timezone"]), interpretation, value)
            )
    transfusions: dict[int, list[date]] = defaultdict(list)
    for patient_id, onset in PatientFact.objects.filter(
        patient__clinic=clinic, kind=FactKind.TRANSFUSION, absent=False, onset_date__isnull=False
    ).values_list("patient_id", "onset_date"):
        if onset is not None:
            transfusions[patient_id].append(onset)

    rows: list[PatientNormalization] = []
    for analyte in ANALYTES:
        for patient_id, t0 in t0s.items():
            series = results.get((patient_id, analyte), [])
            before = [r for r in series if r[0] <= t0]
            if not before or before[-1][1] not in BELOW:
                continue
            baseline = before[-1]
            after = [r for r in series if r[0] > t0]
            if analyte == "hemoglobin":
                quiet = settings.transfusion_suppression_days
                after = [r for r in after if not any(0 <= (r[0] - t).days <= quiet for t in transfusions[patient_id])]
            first = next((r for r in after if r[1] in AT_TARGET), None)
            days = None if first is None else (first[0] - t0).days
            regimen = current[patient_id]
            rows.append(
                PatientNormalization(
                    patient=patient_id,
                    mrn=regimen["patient__mrn"],
                    name=f"{regimen['patient__given_name']} {regimen['patient__family_name']}",
                    analyte=analyte,
                    t0=t0,
                    baseline_value=baseline[2],
                    baseline_on=baseline[0],
                    normalized_on=None if first is None else first[0],
                    days=days,
                    days_so_far=days if days is not None else max((today - t0).days, 0),
                    band=NOT_YET if days is None else _band_of(days, cut),
                )
            )
    rows.sort(key=lambda r: (ANALYTES.index(r.analyte), r.mrn, r.patient))
    return rows


def normalization_counts(
    rows: list[PatientNormalization], targets: dict[str, int], band_keys: list[str]
) -> dict[str, tuple[Any, ...]]:
    """Per analyte, the row the summary statement of normalization_summary returns: patients, normalized, not yet
    past the target day, median days, normalized by the target day, judged, then the normalized per band."""
    from monitoring.normalization import ANALYTES

    out: dict[str, tuple[Any, ...]] = {}
    for analyte in ANALYTES:
        mine = [r for r in rows if r.analyte == analyte]
        if not mine:
            continue
        target = targets[analyte]
        done = [r.days for r in mine if r.days is not None]
        out[analyte] = (
            len(mine),
            len(done),
            sum(1 for r in mine if r.days is None and r.days_so_far > target),
            statistics.median(done) if done else None,
            sum(1 for d in done if d <= target),
            sum(1 for r in mine if r.days_so_far > target or (r.days is not None and r.days <= target)),
            *[sum(1 for r in mine if r.band == key) for key in band_keys],
        )
    return out
