"""The haematological response rules of RULES.md §3.3-§3.6 as pure functions over lab values.

Pure (STYLE.md "A pure core"): no Django, no database, no clock. A caller passes the patient's results
and context and gets back `Finding`s; turning them into stored alerts (one open alert per kind,
acknowledgement, notifications) is the service layer's job.

Conventions and the decisions taken where RULES.md leaves room (each is also noted where it is applied):

- Units are canonical (patients/labs/analytes.py): hemoglobin g/L, platelets 10^9/L, mcv fL,
  reticulocytes_pct %, reticulocytes_abs 10^9/L, hematocrit L/L, ldh U/L.
- T0 is the first dose date and Day = (collected_on - T0).days. Without a T0 no rule can place a result
  in a window, so every rule returns None.
- Baseline (§2 "the most recent result before T0") is the latest result collected ON OR BEFORE T0.
  Results carry a date, not a time, and the pre-dose sample is usually drawn on the day of the first dose
  (§2: "take samples ... before starting replacement"); a day-0 result is therefore a baseline, and
  "post-T0" means day 1 or later.
- Limits (§3.2 "Lab limits"): the result's own ref_low/ref_high when present, otherwise
  `default_range(analyte, sex, age, pregnant)` (§5.2). Limits are inclusive: a value exactly at the LLN or
  ULN is normal (reference_ranges.ReferenceRange).
- Windows are inclusive: "day 14 ± 3" is days 11..17. When several results fall inside a window, the
  latest one is judged (it is the current state of the patient), except A-H1 (see there).
- Results on the same date keep the order they were given in (the sort is stable).
- `evaluate` returns what should be open now: at most one Finding per kind (§3.6), and not a kind that
  `resolved_kinds` says a later result has already closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal, cast

from patients.labs.reference_ranges import Sex, default_range

Severity = Literal["info", "medium", "high", "critical"]
_SEVERITY_ORDER: dict[str, int] = {"info": 0, "medium": 1, "high": 2, "critical": 3}

# RULES.md §3.3 "Action text for every Hb alert" (A-H1..A-H7).
HB_ACTION_TEXT = (
    "Check adherence and doses given; check iron and folate (L-9); reconsider the diagnosis "
    "(myelodysplasia, hypothyroidism, infection, drugs); consider haematology referral."
)
# RULES.md §3.4 gives no action text block; these follow each rule's "Basis" column.
PLATELET_ACTION_TEXT = (
    "Check adherence and doses given; check iron and folate (L-9); re-evaluate for another cause of "
    "thrombocytopenia; consider haematology referral."
)
# RULES.md §3.4 A-P3 basis: "Reconsider a true thrombotic microangiopathy or TTP (see S-3)".
PLATELET_CRITICAL_ACTION_TEXT = (
    "Reconsider a true thrombotic microangiopathy or TTP (see S-3): blood film for schistocytes, LDH, "
    "haptoglobin, ADAMTS13 before any plasma therapy; urgent haematology advice."
)
# RULES.md §3.4 A-P5: informational only.
PLATELET_REBOUND_ACTION_TEXT = "Informational: a platelet rise with the erythropoietic response has been described."
# RULES.md §3.5 gives no action text; A-L1/A-L2 follow up a pseudo-TMA pattern (S-3), so the same check.
LDH_ACTION_TEXT = (
    "Check adherence and doses given; review the haemolysis markers (LDH, haptoglobin, indirect bilirubin, "
    "film for schistocytes); reconsider another cause of haemolysis or a true TMA (S-3)."
)

# RULES.md §3.6: the INFO note shown instead of A-H2/A-H3/A-H4 after a transfusion.
TRANSFUSION_NOTE = "post-transfusion: Hb response not interpretable"

Window = tuple[int, int]


@dataclass(frozen=True)
class RuleSettings:
    """Every number of the rules that RULES.md marks [P] (proposal), with its proposed default, so the
    product can expose them as settings (§0.1 [P]: "must be approved by a clinician and be configurable").
    Numbers from a source ([V]/[S]) are here too when they are windows, so all windows live in one place;
    their tag is given. Windows are (first day, last day), inclusive, in days since T0.
    """

    # A-H1: day 5-10 (§3.3; §8 Q9 reconciles the sources to days 5-10) [V/S].
    a_h1_window: Window = (5, 10)
    # A-H2: day 14 ± 3 (§3.3 and L-6 timepoints [P]); rise < 10 g/L over baseline [P].
    a_h2_window: Window = (11, 17)
    a_h2_min_rise: Decimal = Decimal(10)
    # A-H3: day 28 ± 4 [P]; rise < 20 g/L is MEDIUM, rise < 10 g/L is HIGH [P].
    a_h3_window: Window = (24, 32)
    a_h3_min_rise: Decimal = Decimal(20)
    a_h3_high_below_rise: Decimal = Decimal(10)
    # A-H4: day 56 ± 7, week 8 (§3.3 [S]; ± 7 from L-7).
    a_h4_window: Window = (49, 63)
    # A-H5: a fall of >= 20 g/L from the previous value, or Hb < 70 g/L [P].
    a_h5_drop: Decimal = Decimal(20)
    a_h5_floor: Decimal = Decimal(70)
    # A-H6: day 56 ± 7 (§3.3; the MCV threshold is the ULN, default 100 fL, [P]).
    a_h6_window: Window = (49, 63)
    # A-H7: day 90 ± 14 (§3.3 [S]).
    a_h7_window: Window = (76, 104)
    # A-P1: day 7-10 [P]; HIGH if still < 50 x10^9/L [P].
    a_p1_window: Window = (7, 10)
    a_p1_high_below: Decimal = Decimal(50)
    # A-P2: day 14 ± 2 [P].
    a_p2_window: Window = (12, 16)
    # A-P3: any post-T0 platelets < 20 x10^9/L, or a fall >= 30 % from the previous value [P].
    a_p3_floor: Decimal = Decimal(20)
    a_p3_fall_fraction: Decimal = Decimal("0.30")
    # A-P4: "still < LLN on day 28" [P]. RULES gives no width; ± 4 as A-H3 and A-L2 use for day 28.
    a_p4_window: Window = (24, 32)
    # A-L1: baseline LDH > 2 x ULN and day 7 ± 2 fall < 50 % from baseline [P].
    a_l1_baseline_uln_multiple: Decimal = Decimal(2)
    a_l1_min_fall_fraction: Decimal = Decimal("0.50")
    a_l1_window: Window = (5, 9)
    # A-L2: day 28 ± 4 [P].
    a_l2_window: Window = (24, 32)
    # §3.6 [P]: suppress A-H2, A-H3 and A-H4 for 14 days after a transfusion.
    transfusion_suppression_days: int = 14


DEFAULT_SETTINGS = RuleSettings()

# A-H1 [V, FDA-CN]: "at least twice normal while haematocrit < 35%". "Normal" is read as the reticulocyte
# reference ULN, so the bar is 2 x ULN (e.g. 4.0 % with the 0.2-2.0 % default).
A_H1_RETICULOCYTE_ULN_MULTIPLE = Decimal(2)
A_H1_HEMATOCRIT_BELOW = Decimal("0.35")  # A-H1 [V]: haematocrit < 35 %, i.e. 0.35 L/L (canonical unit)


@dataclass(frozen=True)
class Result:
    """One lab result in its analyte's canonical unit; ref_low/ref_high are the reporting lab's range."""

    analyte: str
    value: Decimal | float
    collected_on: date
    ref_low: float | Decimal | None = None
    ref_high: float | Decimal | None = None


@dataclass(frozen=True)
class PatientContext:
    sex: str
    age: int
    pregnant: bool = False
    t0: date | None = None
    transfusions: tuple[date, ...] = ()


@dataclass(frozen=True)
class Finding:
    kind: str
    rule_id: str
    severity: Severity
    message: str
    action_text: str
    evidence: dict[str, Any] = field(default_factory=dict)


# --- helpers ---------------------------------------------------------------------------------------


def _dec(value: Decimal | float | int) -> Decimal:
    # str() first so a float 0.1 becomes Decimal("0.1"), not its binary expansion.
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _limits(result: Result, ctx: PatientContext) -> tuple[Decimal | None, Decimal | None]:
    """(LLN, ULN) for this result: the lab's own limit when given, else the §5.2 default (§3.2)."""
    default = default_range(result.analyte, cast(Sex, ctx.sex), ctx.age, ctx.pregnant)
    low = _dec(result.ref_low) if result.ref_low is not None else (default.low if default else None)
    high = _dec(result.ref_high) if result.ref_high is not None else (default.high if default else None)
    return low, high


def _below_lln(result: Result, ctx: PatientContext) -> bool | None:
    """True/False, or None when no LLN is known (then a rule that needs one cannot fire)."""
    low, _ = _limits(result, ctx)
    return None if low is None else _dec(result.value) < low


def _above_uln(result: Result, ctx: PatientContext) -> bool | None:
    _, high = _limits(result, ctx)
    return None if high is None else _dec(result.value) > high


def _series(results: Iterable[Result], analyte: str) -> list[Result]:
    # Stable sort: same-day results keep the caller's order.
    return sorted((r for r in results if r.analyte == analyte), key=lambda r: r.collected_on)


def _day(result: Result, t0: date) -> int:
    return (result.collected_on - t0).days


def baseline(results: Iterable[Result], analyte: str, t0: date) -> Result | None:
    """The latest result of `analyte` on or before T0 (module docstring: day 0 counts as baseline)."""
    before = [r for r in _series(results, analyte) if r.collected_on <= t0]
    return before[-1] if before else None


def _post_t0(results: Iterable[Result], analyte: str, t0: date) -> list[Result]:
    return [r for r in _series(results, analyte) if r.collected_on > t0]


def _in_window(results: Iterable[Result], analyte: str, t0: date, window: Window) -> list[Result]:
    first, last = window
    return [r for r in _series(results, analyte) if first <= _day(r, t0) <= last]


def _after_transfusion(result: Result, ctx: PatientContext, settings: RuleSettings) -> date | None:
    """The transfusion that makes this Hb uninterpretable (§3.6), if any.

    A transfusion on the day of the sample up to `transfusion_suppression_days` days before it counts
    (inclusive, like every window here): a same-day transfusion may have preceded the sample.
    """
    hits = [t for t in ctx.transfusions if 0 <= (result.collected_on - t).days <= settings.transfusion_suppression_days]
    return max(hits) if hits else None


def _interpretable_hb(results: Iterable[Result], ctx: PatientContext, settings: RuleSettings) -> tuple[Result, ...]:
    """Hb results minus those taken within the post-transfusion suppression period (§3.6).

    The suppressed results are ignored rather than the whole rule switched off: a result drawn before the
    transfusion in the same window still shows the response.
    """
    return tuple(r for r in results if r.analyte != "hemoglobin" or _after_transfusion(r, ctx, settings) is None)


def _evidence(result: Result, t0: date, **extra: Any) -> dict[str, Any]:
    # JSON-friendly: numbers as strings (exact Decimals), dates as ISO strings.
    evidence: dict[str, Any] = {
        "analyte": result.analyte,
        "value": str(_dec(result.value)),
        "collected_on": result.collected_on.isoformat(),
        "day": _day(result, t0),
    }
    for key, value in extra.items():
        evidence[key] = str(value) if isinstance(value, Decimal | float) else value
    return evidence


# --- §3.3 Hb / red-cell rules -----------------------------------------------------------------------


def a_h1_no_reticulocyte_response(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-H1 (HIGH): day 5-10 reticulocytes not above the ULN, or not at least 2 x ULN while haematocrit < 35 %
    (Hb below LLN as the proxy when there is no haematocrit).

    Decisions: reticulocytes_pct is used, reticulocytes_abs only when no % result is in the window.
    The first clause looks at the PEAK in the window (a rise above the ULN at any point is a response; the
    count peaks and falls, §3.1). The second clause ("do not STAY at least twice normal") looks at the
    LATEST reticulocyte in the window, with the latest haematocrit (else Hb) taken on or before it.
    """
    if ctx.t0 is None:
        return None
    t0 = ctx.t0
    retics = _in_window(results, "reticulocytes_pct", t0, settings.a_h1_window) or _in_window(
        results, "reticulocytes_abs", t0, settings.a_h1_window
    )
    checked = [r for r in retics if _limits(r, ctx)[1] is not None]
    if not checked:
        return None
    peak = max(checked, key=lambda r: _dec(r.value))
    peak_uln = _limits(peak, ctx)[1]
    assert peak_uln is not None  # filtered above
    if not _dec(peak.value) > peak_uln:
        return Finding(
            kind="no_reticulocyte_response",
            rule_id="A-H1",
            severity="high",
            message=(
                f"No reticulocyte response: peak {peak.value} on day {_day(peak, t0)} is not above the "
                f"upper limit {peak_uln} (A-H1, days {settings.a_h1_window[0]}-{settings.a_h1_window[1]})."
            ),
            action_text=HB_ACTION_TEXT,
            evidence=_evidence(peak, t0, uln=peak_uln, clause="not above ULN"),
        )
    latest = checked[-1]
    latest_uln = _limits(latest, ctx)[1]
    assert latest_uln is not None  # filtered above
    bar = A_H1_RETICULOCYTE_ULN_MULTIPLE * latest_uln
    if _dec(latest.value) >= bar:
        return None
    anaemic, basis = _still_anaemic(results, ctx, latest.collected_on)
    if not anaemic:
        return None
    return Finding(
        kind="no_reticulocyte_response",
        rule_id="A-H1",
        severity="high",
        message=(
            f"Reticulocytes {latest.value} on day {_day(latest, t0)} are below twice normal ({bar}) "
            f"while {basis} (A-H1)."
        ),
        action_text=HB_ACTION_TEXT,
        evidence=_evidence(latest, t0, twice_normal=bar, anaemia_basis=basis, clause="not >= 2x normal"),
    )


def _still_anaemic(results: tuple[Result, ...], ctx: PatientContext, on: date) -> tuple[bool, str]:
    """A-H1: haematocrit < 35 % on the latest haematocrit up to `on`; Hb < LLN as the proxy without one."""
    hct = [r for r in _series(results, "hematocrit") if r.collected_on <= on]
    if hct:
        value = _dec(hct[-1].value)
        return value < A_H1_HEMATOCRIT_BELOW, f"haematocrit {value} L/L < {A_H1_HEMATOCRIT_BELOW}"
    hb = [r for r in _series(results, "hemoglobin") if r.collected_on <= on]
    if hb:
        return bool(_below_lln(hb[-1], ctx)), f"Hb {hb[-1].value} g/L is below the LLN (no haematocrit)"
    return False, "no haematocrit or Hb"


def a_h2_slow_early_rise(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-H2 (MEDIUM): baseline Hb < LLN and the day 14 ± 3 Hb rise over baseline < 10 g/L [P].
    Hb drawn within 14 days after a transfusion is ignored (§3.6)."""
    if ctx.t0 is None:
        return None
    t0 = ctx.t0
    base = baseline(results, "hemoglobin", t0)
    if base is None or not _below_lln(base, ctx):
        return None
    window = _in_window(_interpretable_hb(results, ctx, settings), "hemoglobin", t0, settings.a_h2_window)
    if not window:
        return None
    latest = window[-1]
    rise = _dec(latest.value) - _dec(base.value)
    if rise >= settings.a_h2_min_rise:
        return None
    return Finding(
        kind="hemoglobin_slow_rise",
        rule_id="A-H2",
        severity="medium",
        message=(
            f"Slow early Hb rise: {latest.value} g/L on day {_day(latest, t0)}, {rise} g/L over the baseline "
            f"{base.value} g/L; expected at least {settings.a_h2_min_rise} g/L by day 14 (A-H2)."
        ),
        action_text=HB_ACTION_TEXT,
        evidence=_evidence(latest, t0, baseline=_dec(base.value), baseline_on=base.collected_on.isoformat(), rise=rise),
    )


def a_h3_slow_rise_4_weeks(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-H3 (MEDIUM, HIGH if rise < 10 g/L): day 28 ± 4 Hb < LLN and rise over baseline < 20 g/L [P].

    Decision: without a baseline Hb the rise cannot be measured, so A-H3 does not fire (A-H4 still
    catches a low Hb at week 8). Hb drawn within 14 days after a transfusion is ignored (§3.6).
    """
    if ctx.t0 is None:
        return None
    t0 = ctx.t0
    base = baseline(results, "hemoglobin", t0)
    if base is None:
        return None
    window = _in_window(_interpretable_hb(results, ctx, settings), "hemoglobin", t0, settings.a_h3_window)
    if not window or not _below_lln(window[-1], ctx):
        return None
    latest = window[-1]
    rise = _dec(latest.value) - _dec(base.value)
    if rise >= settings.a_h3_min_rise:
        return None
    severity: Severity = "high" if rise < settings.a_h3_high_below_rise else "medium"
    return Finding(
        kind="hemoglobin_slow_rise",
        rule_id="A-H3",
        severity=severity,
        message=(
            f"Slow Hb at 4 weeks: {latest.value} g/L on day {_day(latest, t0)} is below the LLN and only {rise} g/L "
            f"over the baseline {base.value} g/L (expected at least {settings.a_h3_min_rise}) (A-H3)."
        ),
        action_text=HB_ACTION_TEXT,
        evidence=_evidence(latest, t0, baseline=_dec(base.value), baseline_on=base.collected_on.isoformat(), rise=rise),
    )


def _hb_below_lln_in_window(
    results: Iterable[Result], ctx: PatientContext, window: Window, analyte: str = "hemoglobin"
) -> Result | None:
    assert ctx.t0 is not None  # callers check
    found = _in_window(results, analyte, ctx.t0, window)
    if found and _below_lln(found[-1], ctx):
        return found[-1]
    return None


def a_h4_hb_not_normalized(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-H4 (HIGH): day 56 ± 7 Hb still below the sex-specific LLN. No baseline needed.
    Hb drawn within 14 days after a transfusion is ignored (§3.6)."""
    if ctx.t0 is None:
        return None
    low = _hb_below_lln_in_window(_interpretable_hb(results, ctx, settings), ctx, settings.a_h4_window)
    if low is None:
        return None
    lln = _limits(low, ctx)[0]
    return Finding(
        kind="hemoglobin_not_normalized",
        rule_id="A-H4",
        severity="high",
        message=f"Hb fails to normalize: {low.value} g/L on day {_day(low, ctx.t0)} is below the LLN {lln} (A-H4).",
        action_text=HB_ACTION_TEXT,
        evidence=_evidence(low, ctx.t0, lln=lln),
    )


def _hb_falling(result: Result, previous: Result | None, settings: RuleSettings) -> str | None:
    """Why this Hb meets A-H5, or None."""
    value = _dec(result.value)
    if value < settings.a_h5_floor:
        return f"below {settings.a_h5_floor} g/L"
    if previous is not None and _dec(previous.value) - value >= settings.a_h5_drop:
        return f"{_dec(previous.value) - value} g/L lower than the previous {previous.value} g/L"
    return None


def a_h5_hb_falling(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-H5 (CRITICAL): any post-T0 Hb >= 20 g/L lower than the previous value, or < 70 g/L [P].

    "Previous" is the Hb just before it, baseline included. The latest post-T0 result that meets the rule
    is reported. Not suppressed by a transfusion: §3.6 names only A-H2, A-H3 and A-H4.
    """
    if ctx.t0 is None:
        return None
    series = _series(results, "hemoglobin")
    for index in range(len(series) - 1, -1, -1):
        result = series[index]
        if result.collected_on <= ctx.t0:
            break
        previous = series[index - 1] if index > 0 else None
        reason = _hb_falling(result, previous, settings)
        if reason:
            return Finding(
                kind="hemoglobin_falling",
                rule_id="A-H5",
                severity="critical",
                message=f"Hb falling on treatment: {result.value} g/L on day {_day(result, ctx.t0)}, {reason} (A-H5).",
                action_text=HB_ACTION_TEXT,
                evidence=_evidence(
                    result, ctx.t0, previous=None if previous is None else str(_dec(previous.value)), reason=reason
                ),
            )
    return None


def a_h6_mcv_not_normalized(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-H6 (MEDIUM): day 56 ± 7 MCV above the ULN (default 100 fL)."""
    if ctx.t0 is None:
        return None
    window = _in_window(results, "mcv", ctx.t0, settings.a_h6_window)
    if not window or not _above_uln(window[-1], ctx):
        return None
    latest = window[-1]
    uln = _limits(latest, ctx)[1]
    return Finding(
        kind="mcv_not_normalized",
        rule_id="A-H6",
        severity="medium",
        message=f"MCV not normalising: {latest.value} fL on day {_day(latest, ctx.t0)} is above the ULN {uln} (A-H6).",
        action_text=HB_ACTION_TEXT,
        evidence=_evidence(latest, ctx.t0, uln=uln),
    )


def a_h7_hb_refractory(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-H7 (HIGH): day 90 ± 14 Hb still below the LLN. Not transfusion-suppressed (§3.6 lists A-H2..A-H4)."""
    if ctx.t0 is None:
        return None
    low = _hb_below_lln_in_window(results, ctx, settings.a_h7_window)
    if low is None:
        return None
    lln = _limits(low, ctx)[0]
    return Finding(
        kind="hemoglobin_refractory",
        rule_id="A-H7",
        severity="high",
        message=f"Refractory at 3 months: Hb {low.value} g/L on day {_day(low, ctx.t0)} is below the LLN {lln} (A-H7).",
        action_text=HB_ACTION_TEXT,
        evidence=_evidence(low, ctx.t0, lln=lln),
    )


# --- §3.4 platelet rules ----------------------------------------------------------------------------


def _platelet_baseline(results: tuple[Result, ...], ctx: PatientContext) -> Result | None:
    """The baseline platelet count when §3.4 applies (baseline below LLN), else None."""
    if ctx.t0 is None:
        return None
    base = baseline(results, "platelets", ctx.t0)
    if base is None or not _below_lln(base, ctx):
        return None
    return base


def a_p1_platelets_not_rising(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-P1 (MEDIUM, HIGH if still < 50): day 7-10 platelets <= baseline [P]."""
    base = _platelet_baseline(results, ctx)
    if base is None or ctx.t0 is None:
        return None
    window = _in_window(results, "platelets", ctx.t0, settings.a_p1_window)
    if not window or _dec(window[-1].value) > _dec(base.value):
        return None
    latest = window[-1]
    severity: Severity = "high" if _dec(latest.value) < settings.a_p1_high_below else "medium"
    return Finding(
        kind="platelets_not_rising",
        rule_id="A-P1",
        severity=severity,
        message=(
            f"Platelets not rising: {latest.value} x10^9/L on day {_day(latest, ctx.t0)}, baseline {base.value} (A-P1)."
        ),
        action_text=PLATELET_ACTION_TEXT,
        evidence=_evidence(latest, ctx.t0, baseline=_dec(base.value), baseline_on=base.collected_on.isoformat()),
    )


def _platelets_below_lln(
    results: tuple[Result, ...], ctx: PatientContext, window: Window, rule_id: str, label: str
) -> Finding | None:
    base = _platelet_baseline(results, ctx)
    if base is None or ctx.t0 is None:
        return None
    window_results = _in_window(results, "platelets", ctx.t0, window)
    if not window_results or not _below_lln(window_results[-1], ctx):
        return None
    latest = window_results[-1]
    lln = _limits(latest, ctx)[0]
    return Finding(
        kind="platelets_not_normalized",
        rule_id=rule_id,
        severity="high",
        message=(f"{label}: {latest.value} x10^9/L on day {_day(latest, ctx.t0)} is below the LLN {lln} ({rule_id})."),
        action_text=PLATELET_ACTION_TEXT,
        evidence=_evidence(latest, ctx.t0, lln=lln, baseline=_dec(base.value)),
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


def _platelets_falling(result: Result, previous: Result | None, settings: RuleSettings) -> str | None:
    value = _dec(result.value)
    if value < settings.a_p3_floor:
        return f"below {settings.a_p3_floor} x10^9/L"
    if previous is not None and _dec(previous.value) > 0:
        fall = (_dec(previous.value) - value) / _dec(previous.value)
        if fall >= settings.a_p3_fall_fraction:
            return f"a fall of {fall * 100:.0f}% from the previous {previous.value} x10^9/L"
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
    series = _series(results, "platelets")
    for index in range(len(series) - 1, -1, -1):
        result = series[index]
        if result.collected_on <= ctx.t0:
            break
        previous = series[index - 1] if index > 0 else None
        reason = _platelets_falling(result, previous, settings)
        if reason:
            return Finding(
                kind="platelets_critical",
                rule_id="A-P3",
                severity="critical",
                message=(
                    f"Platelets falling or very low: {result.value} x10^9/L on day {_day(result, ctx.t0)}, "
                    f"{reason} (A-P3)."
                ),
                action_text=PLATELET_CRITICAL_ACTION_TEXT,
                evidence=_evidence(
                    result, ctx.t0, previous=None if previous is None else str(_dec(previous.value)), reason=reason
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
    high = [r for r in _post_t0(results, "platelets", ctx.t0) if _above_uln(r, ctx)]
    if not high:
        return None
    latest = high[-1]
    uln = _limits(latest, ctx)[1]
    return Finding(
        kind="platelets_rebound",
        rule_id="A-P5",
        severity="info",
        message=(
            f"Rebound thrombocytosis: {latest.value} x10^9/L on day {_day(latest, ctx.t0)} is above the ULN {uln} "
            "(A-P5)."
        ),
        action_text=PLATELET_REBOUND_ACTION_TEXT,
        evidence=_evidence(latest, ctx.t0, uln=uln),
    )


# --- §3.5 LDH rules ---------------------------------------------------------------------------------


def a_l1_ldh_not_falling(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-L1 (HIGH): baseline LDH > 2 x ULN and the day 7 ± 2 LDH fall < 50 % from baseline [P]."""
    if ctx.t0 is None:
        return None
    base = baseline(results, "ldh", ctx.t0)
    if base is None:
        return None
    base_uln = _limits(base, ctx)[1]
    base_value = _dec(base.value)
    if base_uln is None or not base_value > settings.a_l1_baseline_uln_multiple * base_uln or base_value <= 0:
        return None
    window = _in_window(results, "ldh", ctx.t0, settings.a_l1_window)
    if not window:
        return None
    latest = window[-1]
    fall = (base_value - _dec(latest.value)) / base_value
    if fall >= settings.a_l1_min_fall_fraction:
        return None
    return Finding(
        kind="ldh_not_falling",
        rule_id="A-L1",
        severity="high",
        message=(
            f"LDH not falling: {latest.value} U/L on day {_day(latest, ctx.t0)} is {fall * 100:.0f}% below the "
            f"baseline {base.value} U/L (expected at least {settings.a_l1_min_fall_fraction * 100:.0f}%) (A-L1)."
        ),
        action_text=LDH_ACTION_TEXT,
        evidence=_evidence(latest, ctx.t0, baseline=base_value, baseline_uln=base_uln, fall_fraction=fall),
    )


def a_l2_ldh_not_normalized(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> Finding | None:
    """A-L2 (MEDIUM): day 28 ± 4 LDH above the ULN [P]. No baseline needed."""
    if ctx.t0 is None:
        return None
    window = _in_window(results, "ldh", ctx.t0, settings.a_l2_window)
    if not window or not _above_uln(window[-1], ctx):
        return None
    latest = window[-1]
    uln = _limits(latest, ctx)[1]
    return Finding(
        kind="ldh_not_normalized",
        rule_id="A-L2",
        severity="medium",
        message=f"LDH not normal: {latest.value} U/L on day {_day(latest, ctx.t0)} is above the ULN {uln} (A-L2).",
        action_text=LDH_ACTION_TEXT,
        evidence=_evidence(latest, ctx.t0, uln=uln),
    )


# --- §3.6 closing, transfusion, and the whole evaluation -------------------------------------------


def resolved_kinds(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> set[str]:
    """Kinds whose target the LATEST post-T0 result of the analyte now meets (§3.6 auto-resolve).

    Decisions where RULES gives only the A-P2 example:
    - hemoglobin_slow_rise, hemoglobin_not_normalized, hemoglobin_refractory: latest Hb >= LLN, ignoring an
      Hb drawn within the post-transfusion period (it shows the transfusion, not the response).
    - hemoglobin_falling: latest Hb >= 70 and not >= 20 lower than the one before (A-H5 no longer met).
    - mcv_not_normalized: latest MCV <= ULN. ldh_not_falling, ldh_not_normalized: latest LDH <= ULN.
    - platelets_not_normalized: latest platelets >= LLN. platelets_not_rising: latest > baseline.
    - platelets_critical: latest >= 20 and not a >= 30 % fall. platelets_rebound: latest <= ULN.
    - no_reticulocyte_response never auto-resolves: its window is over, so a clinician closes it.
    """
    if ctx.t0 is None:
        return set()
    t0 = ctx.t0
    resolved: set[str] = set()

    def latest_two(analyte: str) -> tuple[Result | None, Result | None]:
        series = _series(results, analyte)
        if not series or series[-1].collected_on <= t0:
            return None, None
        return series[-1], (series[-2] if len(series) > 1 else None)

    hb, hb_previous = latest_two("hemoglobin")
    if hb is not None and _hb_falling(hb, hb_previous, settings) is None:
        resolved.add("hemoglobin_falling")
    # A transfused Hb does not show that the treatment worked (§3.6), so it closes no "not normal" alert.
    interpretable_hb = _post_t0(_interpretable_hb(results, ctx, settings), "hemoglobin", t0)
    if interpretable_hb and _below_lln(interpretable_hb[-1], ctx) is False:
        resolved |= {"hemoglobin_slow_rise", "hemoglobin_not_normalized", "hemoglobin_refractory"}
    mcv, _ = latest_two("mcv")
    if mcv is not None and _above_uln(mcv, ctx) is False:
        resolved.add("mcv_not_normalized")
    ldh, _ = latest_two("ldh")
    if ldh is not None and _above_uln(ldh, ctx) is False:
        resolved |= {"ldh_not_falling", "ldh_not_normalized"}
    plt, plt_previous = latest_two("platelets")
    if plt is not None:
        if _below_lln(plt, ctx) is False:
            resolved.add("platelets_not_normalized")
        base = baseline(results, "platelets", t0)
        if base is not None and _dec(plt.value) > _dec(base.value):
            resolved.add("platelets_not_rising")
        if _platelets_falling(plt, plt_previous, settings) is None:
            resolved.add("platelets_critical")
        if _above_uln(plt, ctx) is False:
            resolved.add("platelets_rebound")
    return resolved


def transfusion_note(
    results: tuple[Result, ...], ctx: PatientContext, settings: RuleSettings = DEFAULT_SETTINGS
) -> str | None:
    """§3.6 INFO note "post-transfusion: Hb response not interpretable", when the latest post-T0 Hb was drawn
    within the suppression period after a transfusion (so A-H2/A-H3/A-H4 are not judged on it).
    Not a Finding: the note has no alert kind in the "Alert kinds" table."""
    if ctx.t0 is None:
        return None
    post = _post_t0(results, "hemoglobin", ctx.t0)
    if post and _after_transfusion(post[-1], ctx, settings) is not None:
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
    if _SEVERITY_ORDER[second.severity] >= _SEVERITY_ORDER[first.severity]:
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
