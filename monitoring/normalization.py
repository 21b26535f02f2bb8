"""Time to normalization of hemoglobin and platelets, per patient and as a distribution (the dashboard's
outcomes; the way INRstar reports time in therapeutic range: each patient's figure, then how the clinic's
patients spread over bands of it).

For each patient of the clinic whose current regimen (RULES §10 V-1: the active one, else the latest) has a
T0 (the first dose given in it, regimens/selectors.py `regimen_t0`) and was not entered by enrolment at
maintenance (V-1: no response windows), and whose baseline of the analyte (the latest result on or before
T0, as the response rules read it) was below the normal range (interpretation low or critically low, stored
on LabResult from patients/labs/reference_ranges.py: the lab's own range, else the §5.2 default):

- normalized: days from T0 to the first later result at or above the lower limit of normal, the target of
  A-H4 (Hb "still below the sex-specific LLN" at day 56 ± 7) and A-P2 (platelets < LLN at day 14 ± 2; §3.6:
  "A-P2 closes when platelets are >= LLN"). A rebound above the range (A-P5) has reached the target too.
  Hb results within the §3.6 post-transfusion suppression are not read (the rules do not read them either);
  results entered in error never count.
- not yet: no such result so far, with the days since T0 (to the clinic's today).

The bands are cut at the last day of the windows in which RULES judges normalization (A-P2, A-P4, A-H4,
A-H7; monitoring/rules/base.py RuleSettings, with the operator's overrides): "normalized before A-P2 could
fire", and so on. The target of each analyte is its own rule's window end (Hb: A-H4, platelets: A-P2).

One query whatever the clinic's size (monitoring/normalization.py MEASURED_SQL, every step an index lookup):
the rows for the list behind the dashboard; the dashboard's distribution counts the same rows in PostgreSQL
(`normalization_summary`), so it reads two rows whatever the clinic's size. On another database (`make run`'s
SQLite demo) the same rows and counts are worked out in Python from plain ORM reads (`_rows_in_python`,
`_counts_in_python`; tests/monitoring/test_dashboard_portable.py checks both paths agree).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import connection, transaction

from monitoring.inputs import rule_settings
from monitoring.rules.base import RuleSettings
from patients.models import FactKind, Interpretation, LabResult, PatientFact
from regimens.models import DoseStatus, Regimen, RegimenStatus, ScheduledDose
from tracker.clock import local_date

ANALYTES = ("hemoglobin", "platelets")
BELOW = (Interpretation.LOW.value, Interpretation.CRITICALLY_LOW.value)
# At or above the LLN: the target of A-H4 and A-P2.
AT_TARGET = (Interpretation.NORMAL.value, Interpretation.HIGH.value, Interpretation.CRITICALLY_HIGH.value)
NOT_YET = "not_yet"


@dataclass(frozen=True)
class PatientNormalization:
    patient: int
    mrn: str
    name: str
    analyte: str
    t0: date
    baseline_value: Decimal | None
    baseline_on: date
    normalized_on: date | None  # the first result at or above the LLN
    days: int | None  # from T0 to normalized_on
    days_so_far: int  # from T0 to today when not yet normalized, else `days`
    band: str

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("t0", "baseline_on", "normalized_on"):
            data[key] = data[key].isoformat() if data[key] else None
        data["baseline_value"] = None if self.baseline_value is None else str(self.baseline_value)
        return data


def day_bands(cuts: set[int]) -> list[tuple[str, int, int | None]]:
    """(key, first day, last day or None) from day 1, one band ending at each cut, then the open band after the
    last: {16, 30} -> 1-16, 17-30, 31+. The dashboard's histograms share it."""
    out: list[tuple[str, int, int | None]] = []
    first = 1
    for cut in sorted(cuts):
        out.append((f"{first}-{cut}", first, cut))
        first = cut + 1
    out.append((f"{first}+", first, None))
    return out


def bands(settings: RuleSettings) -> list[tuple[str, int, int | None]]:
    """(key, first day, last day or None) cut at the last day of A-P2, A-P4, A-H4 and A-H7's windows."""
    return day_bands(
        {settings.a_p2_window[1], settings.a_p4_window[1], settings.a_h4_window[1], settings.a_h7_window[1]}
    )


def target_days(settings: RuleSettings) -> dict[str, tuple[int, str]]:
    """Each analyte's target: normalized by the last day of its rule's window, and the rule."""
    return {"hemoglobin": (settings.a_h4_window[1], "A-H4"), "platelets": (settings.a_p2_window[1], "A-P2")}


def _band_of(days: int, cut: list[tuple[str, int, int | None]]) -> str:
    return next(key for key, low, high in cut if days >= low and (high is None or days <= high))


# One statement, evaluated by PostgreSQL: (patient, analyte) rows of every measured patient, with T0, the
# baseline and the first result at target. Each step reads through an index: the clinic's patients with a
# hemoglobin or platelet result below the range (labresult_below_idx; no other patient can have a baseline below
# it), their regimens, the first given dose of the current one (dose_regimen_given_idx), the latest result on or
# before T0 and the first at target after it (labresult_patient_idx: patient, analyte, collected_at), the
# transfusions (fact_patient_kind_idx). Days are the patient's (collected_at and administered_at in the patient's
# zone).
MEASURED_SQL = """
WITH current AS (
    SELECT DISTINCT ON (r.patient_id) r.id, r.patient_id, r.options, p.mrn, p.given_name, p.family_name, p.timezone
    FROM regimens_regimen r JOIN patients_patient p ON p.id = r.patient_id
    WHERE p.clinic_id = %(clinic)s
      -- Only a patient with a result below the range can have a baseline below it (labresult_below_idx).
      AND EXISTS (
          SELECT 1 FROM patients_labresult z
          WHERE z.patient_id = p.id AND z.analyte IN ('hemoglobin', 'platelets')
            AND z.interpretation = ANY(%(below)s) AND z.error_recorded_at IS NULL
      )
    ORDER BY r.patient_id, (r.status = %(active)s) DESC, r.start_date DESC, r.id DESC
), treated AS (
    SELECT c.*, (f.first_at AT TIME ZONE c.timezone)::date AS t0
    FROM current c
    CROSS JOIN LATERAL (
        SELECT MIN(d.administered_at) AS first_at FROM regimens_scheduleddose d
        WHERE d.regimen_id = c.id AND d.status = %(given)s AND d.administered_at IS NOT NULL
    ) f
    WHERE f.first_at IS NOT NULL
      AND NOT (jsonb_typeof(c.options) = 'object' AND COALESCE(c.options -> 'enrol', 'null'::jsonb) <> 'null'::jsonb)
), measured AS (
    SELECT t.patient_id, t.mrn, t.given_name, t.family_name, t.timezone, t.t0, a.analyte,
           b.day AS baseline_on, b.value AS baseline_value
    FROM treated t
    CROSS JOIN (VALUES ('hemoglobin'), ('platelets')) AS a(analyte)
    CROSS JOIN LATERAL (
        SELECT (x.collected_at AT TIME ZONE t.timezone)::date AS day, x.value_canonical AS value, x.interpretation
        FROM patients_labresult x
        WHERE x.patient_id = t.patient_id AND x.analyte = a.analyte AND x.error_recorded_at IS NULL
          AND (x.collected_at AT TIME ZONE t.timezone)::date <= t.t0
        ORDER BY x.collected_at DESC, x.id DESC
        LIMIT 1
    ) b
    WHERE b.interpretation = ANY(%(below)s)
)
SELECT m.patient_id, m.mrn, m.given_name, m.family_name, m.analyte, m.t0, m.baseline_value, m.baseline_on,
    (
        SELECT (y.collected_at AT TIME ZONE m.timezone)::date
        FROM patients_labresult y
        WHERE y.patient_id = m.patient_id AND y.analyte = m.analyte AND y.error_recorded_at IS NULL
          AND (y.collected_at AT TIME ZONE m.timezone)::date > m.t0
          AND y.interpretation = ANY(%(at_target)s)
          AND NOT (m.analyte = 'hemoglobin' AND EXISTS (
              SELECT 1 FROM patients_patientfact f
              WHERE f.patient_id = m.patient_id AND f.kind = %(transfusion)s AND NOT f.absent
                AND f.onset_date IS NOT NULL
                AND (y.collected_at AT TIME ZONE m.timezone)::date - f.onset_date BETWEEN 0 AND %(quiet)s
          ))
        ORDER BY y.collected_at, y.id
        LIMIT 1
    ) AS normalized_on
FROM measured m
"""


def _params(clinic: Any, settings: RuleSettings) -> dict[str, Any]:
    return {
        "clinic": clinic.pk,
        "active": RegimenStatus.ACTIVE.value,
        "given": DoseStatus.GIVEN.value,
        "below": list(BELOW),
        "at_target": list(AT_TARGET),
        "transfusion": FactKind.TRANSFUSION.value,
        "quiet": settings.transfusion_suppression_days,
    }


def _fetch(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Run `sql` without PostgreSQL's JIT compiler: the planner's estimate of the per-patient lookups crosses
    jit_above_cost at a few thousand patients, and compiling then takes a second while running takes
    milliseconds (bench/README.md, the dashboard)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, params)
        return cursor.fetchall()


def normalization_rows(clinic: Any, today: date, settings: RuleSettings | None = None) -> list[PatientNormalization]:
    """Every measured patient's time to normalization of each analyte, by analyte, then MRN. One query."""
    settings = settings or rule_settings()
    cut = bands(settings)
    if connection.vendor != "postgresql":  # SQLite (`make run`'s demo): the same rows read in Python
        return _rows_in_python(clinic, today, settings)
    rows: list[PatientNormalization] = []
    measured = _fetch(MEASURED_SQL, _params(clinic, settings))
    for patient_id, mrn, given_name, family_name, analyte, t0, value, baseline_on, normalized_on in measured:
        days = None if normalized_on is None else (normalized_on - t0).days
        rows.append(
            PatientNormalization(
                patient=patient_id,
                mrn=mrn,
                name=f"{given_name} {family_name}",
                analyte=analyte,
                t0=t0,
                baseline_value=value,
                baseline_on=baseline_on,
                normalized_on=normalized_on,
                days=days,
                days_so_far=days if days is not None else max((today - t0).days, 0),
                band=NOT_YET if days is None else _band_of(days, cut),
            )
        )
    rows.sort(key=lambda r: (ANALYTES.index(r.analyte), r.mrn, r.patient))
    return rows


def _whole(value: float) -> float | int:
    return int(value) if value == int(value) else round(value, 1)


def normalization_summary(clinic: Any, today: date, settings: RuleSettings | None = None) -> dict[str, Any]:
    """Per analyte: patients measured, normalized, not yet (and how many of those are past the target day), the
    median days of the normalized, the share normalized by the target day among those whose target day has
    come, and the patients per band. One query: PostgreSQL counts the rows of `normalization_rows` (the same
    statement), so the dashboard reads two rows, not one per patient."""
    settings = settings or rule_settings()
    cut = bands(settings)
    targets = target_days(settings)
    band_counts = ", ".join(
        f"COUNT(*) FILTER (WHERE days >= {int(low)}" + (f" AND days <= {int(high)})" if high is not None else ")")
        for _, low, high in cut
    )
    summary_sql = f"""
        WITH measured_rows AS ({MEASURED_SQL}), judged AS (
            SELECT analyte, normalized_on - t0 AS days,
                   COALESCE(normalized_on - t0, GREATEST(%(today)s::date - t0, 0)) AS so_far,
                   CASE analyte WHEN 'hemoglobin' THEN %(hb_target)s ELSE %(plt_target)s END AS target
            FROM measured_rows
        )
        SELECT analyte, COUNT(*), COUNT(days), COUNT(*) FILTER (WHERE days IS NULL AND so_far > target),
               PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY days), COUNT(*) FILTER (WHERE days <= target),
               COUNT(*) FILTER (WHERE so_far > target OR days <= target), {band_counts}
        FROM judged GROUP BY analyte
    """  # noqa: S608 (the band limits are integers from the rule settings)
    params = {
        **_params(clinic, settings),
        "today": today,
        "hb_target": targets["hemoglobin"][0],
        "plt_target": targets["platelets"][0],
    }
    if connection.vendor == "postgresql":
        by_analyte = {row[0]: row[1:] for row in _fetch(summary_sql, params)}
    else:  # SQLite (`make run`'s demo): the same counts in Python
        by_analyte = _counts_in_python(
            normalization_rows(clinic, today, settings),
            {analyte: target for analyte, (target, _) in targets.items()},
            [key for key, _, _ in cut],
        )
    out: dict[str, Any] = {"bands": [{"band": key, "from": low, "to": high} for key, low, high in cut]}
    for analyte in ANALYTES:
        patients, normalized, past_target, median, on_target, judged, *per_band = by_analyte.get(
            analyte, (0, 0, 0, None, 0, 0, *([0] * len(cut)))
        )
        target, rule = targets[analyte]
        out[analyte] = {
            "patients": patients,
            "normalized": normalized,
            "not_yet": patients - normalized,
            "not_yet_past_target": past_target,
            "median_days": _whole(median) if median is not None else None,
            "target_days": target,
            "target_rule": rule,
            "normalized_by_target": on_target,
            "target_judged": judged,
            "normalized_by_target_share": round(on_target / judged, 4) if judged else None,
            "by_band": [{"band": key, "patients": n} for (key, _, _), n in zip(cut, per_band, strict=True)]
            + [{"band": NOT_YET, "patients": patients - normalized}],
        }
    return out


def _rows_in_python(clinic: Any, today: date, settings: RuleSettings) -> list[PatientNormalization]:
    """normalization_rows (MEASURED_SQL's definitions) read patient by patient in Python: the path on databases
    other than PostgreSQL (`make run`'s SQLite demo)."""
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


def _counts_in_python(
    rows: list[PatientNormalization], targets: dict[str, int], band_keys: list[str]
) -> dict[str, tuple[Any, ...]]:
    """Per analyte, the row the summary statement of normalization_summary returns: patients, normalized, not yet
    past the target day, median days, normalized by the target day, judged, then the normalized per band."""
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
