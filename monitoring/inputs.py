"""Monitoring services (issue 3). `lab_context` feeds the lab-recheck plan of the engine; the helpers
here turn stored rows into the pure inputs of monitoring/rules.py (shared with monitoring/evaluation.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import cast

from django.conf import settings

from monitoring import rules
from patients.labs.reference_ranges import Sex, default_range
from patients.models import IRREVERSIBLE_CAUSES, FactKind, LabResult, Patient, PatientFact
from regimens.schedule import LabContext
from tracker.clock import local_date

HEMOLYSIS_MARKERS = ("ldh", "bilirubin_indirect", "haptoglobin")
# RULES §2 L-4b: platelets < 50 x10^9/L plan the 24-72 h rechecks (the frequency is [P], the limit is L-4b's).
L4B_PLATELETS_BELOW = Decimal(50)


def _cobalt(key: str) -> object:
    return settings.COBALT[key]


def _window(key: str) -> tuple[int, int]:
    first, last = cast(tuple[int, int], _cobalt(key))
    return int(first), int(last)


def rule_settings() -> rules.RuleSettings:
    """RuleSettings from settings.COBALT (tracker/settings/cobalt_monitoring.py); every [P] number there."""
    return rules.RuleSettings(
        a_h2_window=_window("RULES_A_H2_WINDOW"),
        a_h2_min_rise=Decimal(str(_cobalt("RULES_A_H2_MIN_RISE"))),
        a_h3_window=_window("RULES_A_H3_WINDOW"),
        a_h3_min_rise=Decimal(str(_cobalt("RULES_A_H3_MIN_RISE"))),
        a_h3_high_below_rise=Decimal(str(_cobalt("RULES_A_H3_HIGH_BELOW_RISE"))),
        a_h5_drop=Decimal(str(_cobalt("RULES_A_H5_DROP"))),
        a_h5_floor=Decimal(str(_cobalt("RULES_A_H5_FLOOR"))),
        a_p1_window=_window("RULES_A_P1_WINDOW"),
        a_p1_high_below=Decimal(str(_cobalt("RULES_A_P1_HIGH_BELOW"))),
        a_p2_window=_window("RULES_A_P2_WINDOW"),
        a_p3_floor=Decimal(str(_cobalt("RULES_A_P3_FLOOR"))),
        a_p3_fall_fraction=Decimal(str(_cobalt("RULES_A_P3_FALL_PERCENT"))) / 100,
        a_p4_window=_window("RULES_A_P4_WINDOW"),
        a_l1_baseline_uln_multiple=Decimal(str(_cobalt("RULES_A_L1_BASELINE_ULN_MULTIPLE"))),
        a_l1_min_fall_fraction=Decimal(str(_cobalt("RULES_A_L1_MIN_FALL_PERCENT"))) / 100,
        a_l1_window=_window("RULES_A_L1_WINDOW"),
        a_l2_window=_window("RULES_A_L2_WINDOW"),
        transfusion_suppression_days=int(cast(int, _cobalt("RULES_TRANSFUSION_SUPPRESSION_DAYS"))),
    )


@dataclass(frozen=True)
class StoredResult:
    """A quantitative result as the rules see it, plus the row id for alert evidence."""

    id: int
    result: rules.Result


def stored_results(rows: Iterable[LabResult], zone: str) -> list[StoredResult]:
    """Quantitative rows as rules.Result (canonical unit; collected_on = local date in the patient's zone),
    oldest first."""
    out = [
        StoredResult(
            row.pk,
            rules.Result(
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


def fact_present(facts: Iterable[PatientFact], kind: str, on: date | None = None) -> PatientFact | None:
    """The recorded (not checked-and-absent) fact of `kind`, covering `on` when given."""
    for fact in facts:
        if fact.kind != kind or fact.absent:
            continue
        if on is not None and (
            (fact.onset_date is not None and fact.onset_date > on) or (fact.end_date is not None and fact.end_date < on)
        ):
            continue
        return fact
    return None


def limits(result: rules.Result, sex: str, age: int, pregnant: bool) -> tuple[Decimal | None, Decimal | None]:
    """(LLN, ULN): the reporting lab's range when given, else RULES §5.2 defaults (§3.2 "Lab limits")."""
    default = default_range(result.analyte, cast(Sex, sex), age, pregnant)
    low = Decimal(str(result.ref_low)) if result.ref_low is not None else (default.low if default else None)
    high = Decimal(str(result.ref_high)) if result.ref_high is not None else (default.high if default else None)
    return low, high


def below_lln(result: rules.Result, sex: str, age: int, pregnant: bool) -> bool:
    low, _ = limits(result, sex, age, pregnant)
    return low is not None and Decimal(str(result.value)) < low


def above_uln(result: rules.Result, sex: str, age: int, pregnant: bool) -> bool:
    _, high = limits(result, sex, age, pregnant)
    return high is not None and Decimal(str(result.value)) > high


def baseline_of(results: Iterable[rules.Result], analyte: str, t0: date) -> rules.Result | None:
    """RULES §2 baseline: the latest result of `analyte` on or before T0 (monitoring/rules.py: day 0 counts)."""
    return rules.baseline(tuple(results), analyte, t0)


def hemolysis_abnormal(on: Iterable[rules.Result], sex: str, age: int, pregnant: bool) -> list[rules.Result]:
    """The haemolysis markers among `on` that are abnormal: LDH or indirect bilirubin > ULN, haptoglobin < LLN."""
    out = []
    for r in on:
        if r.analyte in ("ldh", "bilirubin_indirect") and above_uln(r, sex, age, pregnant):
            out.append(r)
        elif r.analyte == "haptoglobin" and below_lln(r, sex, age, pregnant):
            out.append(r)
    return out


def lab_context_from(
    patient: Patient, t0: date | None, results: list[rules.Result], facts: list[PatientFact]
) -> LabContext:
    """The pure part of `lab_context` (no queries)."""
    irreversible = (
        patient.deficiency_cause in IRREVERSIBLE_CAUSES
        or fact_present(facts, FactKind.IF_ANTIBODY_POSITIVE) is not None
    )
    if t0 is None:
        return LabContext(irreversible_cause=irreversible)
    pregnant = fact_present(facts, FactKind.PREGNANCY, t0) is not None
    age = patient.age_on(t0)
    sex = patient.sex

    def base(analyte: str) -> rules.Result | None:
        return baseline_of(results, analyte, t0)

    hb, retic, plt, mcv = (
        base("hemoglobin"),
        base("reticulocytes_pct") or base("reticulocytes_abs"),
        base("platelets"),
        base("mcv"),
    )
    markers = [m for m in (base(a) for a in HEMOLYSIS_MARKERS) if m is not None]
    hb_low = hb is not None and below_lln(hb, sex, age, pregnant)
    plt_low = plt is not None and below_lln(plt, sex, age, pregnant)
    hemolysis = bool(hemolysis_abnormal(markers, sex, age, pregnant))
    # RULES S-9 / L-1 [P]: Hb < 80 g/L at T0, or the "severe megaloblastic anaemia" flag.
    hb_severe = (
        hb is not None and Decimal(str(hb.value)) < Decimal(str(_cobalt("POTASSIUM_CHECK_HB_BELOW")))
    ) or fact_present(facts, FactKind.SEVERE_MEGALOBLASTIC) is not None
    # RULES L-4b: platelets < 50, or the pseudo-TMA pattern (S-3: Hb low, platelets < LLN, a haemolysis sign).
    very_low = plt is not None and (Decimal(str(plt.value)) < L4B_PLATELETS_BELOW or (hb_low and plt_low and hemolysis))
    cbc_abnormal = any(
        r is not None and (below_lln(r, sex, age, pregnant) or above_uln(r, sex, age, pregnant)) for r in (hb, plt, mcv)
    )
    post = [r for r in results if r.collected_on > t0]
    platelets_normal_on = next(
        (r.collected_on for r in post if r.analyte == "platelets" and not below_lln(r, sex, age, pregnant)), None
    )
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
    hemolysis_normal_on = None
    for day in sorted({r.collected_on for r in post if r.analyte in HEMOLYSIS_MARKERS}):
        same_day = [r for r in post if r.collected_on == day and r.analyte in HEMOLYSIS_MARKERS]
        if not hemolysis_abnormal(same_day, sex, age, pregnant):
            hemolysis_normal_on = day
            break
    return LabContext(
        has_baseline=hb is not None,
        hb_low=hb_low,
        hb_severe=bool(hb_severe),
        retics_low=retic is not None and below_lln(retic, sex, age, pregnant),
        platelets_low=plt_low,
        platelets_very_low=bool(very_low),
        hemolysis_abnormal=hemolysis,
        cbc_abnormal=cbc_abnormal,
        pregnant=pregnant,
        irreversible_cause=irreversible,
        platelets_normal_on=platelets_normal_on,
        platelets_rising_on=platelets_rising_on,
        hemolysis_normal_on=hemolysis_normal_on,
    )


def lab_context(patient: Patient, t0: date | None) -> LabContext:
    """The baseline and follow-up flags RULES.md §2 plans rechecks from (two queries).

    Baseline = the latest result of each analyte on or before T0 (§2; day 0 is the pre-dose sample, as in
    monitoring/rules.py). Follow-up flags (platelets normal, rising; haemolysis markers normal) end the
    conditional rechecks "until normal" (L-4, L-4b, L-5).
    """
    facts = list(PatientFact.objects.filter(patient=patient))
    if t0 is None:
        return lab_context_from(patient, None, [], facts)
    rows = LabResult.objects.filter(patient=patient, value_canonical__isnull=False).only(
        "id", "analyte", "value_canonical", "collected_at", "ref_low", "ref_high"
    )
    results = [s.result for s in stored_results(rows, patient.timezone)]
    return lab_context_from(patient, t0, results, facts)
