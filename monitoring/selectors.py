"""Selectors of monitoring: a patient's PLASMIC score (RULES §6), lab trends and B12 status (§5.1), read
from the database for the API and the admin.

The arithmetic is pure (monitoring/plasmic.py; `time_in_range` and `normalization` below take plain
values); this module only chooses the inputs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from monitoring.plasmic import CAUTION as PLASMIC_CAUTION
from monitoring.plasmic import EXPERIMENTAL_LABEL, Measured, PlasmicInputs, Score, band_of
from monitoring.plasmic import score as plasmic_score
from patients.labs.analytes import CATALOGUE, QUALITATIVE, resolve
from patients.labs.reference_ranges import B12_CUTOFF_SETS, B12Cutoffs, b12_status, default_range
from patients.models import FactKind, LabResult, Patient, PatientFact
from patients.selectors import patient_pregnant_on
from regimens.selectors import first_dose_date
from tracker.clock import local_date

# RULES §6.3: share with severe ADAMTS13 deficiency per band (derivation / internal / external).
RISK_TABLE = {
    "low": "0-4: 0/84 (0%) / 0/89 (0%) / 2/47 (4%)",
    "intermediate": "5: 2/44 (5%) / 3/32 (9%) / 6/25 (24%)",
    "high": "6-7: 58/72 (81%) / 18/29 (62%) / 61/74 (82%)",
}
# PLASMIC §6.1 component 3: "no active cancer in the previous year".
ACTIVE_CANCER_LOOKBACK_DAYS = 365




# --- PLASMIC ---------------------------------------------------------------------------------------


def _fact_state(facts: list[PatientFact], on: date, lookback_days: int | None = None) -> bool | None:
    """True if the fact is recorded as present (and, with a lookback, not ended before it); False if it
    is recorded as checked and absent; None if nothing is recorded."""
    present = [
        f
        for f in facts
        if not f.absent
        and (lookback_days is None or f.end_date is None or f.end_date >= on - timedelta(days=lookback_days))
    ]
    if present:
        return True
    if any(f.absent for f in facts):
        return False
    return None


def plasmic_inputs(patient: Patient, since: date | None = None) -> PlasmicInputs:
    """§6.2: the earliest available value of each input (new presentation), counting from `since`
    (the day TTP was first suspected) when given."""
    results = LabResult.objects.filter(
        patient=patient,
        error_recorded_at__isnull=True,  # RULES §10 V-14
        analyte__in=[
            "platelets",
            "reticulocytes_pct",
            "haptoglobin",
            "bilirubin_indirect",
            "mcv",
            "inr",
            "creatinine",
            "schistocytes",
        ],
    ).order_by("collected_at", "id")
    earliest: dict[str, LabResult] = {}
    for result in results:
        if since is not None and local_date(result.collected_at, patient.timezone) < since:
            continue
        earliest.setdefault(result.analyte, result)

    def measured(code: str) -> Measured | None:
        result = earliest.get(code)
        if result is None or result.value_canonical is None:
            return None
        return Measured(
            Decimal(result.value_canonical),
            result.pk,
            local_date(result.collected_at, patient.timezone).isoformat(),
        )

    haptoglobin = measured("haptoglobin")
    facts: dict[str, list[PatientFact]] = defaultdict(list)
    for fact in PatientFact.objects.filter(patient=patient, kind__in=[FactKind.ACTIVE_CANCER, FactKind.TRANSPLANT]):
        facts[fact.kind].append(fact)
    on = since or timezone.localdate()
    schistocytes = earliest.get("schistocytes")
    return PlasmicInputs(
        platelets=measured("platelets"),
        reticulocytes_pct=measured("reticulocytes_pct"),
        haptoglobin=haptoglobin,
        # §6.1 "haptoglobin undetectable": the lab reports below its detection limit, entered as 0.
        haptoglobin_undetectable=None if haptoglobin is None else haptoglobin.value == 0,
        indirect_bilirubin=measured("bilirubin_indirect"),
        mcv=measured("mcv"),
        inr=measured("inr"),
        creatinine=measured("creatinine"),
        active_cancer=_fact_state(facts[FactKind.ACTIVE_CANCER], on, ACTIVE_CANCER_LOOKBACK_DAYS),
        transplant=_fact_state(facts[FactKind.TRANSPLANT], on),
        schistocytes_present=None if schistocytes is None else schistocytes.presence == "present",
    )


def _score_dict(result: Score) -> dict[str, Any]:
    band = result.band
    return {
        "score": result.score,
        "complete": result.complete,
        "min_score": result.min_score,
        "max_score": result.max_score,
        "band": band,
        "band_range": [band_of(result.min_score), band_of(result.max_score)],
        "missing": list(result.missing),
        "components": [
            {
                "letter": c.letter,
                "name": c.name,
                "points": c.points,
                "criterion": c.criterion,
                "evidence": c.evidence,
            }
            for c in result.components
        ],
    }


def plasmic_for(patient: Patient, since: date | None = None) -> dict[str, Any]:
    inputs = plasmic_inputs(patient, since)
    standard = plasmic_score(inputs)
    body = _score_dict(standard)
    body.update(
        {
            "status": "complete" if standard.complete else "incomplete",
            "applicable": standard.applicable,
            "applicability": standard.applicability,
            "since": since.isoformat() if since else None,
            "risk": RISK_TABLE.get(standard.band) if standard.band else None,
            "caution": PLASMIC_CAUTION,
            "experimental_retic_variant": {
                "label": EXPERIMENTAL_LABEL,
                "validated": False,
                **_score_dict(plasmic_score(inputs, experimental=True)),
            },
        }
    )
    return body


# --- Trends ----------------------------------------------------------------------------------------

# The order analytes are shown in: the response markers first (RULES §3.1).
TREND_ORDER = (
    "hemoglobin",
    "platelets",
    "mcv",
    "reticulocytes_pct",
    "reticulocytes_abs",
    "hematocrit",
    "ldh",
    "haptoglobin",
    "bilirubin_indirect",
    "b12_total",
    "b12_active",
    "folate",
    "mma",
    "homocysteine",
    "potassium",
    "creatinine",
    "inr",
    "ferritin",
    "adamts13_activity",
    "esr",
)


@dataclass(frozen=True)
class Point:
    on: date
    value: Decimal


def time_in_range(points: list[Point], low: Decimal | None, high: Decimal | None) -> tuple[float, int] | None:
    """Rosendaal linear interpolation, as anticoagulation clinics report time in therapeutic range:
    between consecutive results the value is assumed to change linearly day by day; returns
    (percent of days in [low, high], number of days) or None with fewer than two dates."""
    by_day: dict[date, Decimal] = {}
    for point in points:
        by_day[point.on] = point.value  # the last result of a day stands for the day
    days = sorted(by_day)
    if len(days) < 2:
        return None
    in_range = 0
    total = 0
    for first, second in zip(days, days[1:], strict=False):
        span = (second - first).days
        for step in range(span):
            value = by_day[first] + (by_day[second] - by_day[first]) * Decimal(step) / Decimal(span)
            total += 1
            if (low is None or value >= low) and (high is None or value <= high):
                in_range += 1
    return round(100 * in_range / total, 1), total


def normalization(points: list[Point], t0: date | None, low: Decimal | None, high: Decimal | None) -> dict[str, Any]:
    """The baseline (latest on or before T0, as monitoring/rules/) and the first result after T0 inside
    the band: time to normalization in days since T0."""

    def inside(value: Decimal) -> bool:
        return (low is None or value >= low) and (high is None or value <= high)

    if t0 is None:
        return {"status": "no_treatment_start", "baseline": None, "normalized_on": None, "days_to_normal": None}
    before = [p for p in points if p.on <= t0]
    after = [p for p in points if p.on > t0]
    baseline = before[-1] if before else None
    base = {"value": str(baseline.value), "on": baseline.on.isoformat()} if baseline else None
    if baseline is not None and inside(baseline.value):
        return {"status": "normal_at_baseline", "baseline": base, "normalized_on": None, "days_to_normal": None}
    first_normal = next((p for p in after if inside(p.value)), None)
    if first_normal is None:
        return {"status": "not_yet_normal", "baseline": base, "normalized_on": None, "days_to_normal": None}
    return {
        "status": "normalized",
        "baseline": base,
        "normalized_on": first_normal.on.isoformat(),
        "days_to_normal": (first_normal.on - t0).days,
    }


def trends_for(patient: Patient, analytes: list[str] | None = None) -> dict[str, Any]:
    """Per analyte: the series in the canonical unit, the reference band, time in range since T0 and the
    time to normalization."""
    codes = [resolve(a).code for a in analytes] if analytes else None
    queryset = LabResult.objects.filter(
        patient=patient, value_canonical__isnull=False, error_recorded_at__isnull=True
    ).order_by("collected_at", "id")
    if codes:
        queryset = queryset.filter(analyte__in=codes)
    by_analyte: dict[str, list[LabResult]] = defaultdict(list)
    for result in queryset:
        by_analyte[result.analyte].append(result)
    t0 = first_dose_date(patient)
    today = timezone.localdate()
    pregnant = patient_pregnant_on(patient, today)
    catalogue = {a.code: a for a in CATALOGUE}
    order = {code: i for i, code in enumerate(TREND_ORDER)}
    series = []
    for code in sorted(by_analyte, key=lambda c: order.get(c, len(order))):
        analyte = catalogue[code]
        if analyte.kind == QUALITATIVE:
            continue
        rows = by_analyte[code]
        latest = rows[-1]
        if latest.ref_low is not None or latest.ref_high is not None:
            low, high, band_source = latest.ref_low, latest.ref_high, "reporting lab"
        else:
            default = default_range(code, patient.sex, patient.age_on(today), pregnant)  # type: ignore[arg-type]
            low, high = (default.low, default.high) if default else (None, None)
            band_source = default.source if default else "none"
        points = [Point(local_date(r.collected_at, patient.timezone), Decimal(r.value_canonical or 0)) for r in rows]
        from_t0 = [p for p in points if t0 is None or p.on >= t0]
        tir = time_in_range(from_t0, low, high)
        series.append(
            {
                "analyte": code,
                "name": analyte.name,
                "loinc": analyte.loinc,
                "unit": analyte.canonical_unit,
                "band": {
                    "low": None if low is None else str(low),
                    "high": None if high is None else str(high),
                    "source": band_source,
                },
                "points": [
                    {
                        "result_id": r.pk,
                        "collected_at": r.collected_at.isoformat(),
                        "on": p.on.isoformat(),
                        "day": None if t0 is None else (p.on - t0).days,
                        "value": str(p.value.normalize()),
                        "interpretation": r.interpretation,
                    }
                    for r, p in zip(rows, points, strict=True)
                ],
                "time_in_range": None
                if tir is None
                else {"percent": tir[0], "days": tir[1], "since": "T0" if t0 else "first result"},
                "normalization": normalization(points, t0, low, high),
            }
        )
    return {"patient": patient.pk, "t0": t0.isoformat() if t0 else None, "analytes": series}


# --- B12 status (RULES §5.1) ----------------------------------------------------------------------


def b12_cutoffs_for(lab: str) -> B12Cutoffs:
    """The cut-off set for results of `lab`: its own (COBALT["B12_LAB_CUTOFFS"]) or the default
    (COBALT["B12_CUTOFFS"], NG239 unless configured; RULES §5.1, §8 Q5 and Q7)."""
    per_lab: dict[str, str] = settings.COBALT["B12_LAB_CUTOFFS"]
    name = per_lab.get(lab.strip(), settings.COBALT["B12_CUTOFFS"])
    return B12_CUTOFF_SETS[name]


def b12_status_for(patient: Patient) -> dict[str, Any]:
    """The diagnostic B12 status: the latest total and active B12 before T0 (the first dose), or the
    latest at all when there is no dose yet, read with the cut-offs of the lab that reported them.

    After T0 a B12 level is "falsely reassuring" (RULES S-13) and not used on IM therapy (L-10).
    """
    t0 = first_dose_date(patient)
    results = LabResult.objects.filter(
        patient=patient, analyte__in=["b12_total", "b12_active"], error_recorded_at__isnull=True
    ).order_by(
        "-collected_at"
    )
    latest: dict[str, LabResult] = {}
    for result in results:
        if t0 is not None and local_date(result.collected_at, patient.timezone) >= t0:
            continue
        latest.setdefault(result.analyte, result)
    if not latest:
        return {"status": "unknown", "t0": t0, "cutoffs": settings.COBALT["B12_CUTOFFS"], "results": []}
    lab = next(iter(latest.values())).lab
    cutoffs = b12_cutoffs_for(lab)
    total = latest.get("b12_total")
    active = latest.get("b12_active")
    if active is not None and cutoffs.active_deficient_below is None:
        active = None  # this set says nothing on active B12 (BSH-2014): judge on total alone
    status = (
        b12_status(
            total_ng_per_l=total.value_canonical if total else None,
            active_pmol_per_l=active.value_canonical if active else None,
            cutoffs=cutoffs,
        )
        if total or active
        else "unknown"
    )
    return {
        "status": status,
        "t0": t0,
        "cutoffs": cutoffs.name,
        "cutoffs_source": cutoffs.source,
        "results": [
            {
                "id": r.pk,
                "analyte": r.analyte,
                "value": r.value_canonical,
                "unit": r.unit_canonical,
                "collected_at": r.collected_at,
                "lab": r.lab,
            }
            for r in latest.values()
        ],
    }
