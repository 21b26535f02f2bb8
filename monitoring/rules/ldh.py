"""The LDH response rules A-L1 and A-L2 (RULES §3.5, docs/clinical-reference.md)."""

from __future__ import annotations

from monitoring.rules.base import (
    DEFAULT_SETTINGS,
    Finding,
    PatientContext,
    Result,
    RuleSettings,
    above_uln,
    baseline,
    day_of,
    dec,
    evidence_of,
    fmt,
    judged_results,
    late_evidence,
    late_note,
    limits_of,
)

# RULES §3.5 gives no action text; A-L1/A-L2 follow up a pseudo-TMA pattern (S-3), so the same check.
LDH_ACTION_TEXT = (
    "Check adherence and doses given; review the haemolysis markers (LDH, haptoglobin, indirect bilirubin, "
    "film for schistocytes); reconsider another cause of haemolysis or a true TMA (S-3)."
)

# --- §3.5 LDH rules ---------------------------------------------------------------------------------


def a_l1_ldh_not_falling(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-L1 (HIGH): baseline LDH > 2 x ULN and the day 7 ± 2 LDH fall < 50 % from baseline [P]. A missed
    window: the LDH before day 24 (A-L2 opens) is judged (V-8). Not for an enrolment at maintenance (V-1)."""
    if ctx.t0 is None or ctx.enrolled:
        return None
    base = baseline(results, "ldh", ctx.t0)
    if base is None:
        return None
    base_uln = limits_of(base, ctx)[1]
    base_value = dec(base.value)
    if base_uln is None or not base_value > settings.a_l1_baseline_uln_multiple * base_uln or base_value <= 0:
        return None
    window, late = judged_results(results, "ldh", ctx.t0, settings.a_l1_window, settings.a_l2_window[0])
    if not window:
        return None
    latest = window[-1]
    fall = (base_value - dec(latest.value)) / base_value
    if fall >= settings.a_l1_min_fall_fraction:
        return None
    return Finding(
        kind="ldh_not_falling",
        rule_id="A-L1",
        severity="high",
        message=(
            f"LDH not falling: {latest.shown} U/L on day {day_of(latest, ctx.t0)} is {fall * 100:.0f}% below the "
            f"baseline {base.shown} U/L (expected at least {settings.a_l1_min_fall_fraction * 100:.0f}%) (A-L1)."
            + late_note(late, settings.a_l1_window)
        ),
        action_text=LDH_ACTION_TEXT,
        evidence=evidence_of(
            latest,
            ctx.t0,
            baseline=base_value,
            baseline_uln=base_uln,
            fall_fraction=fall,
            **late_evidence(late, settings.a_l1_window),
        ),
    )


def a_l2_ldh_not_normalized(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-L2 (MEDIUM): day 28 ± 4 LDH above the ULN [P]. No baseline needed. A missed window: any later LDH is
    judged (V-8; no later LDH window). Not for an enrolment at maintenance (V-1)."""
    if ctx.t0 is None or ctx.enrolled:
        return None
    window, late = judged_results(results, "ldh", ctx.t0, settings.a_l2_window, None)
    if not window or not above_uln(window[-1], ctx):
        return None
    latest = window[-1]
    uln = limits_of(latest, ctx)[1]
    return Finding(
        kind="ldh_not_normalized",
        rule_id="A-L2",
        severity="medium",
        message=(
            f"LDH not normal: {latest.shown} U/L on day {day_of(latest, ctx.t0)} is above the ULN {fmt(uln)} (A-L2)."
            + late_note(late, settings.a_l2_window)
        ),
        action_text=LDH_ACTION_TEXT,
        evidence=evidence_of(latest, ctx.t0, uln=uln, **late_evidence(late, settings.a_l2_window)),
    )
