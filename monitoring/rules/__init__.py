"""The haematological response rules (RULES §3.3-§3.6, docs/clinical-reference.md) as pure functions.

One module per analyte: `hemoglobin` (A-H1..A-H7), `platelets` (A-P1..A-P5), `ldh` (A-L1, A-L2); the
safety patterns read with the results (S-3, S-6, S-9, S-13) are in `patterns`. A new rule goes in the
module of the analyte it reads and into `RULES` below; `base` holds what they share. This module runs
them all (`evaluate`) and says which open findings a later result has closed (`resolved_kinds`).
"""

from __future__ import annotations

from monitoring.rules.base import (
    DEFAULT_SETTINGS,
    SEVERITY_ORDER,
    TRANSFUSION_NOTE,
    Fall,
    Finding,
    PatientContext,
    Result,
    RuleSettings,
    above_uln,
    after_transfusion,
    baseline,
    below_lln,
    dec,
    interpretable_hb,
    post_t0,
    series_of,
)
from monitoring.rules.hemoglobin import (
    a_h1_no_reticulocyte_response,
    a_h2_slow_early_rise,
    a_h3_slow_rise_4_weeks,
    a_h4_hb_not_normalized,
    a_h5_hb_falling,
    a_h6_mcv_not_normalized,
    a_h7_hb_refractory,
    hb_fall,
    hb_falling,
)
from monitoring.rules.ldh import (
    a_l1_ldh_not_falling,
    a_l2_ldh_not_normalized,
)
from monitoring.rules.platelets import (
    a_p1_platelets_not_rising,
    a_p2_platelets_not_normalized,
    a_p3_platelets_critical,
    a_p4_persistent_thrombocytopenia,
    a_p5_platelets_rebound,
    platelet_fall,
    platelets_falling,
    schistocytes_cleared,
)

# --- §3.6 closing, transfusion, and the whole evaluation -------------------------------------------


def resolved_kinds(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> set[str]:
    """Kinds whose target the LATEST post-T0 result of the analyte now meets (§3.6 auto-resolve).

    Decisions where RULES gives only the A-P2 example:
    - hemoglobin_slow_rise, hemoglobin_not_normalized, hemoglobin_refractory: latest Hb >= LLN, ignoring an
      Hb drawn within the post-transfusion period (it shows the transfusion, not the response).
    - hemoglobin_falling: latest Hb >= 70, not >= 20 lower than the one before (A-H5 no longer met) and not lower
      than every Hb since the one that met A-H5 (RULES §10 V-3: a further fall is not a met target).
    - mcv_not_normalized: latest MCV <= ULN. ldh_not_falling, ldh_not_normalized: latest LDH <= ULN.
    - platelets_not_normalized: latest platelets >= LLN. platelets_not_rising: latest > baseline.
    - platelets_critical: latest >= 20, not a >= 30 % fall to below the LLN and not lower than every count since
      the one that met A-P3 (V-3), and the latest post-T0 film (if any) shows no schistocytes; at least one of the
      two post-T0 results must exist (V-4).
      platelets_rebound: latest <= ULN.
    - no_reticulocyte_response never auto-resolves: its window is over, so a clinician closes it.
    """
    if ctx.t0 is None:
        return set()
    t0 = ctx.t0
    resolved: set[str] = set()

    def latest_two(analyte: str) -> tuple[Result | None, Result | None]:
        series = series_of(results, analyte)
        if not series or series[-1].collected_on <= t0:
            return None, None
        return series[-1], (series[-2] if len(series) > 1 else None)

    hb, hb_previous = latest_two("hemoglobin")
    if (
        hb is not None
        and hb_falling(hb, hb_previous, settings) is None
        and not _fell_further(hb_fall(results, ctx, settings))
    ):
        resolved.add("hemoglobin_falling")
    # A transfused Hb does not show that the treatment worked (§3.6), so it closes no "not normal" alert.
    usable_hb = post_t0(interpretable_hb(results, ctx, settings), "hemoglobin", t0)
    if usable_hb and below_lln(usable_hb[-1], ctx) is False:
        resolved |= {"hemoglobin_slow_rise", "hemoglobin_not_normalized", "hemoglobin_refractory"}
    mcv, _ = latest_two("mcv")
    if mcv is not None and above_uln(mcv, ctx) is False:
        resolved.add("mcv_not_normalized")
    ldh, _ = latest_two("ldh")
    if ldh is not None and above_uln(ldh, ctx) is False:
        resolved |= {"ldh_not_falling", "ldh_not_normalized"}
    plt, plt_previous = latest_two("platelets")
    if plt is not None:
        if below_lln(plt, ctx) is False:
            resolved.add("platelets_not_normalized")
        base = baseline(results, "platelets", t0)
        if base is not None and dec(plt.value) > dec(base.value):
            resolved.add("platelets_not_rising")
        if above_uln(plt, ctx) is False:
            resolved.add("platelets_rebound")
    # A-P3 (V-4): both of its inputs must be safe now, and at least one post-T0 result must show it.
    count_safe = (
        None
        if plt is None
        else platelets_falling(plt, plt_previous, ctx, settings) is None
        and not _fell_further(platelet_fall(results, ctx, settings))
    )
    film_clear = schistocytes_cleared(ctx)
    if count_safe is not False and film_clear is not False and (count_safe or film_clear):
        resolved.add("platelets_critical")
    return resolved


def _fell_further(found: tuple[list[Result], Fall] | None) -> bool:
    """Whether the latest result of the series went lower than the one that met the falling rule (V-3): then the
    rule is not over, whatever that latest result is on its own."""
    return found is not None and found[1].further() and found[1].latest == len(found[0]) - 1


def transfusion_note(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> str | None:
    """§3.6 INFO note "post-transfusion: Hb response not interpretable", when the latest post-T0 Hb was drawn
    within the suppression period after a transfusion (so A-H2/A-H3/A-H4 are not judged on it).
    Not a Finding: the note has no alert kind in the "Alert kinds" table."""
    if ctx.t0 is None:
        return None
    post = post_t0(results, "hemoglobin", ctx.t0)
    if post and after_transfusion(post[-1], ctx, settings) is not None:
        return TRANSFUSION_NOTE
    return None


RULES = (
    a_h1_no_reticulocyte_response,
    a_h2_slow_early_rise,
    a_h3_slow_rise_4_weeks,
    a_h4_hb_not_normalized,
    a_h5_hb_falling,
    a_h6_mcv_not_normalized,
    a_h7_hb_refractory,
    a_p1_platelets_not_rising,
    a_p2_platelets_not_normalized,
    a_p3_platelets_critical,
    a_p4_persistent_thrombocytopenia,
    a_p5_platelets_rebound,
    a_l1_ldh_not_falling,
    a_l2_ldh_not_normalized,
)


def _preferred(first: Finding, second: Finding) -> Finding:
    """§3.6 one alert per kind: the more severe; on a tie the later rule (RULES is in time order), which
    is the more current view (e.g. A-P4 at day 28 over A-P2 at day 14, A-H3 over A-H2)."""
    if SEVERITY_ORDER[second.severity] >= SEVERITY_ORDER[first.severity]:
        kept, dropped = second, first
    else:
        kept, dropped = first, second
    note = f" Also met: {dropped.rule_id} ({dropped.severity}); {kept.rule_id} is reported as the more severe or later."
    return Finding(
        kind=kept.kind,
        rule_id=kept.rule_id,
        severity=kept.severity,
        message=kept.message + note,
        action_text=kept.action_text,
        evidence={**kept.evidence, "also_met": dropped.rule_id},
    )


def evaluate(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> list[Finding]:
    """All findings that should be open now: at most one per kind (§3.6), minus kinds already resolved
    by a later result (`resolved_kinds`), in the order of the rules."""
    results = tuple(results)
    by_kind: dict[str, Finding] = {}
    for rule in RULES:
        finding = rule(results, ctx, settings)
        if finding is None:
            continue
        by_kind[finding.kind] = _preferred(by_kind[finding.kind], finding) if finding.kind in by_kind else finding
    closed = resolved_kinds(results, ctx, settings)
    return [finding for kind, finding in by_kind.items() if kind not in closed]


def critical_met(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> list[Finding]:
    """The CRITICAL findings (A-H5, A-P3) whose target a later result already meets, which `evaluate` leaves out.
    RULES §10 V-2: a critical alert waits for a person even when its target is met, so one that no alert has shown
    yet (a result posted after a later one, a file of results imported at once) must still open, showing "target
    met"."""
    closed = resolved_kinds(results, ctx, settings)
    found = (rule(results, ctx, settings) for rule in (a_h5_hb_falling, a_p3_platelets_critical))
    return [finding for finding in found if finding is not None and finding.kind in closed]


__all__ = [
    "DEFAULT_SETTINGS",
    "RULES",
    "TRANSFUSION_NOTE",
    "Finding",
    "PatientContext",
    "Result",
    "RuleSettings",
    "a_h1_no_reticulocyte_response",
    "a_h2_slow_early_rise",
    "a_h3_slow_rise_4_weeks",
    "a_h4_hb_not_normalized",
    "a_h5_hb_falling",
    "a_h6_mcv_not_normalized",
    "a_h7_hb_refractory",
    "a_l1_ldh_not_falling",
    "a_l2_ldh_not_normalized",
    "a_p1_platelets_not_rising",
    "a_p2_platelets_not_normalized",
    "a_p3_platelets_critical",
    "a_p4_persistent_thrombocytopenia",
    "a_p5_platelets_rebound",
    "baseline",
    "critical_met",
    "evaluate",
    "resolved_kinds",
    "transfusion_note",
]
