"""The platelet response rules A-P1..A-P5 (RULES §3.4, docs/clinical-reference.md)."""

from __future__ import annotations

from monitoring.rules.base import (
    DEFAULT_SETTINGS,
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
    fmt,
    in_window,
    limits_of,
    post_t0,
    series_of,
)

# RULES §3.4 gives no action text block; these follow each rule's "Basis" column.
PLATELET_ACTION_TEXT = (
    "Check adherence and doses given; check iron and folate (L-9); re-evaluate for another cause of "
    "thrombocytopenia; consider haematology referral."
)

# RULES §3.4 A-P3 basis: "Reconsider a true thrombotic microangiopathy or TTP (see S-3)".
PLATELET_CRITICAL_ACTION_TEXT = (
    "Reconsider a true thrombotic microangiopathy or TTP (see S-3): blood film for schistocytes, LDH, "
    "haptoglobin, ADAMTS13 before any plasma therapy; urgent haematology advice."
)

# RULES §3.4 A-P5: informational only.
PLATELET_REBOUND_ACTION_TEXT = "Informational: a platelet rise with the erythropoietic response has been described."

# --- §3.4 platelet rules ----------------------------------------------------------------------------


def _platelet_baseline(results: tuple[Result, ...], ctx: PatientContext) -> Result | None:
    """The baseline platelet count when §3.4 applies (baseline below LLN), else None."""
    if ctx.t0 is None:
        return None
    base = baseline(results, "platelets", ctx.t0)
    if base is None or not below_lln(base, ctx):
        return None
    return base


def a_p1_platelets_not_rising(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-P1 (MEDIUM, HIGH if still < 50): day 7-10 platelets <= baseline [P]."""
    base = _platelet_baseline(results, ctx)
    if base is None or ctx.t0 is None:
        return None
    window = in_window(results, "platelets", ctx.t0, settings.a_p1_window)
    if not window or dec(window[-1].value) > dec(base.value):
        return None
    latest = window[-1]
    severity: Severity = "high" if dec(latest.value) < settings.a_p1_high_below else "medium"
    return Finding(
        kind="platelets_not_rising",
        rule_id="A-P1",
        severity=severity,
        message=(
            f"Platelets not rising: {latest.shown} x10^9/L on day {day_of(latest, ctx.t0)}, "
            f"baseline {base.shown} (A-P1)."
        ),
        action_text=PLATELET_ACTION_TEXT,
        evidence=evidence_of(latest, ctx.t0, baseline=dec(base.value), baseline_on=base.collected_on.isoformat()),
    )


def _platelets_below_lln(
    results: tuple[Result, ...], ctx: PatientContext, window: Window, rule_id: str, label: str
) -> Finding | None:
    base = _platelet_baseline(results, ctx)
    if base is None or ctx.t0 is None:
        return None
    window_results = in_window(results, "platelets", ctx.t0, window)
    if not window_results or not below_lln(window_results[-1], ctx):
        return None
    latest = window_results[-1]
    lln = limits_of(latest, ctx)[0]
    return Finding(
        kind="platelets_not_normalized",
        rule_id=rule_id,
        severity="high",
        message=(
            f"{label}: {latest.shown} x10^9/L on day {day_of(latest, ctx.t0)} is below the LLN {fmt(lln)} ({rule_id})."
        ),
        action_text=PLATELET_ACTION_TEXT,
        evidence=evidence_of(latest, ctx.t0, lln=lln, baseline=dec(base.value)),
    )


def a_p2_platelets_not_normalized(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-P2 (HIGH): day 14 ± 2 platelets below the LLN [P]."""
    return _platelets_below_lln(results, ctx, settings.a_p2_window, "A-P2", "Platelets fail to normalize")


def a_p4_persistent_thrombocytopenia(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-P4 (HIGH): still below the LLN on day 28 [P]; window day 28 ± 4 (RuleSettings.a_p4_window)."""
    return _platelets_below_lln(results, ctx, settings.a_p4_window, "A-P4", "Persistent thrombocytopenia")


def platelets_falling(result: Result, previous: Result | None, settings: RuleSettings) -> str | None:
    value = dec(result.value)
    if value < settings.a_p3_floor:
        return f"below {fmt(settings.a_p3_floor)} x10^9/L"
    if previous is not None and dec(previous.value) > 0:
        fall = (dec(previous.value) - value) / dec(previous.value)
        if fall >= settings.a_p3_fall_fraction:
            return f"a fall of {fall * 100:.0f}% from the previous {previous.shown} x10^9/L"
    return None


def a_p3_platelets_critical(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-P3 (CRITICAL): any post-T0 platelets < 20 x10^9/L, or a fall >= 30 % from the previous value [P].

    Applies only when baseline platelets are below the LLN (§3.4 first line). The third clause, "new
    schistocytes on film", is not covered here: a qualitative result does not fit `Result.value`.
    """
    base = _platelet_baseline(results, ctx)
    if base is None or ctx.t0 is None:
        return None
    series = series_of(results, "platelets")
    for index in range(len(series) - 1, -1, -1):
        result = series[index]
        if result.collected_on <= ctx.t0:
            break
        previous = series[index - 1] if index > 0 else None
        reason = platelets_falling(result, previous, settings)
        if reason:
            return Finding(
                kind="platelets_critical",
                rule_id="A-P3",
                severity="critical",
                message=(
                    f"Platelets falling or very low: {result.shown} x10^9/L on day {day_of(result, ctx.t0)}, "
                    f"{reason} (A-P3)."
                ),
                action_text=PLATELET_CRITICAL_ACTION_TEXT,
                evidence=evidence_of(
                    result, ctx.t0, previous=None if previous is None else str(dec(previous.value)), reason=reason
                ),
            )
    return None


def a_p5_platelets_rebound(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-P5 (INFO): post-T0 platelets above the ULN (default 400) "during recovery"; the latest such result.
    Decision: "during recovery" is read as any post-T0 result (RULES gives no end)."""
    base = _platelet_baseline(results, ctx)
    if base is None or ctx.t0 is None:
        return None
    high = [r for r in post_t0(results, "platelets", ctx.t0) if above_uln(r, ctx)]
    if not high:
        return None
    latest = high[-1]
    uln = limits_of(latest, ctx)[1]
    return Finding(
        kind="platelets_rebound",
        rule_id="A-P5",
        severity="info",
        message=(
            f"Rebound thrombocytosis: {latest.shown} x10^9/L on day {day_of(latest, ctx.t0)} is above the ULN "
            f"{fmt(uln)} (A-P5)."
        ),
        action_text=PLATELET_REBOUND_ACTION_TEXT,
        evidence=evidence_of(latest, ctx.t0, uln=uln),
    )
