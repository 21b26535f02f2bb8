"""Selectors of monitoring: a patient's PLASMIC score (RULES §6), lab trends and B12 status (§5.1), read
from the database for the API and the admin.

The arithmetic is pure (monitoring/plasmic.py; `time_in_range` and `normalization` below take plain
values); this module only chooses the inputs.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Min
from django.utils import timezone

from monitoring.plasmic import CAUTION as PLASMIC_CAUTION
from monitoring.plasmic import EXPERIMENTAL_LABEL, Measured, PlasmicInputs, Score, band_of
from monitoring.plasmic import score as plasmic_score
from monitoring.rules.base import B12Reading, B12Verdict
from patients.labs.analytes import CATALOGUE, QUALITATIVE, format_value, resolve
from patients.labs.reference_ranges import B12_CUTOFF_SETS, B12Cutoffs, b12_status, default_range
from patients.models import FactKind, LabResult, Medication, Patient, PatientFact
from patients.selectors import patient_pregnant_on
from regimens.models import DoseStatus, Regimen, ScheduledDose
from regimens.selectors import current_t0
from tracker.clock import local_date
from tracker.sweeps import in_shard

# RULES §6.3: share with severe ADAMTS13 deficiency per band (derivation / internal / external).
RISK_TABLE = {
    "low": "0-4: 0/84 (0%) / 0/89 (0%) / 2/47 (4%)",
    "intermediate": "5: 2/44 (5%) / 3/32 (9%) / 6/25 (24%)",
    "high": "6-7: 58/72 (81%) / 18/29 (62%) / 61/74 (82%)",
}
# PLASMIC §6.1 component 3: "no active cancer in the previous year".
ACTIVE_CANCER_LOOKBACK_DAYS = 365
# B12 products among medications (S-6(a): any of them counts as B12 given).
B12_MEDICATION_KINDS = ("cyanocobalamin", "hydroxocobalamin")


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


def haptoglobin_detection_limit(lab: str) -> Decimal | None:
    """The reporting lab's haptoglobin detection limit in g/L (COBALT_HAPTOGLOBIN_LAB_DETECTION_LIMITS, else
    COBALT_HAPTOGLOBIN_DETECTION_LIMIT), or None when none is configured (RULES gives no number)."""
    per_lab: dict[str, str] = settings.COBALT.get("HAPTOGLOBIN_LAB_DETECTION_LIMITS", {})
    raw = per_lab.get(lab.strip(), settings.COBALT.get("HAPTOGLOBIN_DETECTION_LIMIT", ""))
    return Decimal(str(raw).strip()) if str(raw).strip() else None


def haptoglobin_undetectable(row: LabResult) -> bool:
    """§6.1 "haptoglobin undetectable": below the lab's detection limit. A result written "<x" (the lab's own
    "below x"), a result of 0, or one below the configured detection limit of its lab (a "<0.1" entered as
    0.05); without a configured limit only 0 and "<x" count, as RULES gives no number."""
    if row.value_as_entered.strip().startswith("<"):
        return True
    value = Decimal(row.value_canonical or 0)
    limit = haptoglobin_detection_limit(row.lab)
    return value == 0 or (limit is not None and value < limit)


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
    hapto_row = earliest.get("haptoglobin")
    facts: dict[str, list[PatientFact]] = defaultdict(list)
    for fact in PatientFact.objects.filter(patient=patient, kind__in=[FactKind.ACTIVE_CANCER, FactKind.TRANSPLANT]):
        facts[fact.kind].append(fact)
    on = since or timezone.localdate()
    schistocytes = earliest.get("schistocytes")
    return PlasmicInputs(
        platelets=measured("platelets"),
        reticulocytes_pct=measured("reticulocytes_pct"),
        haptoglobin=haptoglobin,
        haptoglobin_undetectable=None if hapto_row is None else haptoglobin_undetectable(hapto_row),
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
    baseline = before[-1] if before else None
    first_normal = next((p for p in points if p.on > t0 and inside(p.value)), None)
    return _normalization_answer(t0, baseline, baseline is not None and inside(baseline.value), first_normal)


def _normalization_answer(
    t0: date, baseline: Point | None, normal_at_baseline: bool, first_normal: Point | None
) -> dict[str, Any]:
    base = {"value": format_value(baseline.value), "on": baseline.on.isoformat()} if baseline else None
    if normal_at_baseline:
        return {"status": "normal_at_baseline", "baseline": base, "normalized_on": None, "days_to_normal": None}
    if first_normal is None:
        return {"status": "not_yet_normal", "baseline": base, "normalized_on": None, "days_to_normal": None}
    return {
        "status": "normalized",
        "baseline": base,
        "normalized_on": first_normal.on.isoformat(),
        "days_to_normal": (first_normal.on - t0).days,
    }


def _b12_normalization(
    rows: list[LabResult], points: list[Point], t0: date | None, verdict: B12Verdict
) -> dict[str, Any]:
    """`normalization` for a B12 entry, told by the one B12 answer (`pre_treatment_b12`), so the trends never
    call "normal at baseline" a B12 that /b12-status/ and S-3 read as low: normal at baseline only when the
    pre-treatment status is "deficiency unlikely"; after T0, the first result its lab's cut-offs read so."""
    if t0 is None:
        return {"status": "no_treatment_start", "baseline": None, "normalized_on": None, "days_to_normal": None}
    before = [p for p in points if p.on < t0]
    baseline = before[-1] if before else None
    first_normal = next(
        (p for r, p in zip(rows, points, strict=True) if p.on > t0 and b12_reading(r)[0] == "unlikely"), None
    )
    return _normalization_answer(t0, baseline, verdict.status == "unlikely", first_normal)


def trends_for(patient: Patient, analytes: list[str] | None = None) -> dict[str, Any]:
    """Per analyte: the series in the canonical unit, the reference band, time in range since T0 and the
    time to normalization."""
    codes = [resolve(a).code for a in analytes] if analytes else None
    queryset = LabResult.objects.filter(
        patient=patient, value_canonical__isnull=False, error_recorded_at__isnull=True
    ).order_by("collected_at", "id")
    if codes:
        queryset = queryset.filter(analyte__in=codes)
    t0 = current_t0(patient)  # RULES §10 V-1: the current regimen's T0
    today = timezone.localdate()
    b12_rows = LabResult.objects.filter(patient=patient, analyte__in=B12_ANALYTES)  # read only when charted
    return trends_from(patient, queryset, t0, patient_pregnant_on(patient, today), b12_rows, today)


def trends_from(
    patient: Patient,
    results: Iterable[LabResult],
    t0: date | None,
    pregnant: bool,
    b12_rows: Iterable[LabResult],
    today: date,
) -> dict[str, Any]:
    """`trends_for` from what it reads, already read (the patient page reads the patient's results once for
    its sections): `results` the numeric results not entered in error, in the order collected (then id);
    `b12_rows` the patient's B12 results, total and active B12 and MMA (B12_ANALYTES; any order;
    pre_treatment_b12 picks among them)."""
    by_analyte: dict[str, list[LabResult]] = defaultdict(list)
    for result in results:
        by_analyte[result.analyte].append(result)
    catalogue = {a.code: a for a in CATALOGUE}
    order = {code: i for i, code in enumerate(TREND_ORDER)}
    b12: PreTreatmentB12 | None = None
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
        extra: dict[str, Any] = {}
        if code in B12_ANALYTES:
            if b12 is None:
                b12 = pre_treatment_b12(b12_rows, t0, patient.timezone)
            extra["b12_status"] = {"status": b12.verdict.status, "cutoffs": b12.cutoffs.name}
            if b12.mma is not None and b12.mma.elevated:  # §5.1: "Elevated = functional deficiency"
                extra["b12_status"]["functional"] = _mma_dict(b12.mma, patient.timezone)
        if b12 is not None and code in B12_LEVELS:
            norm = _b12_normalization(rows, points, t0, b12.verdict)
        else:
            norm = normalization(points, t0, low, high)
        series.append(
            {
                "analyte": code,
                "name": analyte.name,
                "loinc": analyte.loinc,
                "unit": analyte.canonical_unit,
                "band": {
                    "low": None if low is None else format_value(low, code),
                    "high": None if high is None else format_value(high, code),
                    "source": band_source,
                },
                "points": [
                    {
                        "result_id": r.pk,
                        "collected_at": r.collected_at.isoformat(),
                        "on": p.on.isoformat(),
                        "day": None if t0 is None else (p.on - t0).days,
                        "value": format_value(p.value, code),
                        "interpretation": r.interpretation,
                    }
                    for r, p in zip(rows, points, strict=True)
                ],
                "time_in_range": None
                if tir is None
                else {"percent": tir[0], "days": tir[1], "since": "T0" if t0 else "first result"},
                "normalization": norm,
                **extra,
            }
        )
    return {"patient": patient.pk, "t0": t0.isoformat() if t0 else None, "analytes": series}


# --- B12 status (RULES §5.1) ----------------------------------------------------------------------

# The B12 levels, read with the cut-off sets (§5.1 rows "Total B12" and "Active B12").
B12_LEVELS = ("b12_total", "b12_active")
# What the B12 status reads: the levels and MMA (§5.1 row "MMA", column "Deficiency confirmed": "Elevated =
# functional deficiency"; its ULN the reporting lab's, else the §8 Q4 fallback).
B12_ANALYTES = (*B12_LEVELS, "mma")
_B12_SEVERITY = {"unknown": -1, "unlikely": 0, "indeterminate": 1, "deficient": 2}


def b12_cutoffs_for(lab: str) -> B12Cutoffs:
    """The cut-off set for results of `lab`: its own (COBALT["B12_LAB_CUTOFFS"]) or the default
    (COBALT["B12_CUTOFFS"], NG239 unless configured; RULES §5.1, §8 Q5 and Q7)."""
    per_lab: dict[str, str] = settings.COBALT["B12_LAB_CUTOFFS"]
    name = per_lab.get(lab.strip(), settings.COBALT["B12_CUTOFFS"])
    return B12_CUTOFF_SETS[name]


def b12_reading(row: LabResult) -> tuple[B12Reading, B12Cutoffs]:
    """One total or active B12 result read with its reporting lab's cut-off set (§5.1); "unknown" when
    the set says nothing on active B12 (BSH-2014, AFP-2017: judged on total alone)."""
    cutoffs = b12_cutoffs_for(row.lab)
    value = row.value_canonical
    if value is None or (row.analyte == "b12_active" and cutoffs.active_deficient_below is None):
        return "unknown", cutoffs
    if row.analyte == "b12_total":
        return b12_status(total_ng_per_l=value, cutoffs=cutoffs), cutoffs
    return b12_status(active_pmol_per_l=value, cutoffs=cutoffs), cutoffs


@dataclass(frozen=True)
class MmaReading:
    """One MMA result against its upper limit (RULES §5.1: "Elevated = functional deficiency"): the reporting
    lab's ULN when it sent one, else the §8 Q4 fallback (400 nmol/L [P], the COBALT_MMA_FALLBACK_ULN setting
    where configured; patients/labs/reference_ranges.py). Above it, strictly, is "elevated"."""

    result: LabResult
    uln: Decimal | None
    uln_source: str

    @property
    def elevated(self) -> bool:
        value = self.result.value_canonical
        return self.uln is not None and value is not None and Decimal(value) > self.uln


def mma_reading(row: LabResult) -> MmaReading:
    if row.ref_high is not None:
        return MmaReading(row, Decimal(row.ref_high), "reporting lab")
    # MMA's default does not depend on sex; age None reads as an adult (the product's scope, §5.2).
    default = default_range("mma", "unknown", None)
    return MmaReading(row, default.high if default else None, default.source if default else "none")


def _mma_dict(mma: MmaReading, zone: str) -> dict[str, Any]:
    return {
        "analyte": "mma",
        "result_id": mma.result.pk,
        "value": format_value(mma.result.value_canonical, "mma"),
        "uln": None if mma.uln is None else format_value(mma.uln, "mma"),
        "uln_source": mma.uln_source,
        "on": local_date(mma.result.collected_at, zone).isoformat(),
    }


@dataclass(frozen=True)
class PreTreatmentB12:
    verdict: B12Verdict
    cutoffs: B12Cutoffs
    results: tuple[LabResult, ...]  # the latest total B12, active B12 and MMA before T0, newest first
    mma: MmaReading | None = None  # the latest MMA before T0, read against its ULN
    # The B12 levels' own verdict, without MMA: what S-3 reads (MMA also rises with kidney impairment, which a true
    # TMA often brings, §8 Q4; a raised MMA must not turn "exclude TTP urgently" into the pseudo-TMA banner).
    levels: B12Verdict = field(default_factory=B12Verdict)


def pre_treatment_b12(rows: Iterable[LabResult], t0: date | None, zone: str) -> PreTreatmentB12:
    """THE pre-treatment B12 status (§5.1, §10 V-7), the one answer the trends and /b12-status/ give (S-3 reads
    its `levels`, the same without MMA):
    the latest total B12, the latest active B12 and the latest MMA collected before T0 (strictly before its
    date: a same-day sample may follow the dose; the latest at all when no dose was given), entered-in-error
    results left out. Each B12 level is read with its reporting lab's cut-off set; with both, the more
    concerning one wins. An MMA above its ULN (`MmaReading`) makes the status "deficient" whatever the levels
    (§5.1: MMA sits in the "Deficiency confirmed" column, "Elevated = functional deficiency"); an MMA not
    above it changes nothing (§5.1 gives MMA no "indeterminate" or "unlikely" reading), so with no level the
    status stays "unknown" (S-3: pending).

    After T0 a B12 level or an MMA is "falsely reassuring" (RULES S-13) and not used on IM therapy (L-10).
    """
    latest: dict[str, LabResult] = {}
    usable = (
        r for r in rows if r.analyte in B12_ANALYTES and r.value_canonical is not None and r.error_recorded_at is None
    )
    for row in sorted(usable, key=lambda r: (r.collected_at, r.pk)):
        if t0 is None or local_date(row.collected_at, zone) < t0:
            latest[row.analyte] = row
    results = tuple(sorted(latest.values(), key=lambda r: (r.collected_at, r.pk), reverse=True))
    readings = [(*b12_reading(row), row) for row in results if row.analyte in B12_LEVELS]
    judged = [reading for reading in readings if reading[0] != "unknown"]
    status: B12Reading = "unknown"
    if judged:
        # The more concerning wins; on a tie the newer result (first in `judged`) names the cut-off set.
        status, cutoffs, _ = max(judged, key=lambda reading: _B12_SEVERITY[reading[0]])
    else:
        default = B12_CUTOFF_SETS[settings.COBALT["B12_CUTOFFS"]]
        cutoffs = readings[0][1] if readings else default
    read = {row.pk for _, _, row in judged}
    levels = B12Verdict(status, cutoffs.name, tuple(row.pk for row in results if row.pk in read))
    mma = mma_reading(latest["mma"]) if "mma" in latest else None
    if mma is not None and mma.elevated:
        status = "deficient"  # §5.1: functional deficiency; the B12 cut-off set still names the levels' reading
        read.add(mma.result.pk)
    verdict = B12Verdict(status, cutoffs.name, tuple(row.pk for row in results if row.pk in read))
    return PreTreatmentB12(verdict, cutoffs, results, mma, levels)


def patient_b12(patient: Patient, t0: date | None) -> PreTreatmentB12:
    rows = LabResult.objects.filter(patient=patient, analyte__in=B12_ANALYTES)
    return pre_treatment_b12(rows, t0, patient.timezone)


def b12_status_for(patient: Patient) -> dict[str, Any]:
    """The diagnostic B12 status for /api/patients/{id}/b12-status/: `pre_treatment_b12` at the patient's T0.
    `functional_deficiency` is the pre-treatment MMA above its ULN that makes the status "deficient" (§5.1), or
    None; each result carries its `reading` (a B12 level's band at its lab's cut-offs, or for MMA "elevated" /
    "not_elevated" with the ULN it was read against)."""
    t0 = current_t0(patient)  # RULES §10 V-1: the current regimen's T0
    b12 = patient_b12(patient, t0)
    mma = b12.mma
    return {
        "status": b12.verdict.status,
        "t0": t0,
        "cutoffs": b12.cutoffs.name,
        "cutoffs_source": b12.cutoffs.source,
        "functional_deficiency": _mma_dict(mma, patient.timezone) if mma is not None and mma.elevated else None,
        "results": [_status_result(r, mma) for r in b12.results],
    }


def _status_result(row: LabResult, mma: MmaReading | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row.pk,
        "analyte": row.analyte,
        "value": row.value_canonical,
        "unit": row.unit_canonical,
        "collected_at": row.collected_at,
        "lab": row.lab,
    }
    if mma is not None and row.pk == mma.result.pk:
        body["reading"] = "elevated" if mma.elevated else "not_elevated"
        body["uln"] = mma.uln
        body["uln_source"] = mma.uln_source
    else:
        body["reading"] = b12_reading(row)[0]
    return body


# --- S-6(a): when neurological involvement became known, and the first B12 --------------------------------


def neuro_flag_set_at(patient_ids: Collection[int] | None) -> dict[int, datetime]:
    """Patient id -> when the patient's "neurological involvement" flag was last switched on, for the patients
    (all when None: all of the running sweep's shard, tracker.sweeps.in_shard) whose flag is on now (RULES §10
    V-5: S-6(a) also runs on the flag). Read from the patient's history; a patient with no history row
    (bulk-loaded) counts from its creation. Two queries."""
    patients = Patient.objects.filter(neurological_involvement=True)
    if patient_ids is not None:
        patients = patients.filter(pk__in=list(patient_ids))
    else:
        patients = in_shard(patients, "pk")
    flagged = dict(patients.values_list("pk", "created_at"))
    since: dict[int, datetime] = {}
    seen: set[int] = set()
    history = Patient.history.model.objects.filter(id__in=list(flagged)).order_by("id", "history_date", "history_id")
    for pid, at, on in history.values_list("id", "history_date", "neurological_involvement"):
        seen.add(pid)
        if not on:
            since.pop(pid, None)
        else:
            since.setdefault(pid, at)
    for pid, created in flagged.items():
        if pid not in seen:
            since[pid] = created
    return since


def first_b12_at(patient_ids: Collection[int]) -> dict[int, datetime]:
    """Patient id -> the earliest B12 recorded: a regimen dose given, a B12 medication (from 00:00 of its start
    date, the patient's zone) or the last dose given elsewhere before an enrolment (same). Three queries."""
    ids = list(patient_ids)
    out: dict[int, datetime] = {}

    def keep(pid: int, at: datetime) -> None:
        out[pid] = min(out.get(pid, at), at)

    def midnight(day: date, tz: str) -> datetime:
        return datetime.combine(day, datetime.min.time(), tzinfo=zoneinfo.ZoneInfo(tz))

    for pid, first in (
        ScheduledDose.objects.filter(patient_id__in=ids, status=DoseStatus.GIVEN, administered_at__isnull=False)
        .values("patient_id")
        .annotate(first=Min("administered_at"))
        .values_list("patient_id", "first")
    ):
        keep(pid, first)
    for pid, tz, first_med in (
        Medication.objects.filter(patient_id__in=ids, kind__in=B12_MEDICATION_KINDS)
        .values("patient_id", "patient__timezone")
        .annotate(first=Min("start_date"))
        .values_list("patient_id", "patient__timezone", "first")
    ):
        keep(pid, midnight(first_med, tz))
    for pid, tz, options in Regimen.objects.filter(patient_id__in=ids, options__has_key="enrol").values_list(
        "patient_id", "patient__timezone", "options"
    ):
        enrol = options.get("enrol") if isinstance(options, dict) else None
        if isinstance(enrol, dict) and enrol.get("last_dose_date"):
            try:
                keep(pid, midnight(date.fromisoformat(str(enrol["last_dose_date"])), tz))
            except ValueError:
                continue
    return out
