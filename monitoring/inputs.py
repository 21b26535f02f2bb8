"""Stored rows turned into the pure inputs of the rules (monitoring/rules/), and the rule settings.

`lab_context` feeds the lab-recheck plan of the schedule engine (provided to regimens through
tracker/events.py); `stored_results` and `rule_settings` serve monitoring/evaluation.py and the sweep.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from django.conf import settings

from monitoring.rules.base import (
    DEFAULT_SETTINGS,
    HEMOLYSIS_MARKERS,
    PatientContext,
    Result,
    RuleSettings,
    StoredResult,
    above_uln,
    baseline,
    below_lln,
    dec,
    hemolysis_abnormal,
)
from monitoring.rules.patterns import S3_PLATELETS_BELOW, Inputs, tma_pattern
from patients.models import IRREVERSIBLE_CAUSES, FactKind, LabResult, Patient, PatientFact
from patients.selectors import fact_present, pregnant_on
from regimens.schedule import LabContext
from tracker.clock import local_date


def l4b_platelets_below() -> Decimal:
    """RULES §2 L-4b [P]: platelets below this (x10^9/L, default 50), at baseline or in a follow-up count, plan the
    24-72 h rechecks; settings.COBALT["RECHECK_L4B_PLATELETS_BELOW"] (COBALT_RECHECK_L4B_PLATELETS_BELOW)."""
    return Decimal(str(settings.COBALT["RECHECK_L4B_PLATELETS_BELOW"]))


# Settings given in percent (COBALT_RULES_A_P3_FALL_PERCENT=30) for fields that hold a fraction (0.30).
_PERCENT_FIELDS = {"a_p3_fall_percent": "a_p3_fall_fraction", "a_l1_min_fall_percent": "a_l1_min_fall_fraction"}


def _convert(default: Any, raw: str) -> Any:
    if isinstance(default, tuple):
        first, last = (int(v) for v in str(raw).split(","))
        return (first, last)
    if isinstance(default, Decimal):
        return Decimal(str(raw))
    return int(raw)


def rule_settings() -> RuleSettings:
    """The rule settings in force: RuleSettings' defaults (the one definition of each number, with its RULES
    id) with the overrides an operator set in the environment (settings.COBALT["RULE_OVERRIDES"], e.g.
    COBALT_RULES_A_H2_WINDOW=11,17)."""
    overrides: dict[str, Any] = {}
    for key, raw in settings.COBALT.get("RULE_OVERRIDES", {}).items():
        name = key.lower().removeprefix("rules_")
        if name in _PERCENT_FIELDS:
            overrides[_PERCENT_FIELDS[name]] = Decimal(str(raw)) / 100
        else:
            overrides[name] = _convert(getattr(DEFAULT_SETTINGS, name), raw)
    return replace(DEFAULT_SETTINGS, **overrides)


def stored_results(rows: Iterable[LabResult], zone: str) -> list[StoredResult]:
    """Quantitative rows as Result (canonical unit; collected_on = local date in the patient's zone),
    oldest first."""
    out = [
        StoredResult(
            row.pk,
            Result(
                analyte=row.analyte,
                value=row.value_canonical,
                collected_on=local_date(row.collected_at, zone),
                ref_low=row.ref_low,
                ref_high=row.ref_high,
            ),
        )
        for row in rows
        if row.value_canonical is not None
    ]
    return sorted(out, key=lambda s: (s.result.collected_on, s.id))


# The results the S-3 laboratory pattern rests on (monitoring.rules.patterns.tma_pattern): Hb, platelets and the
# haemolysis markers (its other results are supporting clues).
_S3_INPUTS = frozenset({"hemoglobin", "platelets", *HEMOLYSIS_MARKERS})


def l4b_after_t0(
    patient: Patient, t0: date, results: Sequence[Result], facts: Sequence[PatientFact], rs: RuleSettings
) -> tuple[date | None, date | None]:
    """RULES §2 L-4b started after T0 (its condition is not limited to the baseline): the day of the first
    follow-up result (collected after T0) with platelets below `l4b_platelets_below`, or on which the S-3
    laboratory pattern (`tma_pattern`, whatever the B12, as the baseline flag) is present and rests on a result
    collected after T0; and the end of that series, "until rising": the first count collected after that day above
    the count that started it (the lowest below the threshold that day, or the count the pattern rests on).
    (None, None) when no follow-up result starts it. `results` are oldest first, as `stored_results` gives them."""
    below = l4b_platelets_below()
    ordered = sorted(results, key=lambda r: r.collected_on)  # stable: same-day results keep their order
    stored = [StoredResult(index, r) for index, r in enumerate(ordered)]
    days = sorted({r.collected_on for r in ordered if r.collected_on > t0 and r.analyte in _S3_INPUTS})
    for day in days:
        counts = [dec(r.value) for r in ordered if r.analyte == "platelets" and r.collected_on == day]
        low = [c for c in counts if c < below]
        start = min(low) if low else None
        pattern = _s3_pattern_on(patient, t0, day, stored, facts, rs)
        if pattern is not None:
            start = pattern if start is None else min(start, pattern)
        if start is not None:
            rising_on = next(
                (
                    r.collected_on
                    for r in ordered
                    if r.analyte == "platelets" and r.collected_on > day and dec(r.value) > start
                ),
                None,
            )
            return day, rising_on
    return None, None


def _s3_pattern_on(
    patient: Patient, t0: date, day: date, stored: list[StoredResult], facts: Sequence[PatientFact], rs: RuleSettings
) -> Decimal | None:
    """The platelet count the S-3 laboratory pattern rests on as of `day` (the results collected up to then), when
    it is present and rests on a Hb, platelet or haemolysis-marker result collected after T0; else None."""
    known = [s for s in stored if s.result.collected_on <= day]
    pregnant = pregnant_on(facts, day)
    ctx = PatientContext(sex=patient.sex, age=patient.age_on(day), pregnant=pregnant, t0=t0)
    latest = {s.result.analyte: s.result for s in known}
    hb, plt = latest.get("hemoglobin"), latest.get("platelets")
    # A shortcut only (tma_pattern decides): no pattern without a low Hb and platelets < 150 or below the LLN.
    if hb is None or plt is None or below_lln(hb, ctx) is not True:
        return None
    if not (dec(plt.value) < S3_PLATELETS_BELOW or below_lln(plt, ctx) is True):
        return None
    inputs = Inputs(
        patient=patient,
        at=datetime.combine(day, time.max, tzinfo=UTC),
        today=day,
        t0=t0,
        stored=known,
        facts=facts,
        ctx=ctx,
        settings=rs,
    )
    pattern = tma_pattern(inputs)
    if pattern is None:
        return None
    rests_on = [s.result for s in pattern.used if s.result.analyte in _S3_INPUTS]
    if not any(r.collected_on > t0 for r in rests_on):
        return None  # the baseline's pattern: the baseline flag decides (platelets_very_low)
    return next(dec(r.value) for r in rests_on if r.analyte == "platelets")


def lab_context_from(patient: Patient, t0: date | None, results: list[Result], facts: list[PatientFact]) -> LabContext:
    """The pure part of `lab_context` (no queries)."""
    irreversible = (
        patient.deficiency_cause in IRREVERSIBLE_CAUSES
        or fact_present(facts, FactKind.IF_ANTIBODY_POSITIVE) is not None
    )
    if t0 is None:
        return LabContext(irreversible_cause=irreversible)
    pregnant = pregnant_on(facts, t0)
    ctx = PatientContext(sex=patient.sex, age=patient.age_on(t0), pregnant=pregnant, t0=t0)

    def base(analyte: str) -> Result | None:
        return baseline(results, analyte, t0)

    def low(r: Result) -> bool:
        return below_lln(r, ctx) is True

    def high(r: Result) -> bool:
        return above_uln(r, ctx) is True

    hb, retic, plt, mcv = (
        base("hemoglobin"),
        base("reticulocytes_pct") or base("reticulocytes_abs"),
        base("platelets"),
        base("mcv"),
    )
    markers = [m for m in (base(a) for a in HEMOLYSIS_MARKERS) if m is not None]
    hb_low = hb is not None and low(hb)
    plt_low = plt is not None and low(plt)
    hemolysis = bool(hemolysis_abnormal(markers, ctx))
    # RULES S-9 / L-1 [P]: Hb < 80 g/L at T0, or the "severe megaloblastic anaemia" flag.
    rs = rule_settings()
    hb_severe = (hb is not None and Decimal(str(hb.value)) < rs.potassium_check_hb_below) or fact_present(
        facts, FactKind.SEVERE_MEGALOBLASTIC
    ) is not None
    # RULES L-4b [P]: platelets < 50 (the setting), or the pseudo-TMA pattern (S-3: Hb low, platelets < LLN, a
    # haemolysis sign).
    very_low = plt is not None and (
        Decimal(str(plt.value)) < l4b_platelets_below() or (hb_low and plt_low and hemolysis)
    )
    cbc_abnormal = any(r is not None and (low(r) or high(r)) for r in (hb, plt, mcv))
    post = [r for r in results if r.collected_on > t0]
    platelets_normal_on = next((r.collected_on for r in post if r.analyte == "platelets" and not low(r)), None)
    platelets_rising_on = None
    if plt is not None:
        platelets_rising_on = next(
            (
                r.collected_on
                for r in post
                if r.analyte == "platelets" and Decimal(str(r.value)) > Decimal(str(plt.value))
            ),
            None,
        )
    # RULES §2 L-4b's condition is not limited to the baseline: when the baseline did not start it, the first
    # follow-up result that meets it does (one series per T0; the baseline's series is unchanged).
    very_low_from, very_low_rising_on = (None, None) if very_low else l4b_after_t0(patient, t0, results, facts, rs)
    hemolysis_normal_on = None
    for day in sorted({r.collected_on for r in post if r.analyte in HEMOLYSIS_MARKERS}):
        same_day = [r for r in post if r.collected_on == day and r.analyte in HEMOLYSIS_MARKERS]
        if not hemolysis_abnormal(same_day, ctx):
            hemolysis_normal_on = day
            break
    return LabContext(
        has_baseline=hb is not None,
        hb_low=hb_low,
        hb_severe=bool(hb_severe),
        retics_low=retic is not None and low(retic),
        platelets_low=plt_low,
        platelets_very_low=bool(very_low),
        hemolysis_abnormal=hemolysis,
        cbc_abnormal=cbc_abnormal,
        pregnant=pregnant,
        # RULES §10 V-10: L-8 after 1 month when breastfeeding at T0, as when pregnant.
        breastfeeding=fact_present(facts, FactKind.BREASTFEEDING, t0) is not None,
        irreversible_cause=irreversible,
        platelets_normal_on=platelets_normal_on,
        platelets_rising_on=platelets_rising_on,
        hemolysis_normal_on=hemolysis_normal_on,
        platelets_very_low_from=very_low_from,
        platelets_very_low_rising_on=very_low_rising_on,
    )


def lab_context(patient: Patient, t0: date | None, facts: Sequence[PatientFact] | None = None) -> LabContext:
    """The baseline and follow-up flags RULES §2 plans rechecks from (two queries; one when the caller has read
    the patient's `facts` already).

    Baseline = the latest result of each analyte on or before T0 (§2; day 0 is the pre-dose sample, as in
    monitoring/rules/). Follow-up flags (platelets normal, rising; haemolysis markers normal) end the
    conditional rechecks "until normal" (L-4, L-4b, L-5).
    """
    facts = list(PatientFact.objects.filter(patient=patient) if facts is None else facts)
    if t0 is None:
        return lab_context_from(patient, None, [], facts)
    rows = LabResult.objects.filter(
        patient=patient, value_canonical__isnull=False, error_recorded_at__isnull=True
    ).only("id", "analyte", "value_canonical", "collected_at", "ref_low", "ref_high")
    return lab_context_read(rows, facts)(patient, t0)


def lab_context_read(
    rows: Iterable[LabResult], facts: Sequence[PatientFact]
) -> Callable[[Patient, date | None], LabContext]:
    """`lab_context` of one patient from rows already read (no queries): `rows` are the patient's results not
    entered in error, whatever their collection time (qualitative rows are left out here, as lab_context does),
    `facts` all of the patient's facts. The monitoring evaluation reads both once for its rules and its re-plan."""
    rows = list(rows)

    def context(patient: Patient, t0: date | None) -> LabContext:
        if t0 is None:
            return lab_context_from(patient, None, [], list(facts))
        results = [s.result for s in stored_results(rows, patient.timezone)]
        return lab_context_from(patient, t0, results, list(facts))

    return context


def lab_context_loader(patients: Iterable[Patient]) -> Callable[[Patient, date | None], LabContext]:
    """`lab_context` for many patients in two queries (bulk re-plans: a calendar change, the horizons
    sweep): the facts and results of every patient are read once, then each context is pure."""
    ids = {p.pk for p in patients}
    facts: dict[int, list[PatientFact]] = defaultdict(list)
    for fact in PatientFact.objects.filter(patient_id__in=ids):
        facts[fact.patient_id].append(fact)
    rows: dict[int, list[LabResult]] = defaultdict(list)
    for row in LabResult.objects.filter(
        patient_id__in=ids, value_canonical__isnull=False, error_recorded_at__isnull=True
    ).only("id", "patient_id", "analyte", "value_canonical", "collected_at", "ref_low", "ref_high"):
        rows[row.patient_id].append(row)

    def context(patient: Patient, t0: date | None) -> LabContext:
        return lab_context_read(rows[patient.pk], facts[patient.pk])(patient, t0)

    return context
