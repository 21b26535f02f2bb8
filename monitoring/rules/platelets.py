"""The platelet response rules A-P1..A-P5 (RULES §3.4, docs/clinical-reference.md)."""

from __future__ import annotations

from datetime import date

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
    judged_results,
    late_evidence,
    late_note,
    limits_of,
    post_t0,
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
    """The baseline platelet count when A-P1, A-P2, A-P4 and A-P5 apply (baseline below LLN; not an enrolment
    at maintenance, RULES §10 V-1), else None. A-P3 does not use it (V-4)."""
    if ctx.t0 is None or ctx.enrolled:
        return None
    base = baseline(results, "platelets", ctx.t0)
    if base is None or not below_lln(base, ctx):
        return None
    return base


def a_p1_platelets_not_rising(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-P1 (MEDIUM, HIGH if still < 50): day 7-10 platelets <= baseline [P]. A missed window: the count before
    day 12 (A-P2 opens) is judged (V-8)."""
    base = _platelet_baseline(results, ctx)
    if base is None or ctx.t0 is None:
        return None
    window, late = judged_results(results, "platelets", ctx.t0, settings.a_p1_window, settings.a_p2_window[0])
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
            f"baseline {base.shown} (A-P1)." + late_note(late, settings.a_p1_window)
        ),
        action_text=PLATELET_ACTION_TEXT,
        evidence=evidence_of(
            latest,
            ctx.t0,
            baseline=dec(base.value),
            baseline_on=base.collected_on.isoformat(),
            **late_evidence(late, settings.a_p1_window),
        ),
    )


def _platelets_below_lln(
    results: tuple[Result, ...],
    ctx: PatientContext,
    window: Window,
    next_opens: int | None,
    rule_id: str,
    label: str,
) -> Finding | None:
    base = _platelet_baseline(results, ctx)
    if base is None or ctx.t0 is None:
        return None
    window_results, late = judged_results(results, "platelets", ctx.t0, window, next_opens)
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
            + late_note(late, window)
        ),
        action_text=PLATELET_ACTION_TEXT,
        evidence=evidence_of(latest, ctx.t0, lln=lln, baseline=dec(base.value), **late_evidence(late, window)),
    )


def a_p2_platelets_not_normalized(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-P2 (HIGH): day 14 ± 2 platelets below the LLN [P]. A missed window: the count before day 24 (A-P4
    opens) is judged (V-8)."""
    return _platelets_below_lln(
        results, ctx, settings.a_p2_window, settings.a_p4_window[0], "A-P2", "Platelets fail to normalize"
    )


def a_p4_persistent_thrombocytopenia(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-P4 (HIGH): still below the LLN on day 28 [P]; window day 28 ± 4 (RuleSettings.a_p4_window). A missed
    window: any later count is judged (V-8; no later platelet window)."""
    return _platelets_below_lln(results, ctx, settings.a_p4_window, None, "A-P4", "Persistent thrombocytopenia")


def platelets_falling(
    result: Result, previous: Result | None, ctx: PatientContext, settings: RuleSettings
) -> str | None:
    """Why this count meets A-P3's numeric clauses (RULES §10 V-4), or None: below 20, or a fall of 30 % or more
    from the previous count TO a value below the LLN (600 -> 400 is a fall, not a critical one)."""
    value = dec(result.value)
    if value < settings.a_p3_floor:
        return f"below {fmt(settings.a_p3_floor)} x10^9/L"
    if previous is not None and dec(previous.value) > 0 and below_lln(result, ctx):
        fall = (dec(previous.value) - value) / dec(previous.value)
        if fall >= settings.a_p3_fall_fraction:
            return f"a fall of {fall * 100:.0f}% from the previous {previous.shown} x10^9/L to below the LLN"
    return None


def new_schistocytes(ctx: PatientContext) -> tuple[date, bool] | None:
    """A-P3's film clause (V-4): the latest post-T0 film reporting schistocytes present when the film before it
    had none or there was none (a film before T0 counts as "the previous film")."""
    if ctx.t0 is None:
        return None
    films = sorted(ctx.schistocytes, key=lambda f: f[0])
    for index in range(len(films) - 1, -1, -1):
        on, present = films[index]
        if on <= ctx.t0:
            break
        if present and (index == 0 or not films[index - 1][1]):
            return films[index]
    return None


def schistocytes_cleared(ctx: PatientContext) -> bool | None:
    """The film side of A-P3's target: True when the latest film after T0 shows none, False when it shows
    schistocytes, None when there is no post-T0 film."""
    if ctx.t0 is None:
        return None
    post = [f for f in sorted(ctx.schistocytes, key=lambda f: f[0]) if f[0] > ctx.t0]
    return None if not post else not post[-1][1]


def platelet_fall(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings
) -> tuple[list[Result], Fall] | None:
    """A-P3's numeric clauses in the patient's platelet series (base.falling)."""
    return falling(results, "platelets", ctx.t0, lambda result, prev: platelets_falling(result, prev, ctx, settings))


def a_p3_platelets_critical(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-P3 (CRITICAL), for every patient on treatment whatever the baseline (RULES §10 V-4), enrolments at
    maintenance included (V-1): any post-T0 platelets < 20 x10^9/L; a fall >= 30 % from the previous value to
    a value below the LLN [P]; or schistocytes reported present after T0 when the previous film had none or
    there was none. "Previous" includes the baseline. The latest post-T0 count that meets it is reported, or a
    later count that went lower still (V-3: a further fall is new evidence); without one, the new film."""
    if ctx.t0 is None:
        return None
    found = platelet_fall(results, ctx, settings)
    if found is not None:
        series, fall = found
        result, reason, evidence = fall.reported(series, ctx.t0, "x10^9/L")
        return Finding(
            kind="platelets_critical",
            rule_id="A-P3",
            severity="critical",
            message=(
                f"Platelets falling or very low: {result.shown} x10^9/L on day {day_of(result, ctx.t0)}, "
                f"{reason} (A-P3)."
            ),
            action_text=PLATELET_CRITICAL_ACTION_TEXT,
            evidence=evidence,
        )
    film = new_schistocytes(ctx)
    if film is not None:
        day = (film[0] - ctx.t0).days
        return Finding(
            kind="platelets_critical",
            rule_id="A-P3",
            severity="critical",
            message=f"New schistocytes on the blood film on day {day} (A-P3).",
            action_text=PLATELET_CRITICAL_ACTION_TEXT,
            evidence={
                "analyte": "schistocytes",
                "value": "present",
                "collected_on": film[0].isoformat(),
                "day": day,
                "reason": "new schistocytes on film",
            },
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
