"""What every response rule shares: settings, inputs, findings and the window and limit helpers.

Pure: no Django, no database, no clock. A caller passes the patient's results
and context and gets back `Finding`s; turning them into stored alerts (one open alert per kind,
acknowledgement, notifications) is the service layer's job.

Conventions and the decisions taken where RULES leaves room (each is also noted where it is applied):

- Units are canonical (patients/labs/analytes.py): hemoglobin g/L, platelets 10^9/L, mcv fL,
  reticulocytes_pct %, reticulocytes_abs 10^9/L, hematocrit L/L, ldh U/L.
- T0 is the first dose date of the patient's current regimen (RULES §10 V-1; regimens/selectors.py
  regimen_t0) and Day = (collected_on - T0).days. Without a T0 no rule can place a result in a window, so
  every rule returns None. A restart or a switch gets a new T0, so a new baseline and new windows.
- A regimen entered by enrolment at maintenance (`PatientContext.enrolled`) has no response windows
  (V-1): only A-H5 and A-P3 judge its results.
- Baseline (§2 "the most recent result before T0") is the latest result collected ON OR BEFORE T0.
  Results carry a date, not a time, and the pre-dose sample is usually drawn on the day of the first dose
  (§2: "take samples ... before starting replacement"); a day-0 result is therefore a baseline, and
  "post-T0" means day 1 or later.
- Limits (§3.2 "Lab limits"): the result's own ref_low/ref_high when present, otherwise
  `default_range(analyte, sex, age, pregnant)` (§5.2). Limits are inclusive: a value exactly at the LLN or
  ULN is normal (reference_ranges.ReferenceRange).
- Windows are inclusive: "day 14 ± 3" is days 11..17. When several results fall inside a window, the
  latest one is judged (it is the current state of the patient), except A-H1 (see there).
- Results outside windows (V-8, `judged_results`): when a window had no result of its analyte, the results
  after it closed and before the next window of the same analyte opens are judged by its rule (a day-70
  Hb below the LLN fires A-H4, whose window is 49-63). With no next window (A-H6, A-H7, A-P4, A-L2) every
  later result counts. A-H1 is not extended (see there).
- Results on the same date keep the order they were given in (the sort is stable).
- `evaluate` returns what should be open now: at most one Finding per kind (§3.6), and not a kind that
  `resolved_kinds` says a later result has already closed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal, cast

from patients.labs.analytes import format_value
from patients.labs.reference_ranges import HEMOGLOBIN_CRITICAL_LOW, PLATELETS_CRITICAL_LOW, Sex, normal_limits

Severity = Literal["info", "medium", "high", "critical"]
SEVERITY_ORDER: dict[str, int] = {"info": 0, "medium": 1, "high": 2, "critical": 3}


# RULES §3.6: the INFO note shown instead of A-H2/A-H3/A-H4 after a transfusion.
TRANSFUSION_NOTE = "post-transfusion: Hb response not interpretable"

Window = tuple[int, int]


@dataclass(frozen=True)
class RuleSettings:
    """Every number of the rules that RULES marks [P] (proposal), with its proposed default, so the
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
    a_h5_floor: Decimal = HEMOGLOBIN_CRITICAL_LOW  # the critical limit results are interpreted by, too
    # A-H6: day 56 ± 7 (§3.3; the MCV threshold is the ULN, default 100 fL, [P]).
    a_h6_window: Window = (49, 63)
    # A-H7: day 90 ± 14 (§3.3 [S]).
    a_h7_window: Window = (76, 104)
    # A-P1: day 7-10 [P]; HIGH if still < 50 x10^9/L [P].
    a_p1_window: Window = (7, 10)
    a_p1_high_below: Decimal = Decimal(50)
    # A-P2: day 14 ± 2 [P].
    a_p2_window: Window = (12, 16)
    # A-P3: any post-T0 platelets < 20 x10^9/L, or a fall >= 30 % from the previous value to below the LLN
    # (RULES §10 V-4) [P].
    a_p3_floor: Decimal = PLATELETS_CRITICAL_LOW  # the critical limit results are interpreted by, too
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
    # S-9 / L-1 [P]: baseline Hb below this (g/L) -> serum potassium within 48 h of the first dose.
    potassium_check_hb_below: Decimal = Decimal(80)
    # S-6(a) [P]: neurological symptoms recorded and no B12 dose within this many hours -> HIGH.
    neuro_treatment_delay_hours: int = 24
    # S-3 (§10 V-7) [P]: the Hb, platelet and haemolysis inputs are collected within this many days of each
    # other (the first and last of them at most this many calendar days apart).
    s3_inputs_within_days: int = 7


DEFAULT_SETTINGS = RuleSettings()


@dataclass(frozen=True)
class Result:
    """One lab result in its analyte's canonical unit; ref_low/ref_high are the reporting lab's range."""

    analyte: str
    value: Decimal | float
    collected_on: date
    ref_low: float | Decimal | None = None
    ref_high: float | Decimal | None = None

    @property
    def shown(self) -> str:
        """The value for people (alert texts): no exponent, no trailing zeros, the analyte's decimals."""
        return fmt(self.value, self.analyte)


@dataclass(frozen=True)
class PatientContext:
    sex: str
    age: int
    pregnant: bool = False
    t0: date | None = None
    transfusions: tuple[date, ...] = ()
    # RULES §10 V-1: the current regimen was entered by enrolment at maintenance (treated elsewhere before):
    # no response windows; A-H5 and A-P3 still apply.
    enrolled: bool = False
    # RULES §10 V-4 (A-P3): the blood films reported, oldest first: (collected_on, schistocytes present).
    schistocytes: tuple[tuple[date, bool], ...] = ()


@dataclass(frozen=True)
class Finding:
    kind: str
    rule_id: str
    severity: Severity
    message: str
    action_text: str
    evidence: dict[str, Any] = field(default_factory=dict)


# --- helpers ---------------------------------------------------------------------------------------


def dec(value: Decimal | float | int) -> Decimal:
    # str() first so a float 0.1 becomes Decimal("0.1"), not its binary expansion.
    return value if isinstance(value, Decimal) else Decimal(str(value))


def limits_of(result: Result, ctx: PatientContext) -> tuple[Decimal | None, Decimal | None]:
    """(LLN, ULN) for this result: the lab's own limit when given, else the §5.2 default (§3.2)."""
    return normal_limits(result.analyte, result.ref_low, result.ref_high, cast(Sex, ctx.sex), ctx.age, ctx.pregnant)


def below_lln(result: Result, ctx: PatientContext) -> bool | None:
    """True/False, or None when no LLN is known (then a rule that needs one cannot fire)."""
    low, _ = limits_of(result, ctx)
    return None if low is None else dec(result.value) < low


def above_uln(result: Result, ctx: PatientContext) -> bool | None:
    _, high = limits_of(result, ctx)
    return None if high is None else dec(result.value) > high


def series_of(results: Iterable[Result], analyte: str) -> list[Result]:
    # Stable sort: same-day results keep the caller's order.
    return sorted((r for r in results if r.analyte == analyte), key=lambda r: r.collected_on)


@dataclass(frozen=True)
class Fall:
    """Where a falling rule (A-H5, A-P3's counts) holds in a series: `met` is the latest post-T0 result that meets
    it on its own (`reason` why), `latest` the result that carries it now: `met`, or the last of the results after
    it that each went lower than all before them since `met` (RULES §10 V-3: "a further fall" is new evidence of the
    same problem, never its end)."""

    met: int
    latest: int
    reason: str

    def further(self) -> bool:
        return self.latest != self.met

    def reported(self, series: Sequence[Result], t0: date, unit: str) -> tuple[Result, str, dict[str, Any]]:
        """The result the finding reports, why, and its evidence (with the value just before it)."""
        met, result = series[self.met], series[self.latest]
        reason = self.reason
        if self.further():
            reason = f"a further fall after {met.shown} {unit} on day {day_of(met, t0)} ({self.reason})"
        previous = series[self.latest - 1] if self.latest > 0 else None
        evidence = evidence_of(
            result, t0, previous=None if previous is None else str(dec(previous.value)), reason=reason
        )
        return result, reason, evidence


def falling(
    results: Iterable[Result], analyte: str, t0: date | None, meets: Callable[[Result, Result | None], str | None]
) -> tuple[list[Result], Fall] | None:
    """The Fall of `analyte`'s series (in date order) under `meets(result, previous)`, with that series; None
    without T0 or a post-T0 result that meets it."""
    if t0 is None:
        return None
    series = series_of(results, analyte)
    for index in range(len(series) - 1, -1, -1):
        result = series[index]
        if result.collected_on <= t0:
            return None
        reason = meets(result, series[index - 1] if index > 0 else None)
        if reason:
            lowest = index
            for later in range(index + 1, len(series)):
                if dec(series[later].value) < dec(series[lowest].value):
                    lowest = later
            return series, Fall(met=index, latest=lowest, reason=reason)
    return None


def day_of(result: Result, t0: date) -> int:
    return (result.collected_on - t0).days


def baseline(results: Iterable[Result], analyte: str, t0: date) -> Result | None:
    """The latest result of `analyte` on or before T0 (module docstring: day 0 counts as baseline)."""
    before = [r for r in series_of(results, analyte) if r.collected_on <= t0]
    return before[-1] if before else None


def post_t0(results: Iterable[Result], analyte: str, t0: date) -> list[Result]:
    return [r for r in series_of(results, analyte) if r.collected_on > t0]


def in_window(results: Iterable[Result], analyte: str, t0: date, window: Window) -> list[Result]:
    first, last = window
    return [r for r in series_of(results, analyte) if first <= day_of(r, t0) <= last]


def judged_results(
    results: Iterable[Result], analyte: str, t0: date, window: Window, next_opens: int | None
) -> tuple[list[Result], bool]:
    """The results a window rule judges, and whether they were taken late (RULES §10 V-8).

    The results inside `window`; if there are none, the results taken after the window closed and before
    the next window of the same analyte opens on day `next_opens` (None: no next window, every later result).
    """
    inside = in_window(results, analyte, t0, window)
    if inside:
        return inside, False
    last = window[1]
    late = [
        r
        for r in series_of(results, analyte)
        if day_of(r, t0) > last and (next_opens is None or day_of(r, t0) < next_opens)
    ]
    return late, bool(late)


def late_note(late: bool, window: Window) -> str:
    """The message suffix of a finding judged on a result after its window (V-8)."""
    return f" Judged late: no result in days {window[0]}-{window[1]} (RULES V-8)." if late else ""


def late_evidence(late: bool, window: Window) -> dict[str, Any]:
    """Evidence keys of a finding judged on a result after its window (V-8); nothing when on time."""
    return {"judged_late": True, "missed_window": f"{window[0]}-{window[1]}"} if late else {}


def after_transfusion(result: Result, ctx: PatientContext, settings: RuleSettings) -> date | None:
    """The transfusion that makes this Hb uninterpretable (§3.6), if any.

    A transfusion on the day of the sample up to `transfusion_suppression_days` days before it counts
    (inclusive, like every window here): a same-day transfusion may have preceded the sample.
    """
    hits = [t for t in ctx.transfusions if 0 <= (result.collected_on - t).days <= settings.transfusion_suppression_days]
    return max(hits) if hits else None


def interpretable_hb(results: Iterable[Result], ctx: PatientContext, settings: RuleSettings) -> tuple[Result, ...]:
    """Hb results minus those taken within the post-transfusion suppression period (§3.6).

    The suppressed results are ignored rather than the whole rule switched off: a result drawn before the
    transfusion in the same window still shows the response.
    """
    return tuple(r for r in results if r.analyte != "hemoglobin" or after_transfusion(r, ctx, settings) is None)


def evidence_of(result: Result, t0: date, **extra: Any) -> dict[str, Any]:
    # JSON-friendly: numbers as strings (exact Decimals), dates as ISO strings.
    evidence: dict[str, Any] = {
        "analyte": result.analyte,
        "value": str(dec(result.value)),
        "collected_on": result.collected_on.isoformat(),
        "day": day_of(result, t0),
    }
    for key, value in extra.items():
        evidence[key] = str(value) if isinstance(value, Decimal | float) else value
    return evidence


@dataclass(frozen=True)
class StoredResult:
    """A quantitative result as the rules see it, plus the row id for alert evidence."""

    id: int
    result: Result


def fmt(value: Decimal | float | None, analyte: str | None = None) -> str:
    """A value for people: no exponent, no trailing zeros (3000.000000 -> "3000", 0.350000 -> "0.35"), at most
    the analyte's display decimals when it is named (patients/labs/analytes.py format_value)."""
    return "unknown" if value is None else format_value(dec(value), analyte)


B12Reading = Literal["deficient", "indeterminate", "unlikely", "unknown"]


@dataclass(frozen=True)
class B12Verdict:
    """The patient's pre-treatment B12 status (§5.1, §10 V-7) as every view reads it: computed once by
    monitoring.selectors.pre_treatment_b12 (the latest total and active B12 before T0, each read with its
    reporting lab's cut-off set) and handed to the rules, the trends and /b12-status/.

    "unknown" = no usable pre-treatment B12 (S-3 reads it as "pending", which counts as low).
    """

    status: B12Reading = "unknown"
    cutoffs: str = ""
    result_ids: tuple[int, ...] = ()

    @property
    def low_or_pending(self) -> bool:
        """S-3: "low or pending" B12. Indeterminate counts as low (it needs confirming, §5.1)."""
        return self.status != "unlikely"


# RULES S-3 / L-4b / L-5: the haemolysis markers.
HEMOLYSIS_MARKERS = ("ldh", "bilirubin_indirect", "haptoglobin")


def hemolysis_abnormal(on: Iterable[Result], ctx: PatientContext) -> list[Result]:
    """The haemolysis markers among `on` that are abnormal: LDH or indirect bilirubin > ULN, haptoglobin < LLN."""
    return [
        r
        for r in on
        if (r.analyte in ("ldh", "bilirubin_indirect") and above_uln(r, ctx))
        or (r.analyte == "haptoglobin" and below_lln(r, ctx))
    ]
