"""The haemoglobin and red-cell response rules A-H1..A-H7 (RULES §3.3, docs/clinical-reference.md)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

from monitoring.rules.base import (
    DEFAULT_SETTINGS,
    Fall,
    Finding,
    PatientContext,
    Result,
    RuleSettings,
    Severity,
    Window,
    above_uln,
    baseline,
    below_lln,
    day_of,
    dec,
    evidence_of,
    falling,
    fmt,
    in_window,
    interpretable_hb,
    judged_results,
    late_evidence,
    late_note,
    limits_of,
    series_of,
)

# RULES §3.3 "Action text for every Hb alert" (A-H1..A-H7).
HB_ACTION_TEXT = (
    "Check adherence and doses given; check iron and folate (L-9); reconsider the diagnosis "
    "(myelodysplasia, hypothyroidism, infection, drugs); consider haematology referral."
)

# A-H1 [V, FDA-CN]: "at least twice normal while haematocrit < 35%". "Normal" is read as the reticulocyte
# reference ULN, so the bar is 2 x ULN (e.g. 4.0 % with the 0.2-2.0 % default).
A_H1_RETICULOCYTE_ULN_MULTIPLE = Decimal(2)

A_H1_HEMATOCRIT_BELOW = Decimal("0.35")  # A-H1 [V]: haematocrit < 35 %, i.e. 0.35 L/L (canonical unit)

# --- §3.3 Hb / red-cell rules -----------------------------------------------------------------------


def a_h1_no_reticulocyte_response(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-H1 (HIGH), in an anaemic patient: day 5-10 reticulocytes not above the ULN, or not at least 2 x ULN,
    while haematocrit < 35 % (Hb below the LLN as the proxy when there is no haematocrit).

    "While haematocrit < 35 %" governs both clauses. FDA-CN's text is about anaemic patients, and a
    reticulocyte response is the marrow's answer to anaemia (§3.1; L-3 plans the count only when baseline Hb
    and reticulocytes are low): a patient who is not anaemic has no reason to raise reticulocytes above the
    range. The first implementation applied "not above the ULN" to every patient, so it alerted HIGH on the
    normal count of any non-anaemic patient (a neurological presentation with a normal Hb, a restart after
    the Hb had recovered). Now neither clause fires unless the latest haematocrit is < 35 % (or, when the
    latest Hb is more recent than any haematocrit, that Hb is below the LLN) on the day of the count judged.

    Decisions: reticulocytes_pct is used, reticulocytes_abs only when no % result is in the window.
    The first clause looks at the PEAK in the window (a rise above the ULN at any point is a response; the
    count peaks and falls, §3.1). The second clause ("do not STAY at least twice normal") looks at the
    LATEST reticulocyte in the window. Not extended past its window (V-8): the count peaks by day 10 and
    returns to the range in responders too, so a later normal count says nothing about the response.
    Not for an enrolment at maintenance (V-1).
    """
    if ctx.t0 is None or ctx.enrolled:
        return None
    t0 = ctx.t0
    retics = in_window(results, "reticulocytes_pct", t0, settings.a_h1_window) or in_window(
        results, "reticulocytes_abs", t0, settings.a_h1_window
    )
    checked = [r for r in retics if limits_of(r, ctx)[1] is not None]
    if not checked:
        return None
    peak = max(checked, key=lambda r: dec(r.value))
    peak_uln = limits_of(peak, ctx)[1]
    assert peak_uln is not None  # filtered above
    if not dec(peak.value) > peak_uln:
        anaemic, basis = _anaemic_on(results, ctx, peak.collected_on)
        if anaemic:
            return Finding(
                kind="no_reticulocyte_response",
                rule_id="A-H1",
                severity="high",
                message=(
                    f"No reticulocyte response: peak {peak.shown} on day {day_of(peak, t0)} is not above the "
                    f"upper limit {fmt(peak_uln)} while {basis} "
                    f"(A-H1, days {settings.a_h1_window[0]}-{settings.a_h1_window[1]})."
                ),
                action_text=HB_ACTION_TEXT,
                evidence=evidence_of(peak, t0, uln=peak_uln, anaemia_basis=basis, clause="not above ULN"),
            )
    latest = checked[-1]
    latest_uln = limits_of(latest, ctx)[1]
    assert latest_uln is not None  # filtered above
    bar = A_H1_RETICULOCYTE_ULN_MULTIPLE * latest_uln
    if dec(latest.value) >= bar:
        return None
    anaemic, basis = _anaemic_on(results, ctx, latest.collected_on)
    if not anaemic:
        return None
    return Finding(
        kind="no_reticulocyte_response",
        rule_id="A-H1",
        severity="high",
        message=(
            f"Reticulocytes {latest.shown} on day {day_of(latest, t0)} are below twice normal ({fmt(bar)}) "
            f"while {basis} (A-H1)."
        ),
        action_text=HB_ACTION_TEXT,
        evidence=evidence_of(latest, t0, twice_normal=bar, anaemia_basis=basis, clause="not >= 2x normal"),
    )


def _anaemic_on(results: tuple[Result, ...], ctx: PatientContext, on: date) -> tuple[bool, str]:
    """A-H1 "while haematocrit < 35 %" on the day `on`: the latest haematocrit taken up to `on`, unless a
    later Hb exists, which is then the proxy (Hb below the LLN). A same-day haematocrit wins over the Hb.
    The most recent measurement is used so that an old haematocrit (the anaemic baseline) never outweighs a
    newer normal Hb. No haematocrit and no Hb: not known to be anaemic, so A-H1 does not fire."""
    hct = [r for r in series_of(results, "hematocrit") if r.collected_on <= on]
    hb = [r for r in series_of(results, "hemoglobin") if r.collected_on <= on]
    if hct and (not hb or hct[-1].collected_on >= hb[-1].collected_on):
        value = dec(hct[-1].value)
        return value < A_H1_HEMATOCRIT_BELOW, f"haematocrit {fmt(value)} L/L < {fmt(A_H1_HEMATOCRIT_BELOW)}"
    if hb:
        return bool(below_lln(hb[-1], ctx)), f"Hb {hb[-1].shown} g/L is below the LLN (the haematocrit proxy)"
    return False, "no haematocrit or Hb"


def _rise_evidence(latest: Result, base: Result, t0: date, rise: Decimal, late: bool, window: Window) -> dict[str, Any]:
    """Evidence of a slow-rise finding (A-H2, A-H3): the Hb judged, its baseline and the rise between them."""
    return evidence_of(
        latest,
        t0,
        baseline=dec(base.value),
        baseline_on=base.collected_on.isoformat(),
        rise=rise,
        **late_evidence(late, window),
    )


def a_h2_slow_early_rise(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-H2 (MEDIUM): baseline Hb < LLN and the day 14 ± 3 Hb rise over baseline < 10 g/L [P].
    Hb drawn within 14 days after a transfusion is ignored (§3.6). A missed window: the Hb before day 24 (A-H3
    opens) is judged (V-8)."""
    if ctx.t0 is None or ctx.enrolled:
        return None
    t0 = ctx.t0
    base = baseline(results, "hemoglobin", t0)
    if base is None or not below_lln(base, ctx):
        return None
    window, late = judged_results(
        interpretable_hb(results, ctx, settings), "hemoglobin", t0, settings.a_h2_window, settings.a_h3_window[0]
    )
    if not window:
        return None
    latest = window[-1]
    rise = dec(latest.value) - dec(base.value)
    if rise >= settings.a_h2_min_rise:
        return None
    return Finding(
        kind="hemoglobin_slow_rise",
        rule_id="A-H2",
        severity="medium",
        message=(
            f"Slow early Hb rise: {latest.shown} g/L on day {day_of(latest, t0)}, {fmt(rise)} g/L over the baseline "
            f"{base.shown} g/L; expected at least {fmt(settings.a_h2_min_rise)} g/L by day 14 (A-H2)."
            + late_note(late, settings.a_h2_window)
        ),
        action_text=HB_ACTION_TEXT,
        evidence=_rise_evidence(latest, base, t0, rise, late, settings.a_h2_window),
    )


def a_h3_slow_rise_4_weeks(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-H3 (MEDIUM, HIGH if rise < 10 g/L): day 28 ± 4 Hb < LLN and rise over baseline < 20 g/L [P].

    Decision: without a baseline Hb the rise cannot be measured, so A-H3 does not fire (A-H4 still
    catches a low Hb at week 8). Hb drawn within 14 days after a transfusion is ignored (§3.6). A missed
    window: the Hb before day 49 (A-H4 opens) is judged (V-8).
    """
    if ctx.t0 is None or ctx.enrolled:
        return None
    t0 = ctx.t0
    base = baseline(results, "hemoglobin", t0)
    if base is None:
        return None
    window, late = judged_results(
        interpretable_hb(results, ctx, settings), "hemoglobin", t0, settings.a_h3_window, settings.a_h4_window[0]
    )
    if not window or not below_lln(window[-1], ctx):
        return None
    latest = window[-1]
    rise = dec(latest.value) - dec(base.value)
    if rise >= settings.a_h3_min_rise:
        return None
    severity: Severity = "high" if rise < settings.a_h3_high_below_rise else "medium"
    return Finding(
        kind="hemoglobin_slow_rise",
        rule_id="A-H3",
        severity=severity,
        message=(
            f"Slow Hb at 4 weeks: {latest.shown} g/L on day {day_of(latest, t0)} is below the LLN and only "
            f"{fmt(rise)} g/L "
            f"over the baseline {base.shown} g/L (expected at least {fmt(settings.a_h3_min_rise)}) (A-H3)."
            + late_note(late, settings.a_h3_window)
        ),
        action_text=HB_ACTION_TEXT,
        evidence=_rise_evidence(latest, base, t0, rise, late, settings.a_h3_window),
    )


def _below_lln_judged(
    results: Iterable[Result],
    ctx: PatientContext,
    window: Window,
    next_opens: int | None,
    analyte: str = "hemoglobin",
) -> tuple[Result | None, bool]:
    """The result a "still below the LLN" window rule judges (the latest in the window, else after it, V-8),
    when it is below the LLN; and whether it was taken late."""
    assert ctx.t0 is not None  # callers check
    found, late = judged_results(results, analyte, ctx.t0, window, next_opens)
    if found and below_lln(found[-1], ctx):
        return found[-1], late
    return None, late


def a_h4_hb_not_normalized(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-H4 (HIGH): day 56 ± 7 Hb still below the sex-specific LLN. No baseline needed.
    Hb drawn within 14 days after a transfusion is ignored (§3.6). A missed window: the Hb before day 76 (A-H7
    opens) is judged (V-8: a day-70 Hb below the LLN fires A-H4)."""
    if ctx.t0 is None or ctx.enrolled:
        return None
    low, late = _below_lln_judged(
        interpretable_hb(results, ctx, settings), ctx, settings.a_h4_window, settings.a_h7_window[0]
    )
    if low is None:
        return None
    lln = limits_of(low, ctx)[0]
    return Finding(
        kind="hemoglobin_not_normalized",
        rule_id="A-H4",
        severity="high",
        message=(
            f"Hb fails to normalize: {low.shown} g/L on day {day_of(low, ctx.t0)} is below the LLN {fmt(lln)} (A-H4)."
            + late_note(late, settings.a_h4_window)
        ),
        action_text=HB_ACTION_TEXT,
        evidence=evidence_of(low, ctx.t0, lln=lln, **late_evidence(late, settings.a_h4_window)),
    )


def hb_falling(result: Result, previous: Result | None, settings: RuleSettings) -> str | None:
    """Why this Hb meets A-H5, or None."""
    value = dec(result.value)
    if value < settings.a_h5_floor:
        return f"below {fmt(settings.a_h5_floor)} g/L"
    if previous is not None and dec(previous.value) - value >= settings.a_h5_drop:
        return f"{fmt(dec(previous.value) - value, previous.analyte)} g/L lower than the previous {previous.shown} g/L"
    return None


def hb_fall(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings
) -> tuple[list[Result], Fall] | None:
    """A-H5 in the patient's Hb series (base.falling)."""
    return falling(results, "hemoglobin", ctx.t0, lambda result, previous: hb_falling(result, previous, settings))


def a_h5_hb_falling(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-H5 (CRITICAL): any post-T0 Hb >= 20 g/L lower than the previous value, or < 70 g/L [P].

    "Previous" is the Hb just before it, baseline included. The latest post-T0 result that meets the rule
    is reported, or a later Hb that went lower still (RULES §10 V-3: a further fall is new evidence, and the
    alert is not over). Not suppressed by a transfusion: §3.6 names only A-H2, A-H3 and A-H4.
    """
    found = hb_fall(results, ctx, settings)
    if found is None or ctx.t0 is None:
        return None
    series, fall = found
    result, reason, evidence = fall.reported(series, ctx.t0, "g/L")
    return Finding(
        kind="hemoglobin_falling",
        rule_id="A-H5",
        severity="critical",
        message=f"Hb falling on treatment: {result.shown} g/L on day {day_of(result, ctx.t0)}, {reason} (A-H5).",
        action_text=HB_ACTION_TEXT,
        evidence=evidence,
    )


def a_h6_mcv_not_normalized(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-H6 (MEDIUM): day 56 ± 7 MCV above the ULN (default 100 fL). A missed window: any later MCV is judged
    (V-8; no later MCV window)."""
    if ctx.t0 is None or ctx.enrolled:
        return None
    window, late = judged_results(results, "mcv", ctx.t0, settings.a_h6_window, None)
    if not window or not above_uln(window[-1], ctx):
        return None
    latest = window[-1]
    uln = limits_of(latest, ctx)[1]
    return Finding(
        kind="mcv_not_normalized",
        rule_id="A-H6",
        severity="medium",
        message=(
            f"MCV not normalising: {latest.shown} fL on day {day_of(latest, ctx.t0)} is above the ULN "
            f"{fmt(uln)} (A-H6)." + late_note(late, settings.a_h6_window)
        ),
        action_text=HB_ACTION_TEXT,
        evidence=evidence_of(latest, ctx.t0, uln=uln, **late_evidence(late, settings.a_h6_window)),
    )


def a_h7_hb_refractory(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-H7 (HIGH): day 90 ± 14 Hb still below the LLN. Not transfusion-suppressed (§3.6 lists A-H2..A-H4).
    A missed window: any later Hb is judged (V-8; no later Hb window)."""
    if ctx.t0 is None or ctx.enrolled:
        return None
    low, late = _below_lln_judged(results, ctx, settings.a_h7_window, None)
    if low is None:
        return None
    lln = limits_of(low, ctx)[0]
    return Finding(
        kind="hemoglobin_refractory",
        rule_id="A-H7",
        severity="high",
        message=(
            f"Refractory at 3 months: Hb {low.shown} g/L on day {day_of(low, ctx.t0)} is below the LLN "
            f"{fmt(lln)} (A-H7)." + late_note(late, settings.a_h7_window)
        ),
        action_text=HB_ACTION_TEXT,
        evidence=evidence_of(low, ctx.t0, lln=lln, **late_evidence(late, settings.a_h7_window)),
    )
