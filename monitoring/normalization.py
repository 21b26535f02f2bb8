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

Four queries whatever the clinic's size (regimens, first doses, results, transfusions); the rows are read
once and grouped in Python.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from typing import Any

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


def bands(settings: RuleSettings) -> list[tuple[str, int, int | None]]:
    """(key, first day, last day or None) cut at the last day of A-P2, A-P4, A-H4 and A-H7's windows."""
    cuts = sorted(
        {
            settings.a_p2_window[1],
            settings.a_p4_window[1],
            settings.a_h4_window[1],
            settings.a_h7_window[1],
        }
    )
    out: list[tuple[str, int, int | None]] = []
    first = 1
    for cut in cuts:
        out.append((f"{first}-{cut}", first, cut))
        first = cut + 1
    out.append((f"{first}+", first, None))
    return out


def target_days(settings: RuleSettings) -> dict[str, tuple[int, str]]:
    """Each analyte's target: normalized by the last day of its rule's window, and the rule."""
    return {"hemoglobin": (settings.a_h4_window[1], "A-H4"), "platelets": (settings.a_p2_window[1], "A-P2")}


def _band_of(days: int, cut: list[tuple[str, int, int | None]]) -> str:
    return next(key for key, low, high in cut if days >= low and (high is None or days <= high))


def normalization_rows(clinic: Any, today: date, settings: RuleSettings | None = None) -> list[PatientNormalization]:
    """Every measured patient's time to normalization of each analyte, by analyte, then MRN."""
    settings = settings or rule_settings()
    cut = bands(settings)
    # 1. The patients' current regimens (V-1): the active one, else the latest by start date, then id.
    current: dict[int, dict[str, Any]] = {}
    regimens = (
        Regimen.objects.filter(patient__clinic=clinic)
        .order_by("patient_id", "-start_date", "-id")
        .values(
            "id",
            "patient_id",
            "status",
            "options",
            "patient__mrn",
            "patient__given_name",
            "patient__family_name",
            "patient__timezone",
        )
    )
    for raw in regimens:
        row: dict[str, Any] = dict(raw)
        held = current.get(row["patient_id"])
        if held is None or (row["status"] == RegimenStatus.ACTIVE and held["status"] != RegimenStatus.ACTIVE):
            current[row["patient_id"]] = row
    current = {
        p: r
        for p, r in current.items()
        if not (isinstance(r["options"], dict) and r["options"].get("enrol") is not None)
    }
    # 2. T0: the first dose given in that regimen, on the patient's clock (regimen_t0).
    first_given: dict[int, Any] = {}
    for regimen_id, at in (
        ScheduledDose.objects.filter(patient__clinic=clinic, status=DoseStatus.GIVEN, administered_at__isnull=False)
        .order_by("regimen_id", "administered_at")
        .values_list("regimen_id", "administered_at")
    ):
        first_given.setdefault(regimen_id, at)
    t0s: dict[int, date] = {}
    for patient_id, held in current.items():
        at = first_given.get(held["id"])
        if at is not None:
            t0s[patient_id] = local_date(at, held["patient__timezone"])
    # 3. Their Hb and platelet results (not entered in error), oldest first; 4. transfusion dates (§3.6).
    results: dict[tuple[int, str], list[tuple[date, str, Decimal | None]]] = defaultdict(list)
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


def _whole(value: float) -> float | int:
    return int(value) if value == int(value) else round(value, 1)


def normalization_summary(rows: list[PatientNormalization], settings: RuleSettings | None = None) -> dict[str, Any]:
    """Per analyte: patients measured, normalized, not yet (and how many of those are past the target day), the
    median days of the normalized, the share normalized by the target day among those whose target day has
    come, and the patients per band."""
    settings = settings or rule_settings()
    cut = bands(settings)
    targets = target_days(settings)
    out: dict[str, Any] = {"bands": [{"band": key, "from": low, "to": high} for key, low, high in cut]}
    for analyte in ANALYTES:
        mine = [r for r in rows if r.analyte == analyte]
        done = [r.days for r in mine if r.days is not None]
        target, rule = targets[analyte]
        on_target = sum(1 for d in done if d <= target)
        # Patients whose target day has come: normalized in time, or normalized late, or past it and not yet.
        judged = sum(1 for r in mine if r.days_so_far > target or (r.days is not None and r.days <= target))
        counts = {key: 0 for key, _, _ in cut}
        for r in mine:
            if r.days is not None:
                counts[r.band] += 1
        out[analyte] = {
            "patients": len(mine),
            "normalized": len(done),
            "not_yet": len(mine) - len(done),
            "not_yet_past_target": sum(1 for r in mine if r.days is None and r.days_so_far > target),
            "median_days": _whole(statistics.median(done)) if done else None,
            "target_days": target,
            "target_rule": rule,
            "normalized_by_target": on_target,
            "target_judged": judged,
            "normalized_by_target_share": round(on_target / judged, 4) if judged else None,
            "by_band": [{"band": key, "patients": counts[key]} for key, _, _ in cut]
            + [{"band": NOT_YET, "patients": len(mine) - len(done)}],
        }
    return out
