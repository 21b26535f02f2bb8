"""The schedule engine: protocol + start date + clinic calendar + what happened -> the plan.

Pure and deterministic: it imports nothing from Django (only the pure tracker.clock) and
touches no database. The ORM layer (regimens/services/planning.py) translates rows into these
frozen dataclasses and the plan back into rows. Every rule here is from RULES, first section
("Scheduling semantics", "Lab-recheck plan") and §2; the citations are next to the code that
implements them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta

from tracker import clock

DAILY = "daily"
ALTERNATE_DAYS = "alternate_days"
TIMES_PER_WEEK = "times_per_week"
EVERY_N_DAYS = "every_n_days"
EVERY_N_WEEKS = "every_n_weeks"
MONTHLY = "monthly"
SPACINGS = (DAILY, ALTERNATE_DAYS, TIMES_PER_WEEK, EVERY_N_DAYS, EVERY_N_WEEKS, MONTHLY)

FIXED_COUNT = "fixed_count"
FIXED_DURATION = "fixed_duration"
CLINICIAN_ENDED = "clinician_ended"
UNTIL_CAUSE_RESOLVED = "until_cause_resolved"
LIFELONG = "lifelong"
OPEN_ENDED = (CLINICIAN_ENDED, UNTIL_CAUSE_RESOLVED)

# RULES §10 V-5: ending the neurological loading phase (R-UK-2) needs at least one loading dose given, and a
# reason when fewer than this many were given (the count of R-UK-1's loading course, NHS-PT "two weeks").
NEURO_LOADING_DOSES_WITHOUT_REASON = 6


def is_neuro_loading(*, end_condition: str, review_every_days: int | None, self_administered: bool = False) -> bool:
    """The open-ended neurological loading phase (R-UK-2, §1.3): clinician-ended, with review prompts, given in
    clinic. Takes the phase's fields so the engine's PhaseSpec, a ProtocolPhase and a snapshot dict all fit."""
    return end_condition == CLINICIAN_ENDED and bool(review_every_days) and not self_administered


GIVEN = "given"
NOT_GIVEN = "not_given"
PLANNED = "planned"


class ScheduleError(ValueError):
    """Input the engine cannot plan from; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- Inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseSpec:
    key: str
    name: str
    drug: str
    dose_mcg: int
    route: str
    spacing: str
    spacing_value: int = 1
    end_condition: str = LIFELONG
    end_value: int | None = None
    dose_unit: str = "mcg"
    start_gate: str = ""
    review_every_days: int | None = None
    self_administered: bool = False


@dataclass(frozen=True)
class RecheckStepSpec:
    """A protocol-specific recheck, `day` days after T0."""

    rule: str
    day: int
    analytes: tuple[str, ...]
    window_before: int = 0
    window_after: int = 0
    note: str = ""


@dataclass(frozen=True)
class ProtocolSpec:
    code: str
    phases: tuple[PhaseSpec, ...]
    recheck_steps: tuple[RecheckStepSpec, ...] = ()


@dataclass(frozen=True)
class ClinicCalendar:
    # RULES: the default clinic calendar is Monday–Friday with no closed dates.
    open_weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    closed_dates: frozenset[date] = frozenset()

    def is_open(self, day: date) -> bool:
        return day.weekday() in self.open_weekdays and day not in self.closed_dates

    def next_open(self, day: date) -> date:
        """`day` itself if the clinic is open then, else the next open day."""
        if not self.open_weekdays:
            raise ScheduleError("open_weekdays", "the clinic has no open weekday")
        # Bounded: more than a year of consecutive closed dates is a data error, not a plan.
        for _ in range(400):
            if self.is_open(day):
                return day
            day += timedelta(days=1)
        raise ScheduleError("closed_dates", f"the clinic has no open day for more than a year after {day}")


@dataclass(frozen=True)
class DoseRecord:
    """What actually happened to one dose slot (phase_index, sequence)."""

    phase_index: int
    sequence: int
    status: str  # GIVEN or NOT_GIVEN
    on: date  # the local date it was given, or the day it was recorded as not given
    due_date: date | None = None
    reason: str = ""


@dataclass(frozen=True)
class HeldDose:
    """A planned dose whose due date has passed (RULES §10 V-11): it keeps that date and stays overdue,
    whatever the clinic calendar says now, as long as the spacing rule still allows it (a dose given late
    before it moves it on, as any later dose)."""

    phase_index: int
    sequence: int
    due_date: date


# RULES R-UK-4: a clinician shortened the interval of a phase on a day (Decision.kind).
INTERVAL_SHORTENED = "interval_shortened"


@dataclass(frozen=True)
class Decision:
    """A clinician decision: 'end_phase' (no further improvement), 'confirm_gate', or 'interval_shortened'
    (R-UK-4: the phase's spacing was shortened on `on`; the new value is in the regimen's options)."""

    phase_index: int
    kind: str
    on: date


@dataclass(frozen=True)
class Enrolment:
    """A patient already on treatment elsewhere joins at `phase_index`."""

    phase_index: int
    last_dose_date: date
    doses_given_in_phase: int = 0


@dataclass(frozen=True)
class LabContext:
    """What the baseline and follow-up results say, reduced to the flags §2 plans from.

    Computed by the monitoring layer (monitoring.inputs.lab_context) from the results and
    reference ranges; the engine only reads the flags.
    """

    has_baseline: bool = False
    hb_low: bool = False  # baseline Hb below the sex-specific LLN (L-6)
    hb_severe: bool = False  # baseline Hb < 80 g/L: potassium within 48 h (L-1, S-9)
    retics_low: bool = False  # baseline reticulocytes low (L-3, with hb_low)
    platelets_low: bool = False  # baseline platelets < LLN 150 x10^9/L (L-4)
    platelets_very_low: bool = False  # baseline < 50 x10^9/L or pseudo-TMA pattern (L-4b from T0)
    hemolysis_abnormal: bool = False  # LDH, indirect bilirubin or haptoglobin abnormal (L-5)
    cbc_abnormal: bool = False  # baseline Hb, MCV or platelets outside range (L-7)
    pregnant: bool = False  # L-8 review after 1 month instead of 3
    breastfeeding: bool = False  # L-8 too (RULES §10 V-10)
    irreversible_cause: bool = False  # L-12 annual review
    platelets_normal_on: date | None = None  # first follow-up with platelets >= LLN (ends L-4)
    platelets_rising_on: date | None = None  # first follow-up with platelets rising (ends L-4b)
    hemolysis_normal_on: date | None = None  # first follow-up with markers normal (ends L-5)
    # L-4b after T0 (when the baseline did not start it): the day of the first follow-up result with platelets
    # < 50 x10^9/L or the pseudo-TMA pattern (S-3), and the first later count above the count it rests on.
    platelets_very_low_from: date | None = None
    platelets_very_low_rising_on: date | None = None


@dataclass(frozen=True)
class Horizons:
    # RULES "Scheduling semantics": lifelong phases at least 12 months ahead, clinician-ended
    # phases 14 days ahead. Conditional rechecks (weekly platelets, 24-72 h platelets, LDH every
    # 2 weeks) are planned this many days ahead and extended by the same periodic task.
    lifelong_months: int = 12
    clinician_ended_days: int = 14
    conditional_recheck_days: int = 14


@dataclass(frozen=True)
class RecheckTimes:
    """The [P] timepoints of the lab-recheck plan (RULES §2), each a setting with RULES' number as its default
    (settings.COBALT RECHECK_*, tracker/settings/cobalt_rechecks.py; passed in by regimens/services/planning.py).
    Days count from T0; `*_plus_minus_days` is the half-width of a window (day 14 ± 2 is days 12-16). A series
    "until normal" plans its fixed days, then one every `*_every_days` from the last fixed day, and stops at the
    first window that opens after the follow-up result that ends it (a fixed day too, except L-5's first, which is
    always planned, as L-4's first window is)."""

    # L-4, "frequency is [P]": days 7-10 (due on the first), then day 14 ± 2, then weekly (± 2) until >= LLN.
    l4_first_window: tuple[int, int] = (7, 10)
    l4_at_days: tuple[int, ...] = (14,)
    l4_every_days: int = 7
    l4_plus_minus_days: int = 2
    # L-4b [P]: every 24-72 h until rising: due every 2 days ± 1, from day 2 (from the day of the follow-up
    # result that started it, when the baseline did not).
    l4b_every_days: int = 2
    l4b_plus_minus_days: int = 1
    # L-5, "interval is [P]": day 7 ± 2 and day 14 ± 2, then every 2 weeks (± 2) until normal.
    l5_at_days: tuple[int, ...] = (7, 14)
    l5_every_days: int = 14
    l5_plus_minus_days: int = 2
    # L-6, "timepoints are [P]": day 14 ± 3 and day 28 ± 3.
    l6_at_days: tuple[int, ...] = (14, 28)
    l6_plus_minus_days: int = 3
    # L-12 [P]: the annual review, on each anniversary of T0 (of the start date for an enrolled regimen, which has
    # no T0), ± 30 days (Cobalt's window; RULES gives none).
    l12_every_years: int = 1
    l12_plus_minus_days: int = 30

    def problems(self) -> list[str]:
        """What makes these times unplannable, one sentence each, naming the field (empty when fine): every
        window opens after T0 (day 0 is the pre-dose baseline), fixed days rise, intervals are at least 1."""
        out: list[str] = []
        first, last = self.l4_first_window if len(self.l4_first_window) == 2 else (0, -1)
        if not 1 <= first <= last:
            out.append(f"l4_first_window {self.l4_first_window!r} is not two days 'first,last', 1 <= first <= last")
        for name in ("l4", "l4b", "l5", "l6", "l12"):
            plus_minus = getattr(self, f"{name}_plus_minus_days")
            if plus_minus < 0:
                out.append(f"{name}_plus_minus_days {plus_minus} is negative")
        intervals = {
            "l4_every_days": self.l4_every_days,
            "l4b_every_days": self.l4b_every_days,
            "l5_every_days": self.l5_every_days,
            "l12_every_years": self.l12_every_years,
        }
        out.extend(f"{name} {every} is less than 1" for name, every in intervals.items() if every < 1)
        if self.l4b_every_days - self.l4b_plus_minus_days < 1:
            out.append("l4b: the first window (day l4b_every_days - l4b_plus_minus_days) opens on or before T0")
        if self.l12_plus_minus_days >= 365 * max(self.l12_every_years, 1) // 2:
            out.append("l12_plus_minus_days: the windows of two annual reviews overlap")
        for name in ("l4", "l5", "l6"):
            days: tuple[int, ...] = getattr(self, f"{name}_at_days")
            plus_minus = getattr(self, f"{name}_plus_minus_days")
            if not days:
                out.append(f"{name}_at_days is empty")
            elif list(days) != sorted(set(days)):
                out.append(f"{name}_at_days {list(days)} do not rise")
            elif days[0] - plus_minus < 1:
                out.append(f"{name}_at_days: the window of day {days[0]} ± {plus_minus} opens on or before T0")
        if self.l4_at_days and self.l4_at_days[0] <= first:
            out.append(f"l4_at_days {list(self.l4_at_days)} must come after the first window's first day {first}")
        return out


@dataclass(frozen=True)
class PlanInput:
    protocol: ProtocolSpec
    start_date: date
    today: date  # "as of", as a local date in the patient's time zone
    calendar: ClinicCalendar = field(default_factory=ClinicCalendar)
    records: tuple[DoseRecord, ...] = ()
    decisions: tuple[Decision, ...] = ()
    enrolment: Enrolment | None = None
    held: tuple[HeldDose, ...] = ()
    labs: LabContext = field(default_factory=LabContext)
    horizons: Horizons = field(default_factory=Horizons)
    recheck_times: RecheckTimes = field(default_factory=RecheckTimes)


# --- Outputs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedDose:
    phase_index: int
    phase: str
    sequence: int
    due_date: date
    drug: str
    dose_mcg: int
    dose_unit: str
    route: str
    self_administered: bool
    status: str = PLANNED
    recorded_on: date | None = None
    reason: str = ""


@dataclass(frozen=True)
class PlannedRecheck:
    rule: str
    key: str
    due_date: date
    window_start: date
    window_end: date
    analytes: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class ReviewPrompt:
    """§1.3: a clinician review of an open-ended phase is due."""

    phase_index: int
    phase: str
    due_date: date


@dataclass(frozen=True)
class Plan:
    doses: tuple[PlannedDose, ...]
    rechecks: tuple[PlannedRecheck, ...]
    reviews: tuple[ReviewPrompt, ...]
    current_phase: int
    complete: bool
    awaiting_gate: int | None
    t0: date | None
    extend_on: date | None  # the day the periodic task must re-plan to keep the horizons
    labs: LabContext = field(default_factory=LabContext)  # the lab flags the recheck plan followed (inp.labs)

    @property
    def planned(self) -> tuple[PlannedDose, ...]:
        return tuple(d for d in self.doses if d.status == PLANNED)


# --- Time ---------------------------------------------------------------------------------


def local_date(instant: datetime, tz: str) -> date:
    """tracker.clock.local_date, refusing a naive time as bad engine input (ScheduleError)."""
    try:
        return clock.local_date(instant, tz)
    except clock.NaiveTimeError as exc:
        raise ScheduleError("instant", str(exc)) from exc


# --- Spacing ------------------------------------------------------------------------------


def add_interval(day: date, phase: PhaseSpec) -> date:
    """`day` plus one interval of `phase` (RULES "Spacing rules")."""
    n = phase.spacing_value
    if phase.spacing == DAILY:
        return day + timedelta(days=1)
    if phase.spacing in (ALTERNATE_DAYS, TIMES_PER_WEEK):
        # Both are "at least 2 days apart"; times_per_week is also capped per week (below).
        return day + timedelta(days=2)
    if phase.spacing == EVERY_N_DAYS:
        return day + timedelta(days=n)
    if phase.spacing == EVERY_N_WEEKS:
        return day + timedelta(days=7 * n)
    if phase.spacing == MONTHLY:
        # relativedelta clamps: 31 January + 1 month is the last day of February.
        return day + relativedelta(months=n)
    raise ScheduleError("spacing", f"unknown spacing rule '{phase.spacing}'")


def mean_daily_mcg(phase: PhaseSpec) -> float:
    """The phase's dose averaged per day (RULES R-ORAL-1 and NG239 speak of mcg a day): a daily phase gives
    its dose; others their dose over one interval (a calendar month counted as 365/12 days)."""
    n = phase.spacing_value
    days = {
        DAILY: 1.0,
        ALTERNATE_DAYS: 2.0,
        TIMES_PER_WEEK: 7 / max(n, 1),
        EVERY_N_DAYS: float(n),
        EVERY_N_WEEKS: 7.0 * n,
        MONTHLY: 365 / 12 * n,
    }.get(phase.spacing)
    if days is None:
        raise ScheduleError("spacing", f"unknown spacing rule '{phase.spacing}'")
    return phase.dose_mcg / days


def _week(day: date) -> date:
    """The Monday of `day`'s Monday–Sunday week."""
    return day - timedelta(days=day.weekday())


def _place(candidate: date, phase: PhaseSpec, calendar: ClinicCalendar, per_week: Counter[date]) -> date:
    """Move `candidate` to the first day the dose may be given: an open clinic day (unless the
    phase is self-administered) in a week that still has room under `times_per_week`."""
    for _ in range(60):
        day = candidate if phase.self_administered else calendar.next_open(candidate)
        if phase.spacing != TIMES_PER_WEEK or per_week[_week(day)] < phase.spacing_value:
            return day
        candidate = _week(day) + timedelta(days=7)
    raise ScheduleError("calendar", "no day with room for the dose within 60 weeks")


# --- Doses --------------------------------------------------------------------------------


def plan(inp: PlanInput) -> Plan:
    """The whole plan: doses (given, not given and planned), rechecks and review prompts."""
    phases = inp.protocol.phases
    if not phases:
        raise ScheduleError("protocol", "the protocol has no phases")
    calendar = inp.calendar
    anchor = max(inp.today, inp.start_date)
    horizon_for = {
        LIFELONG: anchor + relativedelta(months=inp.horizons.lifelong_months),
        CLINICIAN_ENDED: anchor + timedelta(days=inp.horizons.clinician_ended_days),
        UNTIL_CAUSE_RESOLVED: anchor + timedelta(days=inp.horizons.clinician_ended_days),
    }

    records: dict[tuple[int, int], list[DoseRecord]] = {}
    # A total order, so the plan does not depend on the order the records come in.
    for record in sorted(inp.records, key=lambda r: (r.on, r.status == GIVEN, r.reason, r.due_date or r.on)):
        records.setdefault((record.phase_index, record.sequence), []).append(record)
    # A decision recorded twice counts from the first time it was made.
    ended: dict[int, date] = {}
    gates: dict[int, date] = {}
    # R-UK-4: the latest day a phase's interval was shortened. A dose the shorter interval brings forward is
    # planned no earlier than that day: due on the day of the decision (or the next open day), never overdue
    # for days before the clinician made it.
    shortened: dict[int, date] = {}
    for decision in sorted(inp.decisions, key=lambda d: d.on, reverse=True):
        if decision.kind == "end_phase":
            ended[decision.phase_index] = decision.on
        elif decision.kind == "confirm_gate":
            gates[decision.phase_index] = decision.on
        elif decision.kind == INTERVAL_SHORTENED:
            shortened.setdefault(decision.phase_index, decision.on)

    # RULES §10 V-11: only doses due today or later are re-planned; one due before today keeps its date.
    held = {(h.phase_index, h.sequence): h.due_date for h in inp.held if h.due_date < inp.today}
    doses: list[PlannedDose] = []
    reviews: list[ReviewPrompt] = []
    previous: date | None = None
    first_phase = 0
    if inp.enrolment is not None:
        if not 0 <= inp.enrolment.phase_index < len(phases):
            raise ScheduleError("enrol.phase", "no such phase in the protocol")
        first_phase = inp.enrolment.phase_index
        previous = inp.enrolment.last_dose_date
    # The first dose after an enrolment is one interval after the last dose given elsewhere, but
    # never before the regimen starts: a long gap means a dose due now, not a pile of overdue ones.
    enrolled = inp.enrolment is not None
    current: int | None = None
    awaiting_gate: int | None = None
    extend_on: date | None = None  # when the periodic task must plan further ahead

    for index in range(first_phase, len(phases)):
        phase = phases[index]
        if phase.start_gate and index not in gates:
            # RULES R-US-1: the next phase starts only after a clinician confirms the gate.
            awaiting_gate = index
            current = index if current is None else current
            break
        horizon = horizon_for.get(phase.end_condition)
        if phase.end_condition in OPEN_ENDED and index in ended:
            horizon = None  # ended by the clinician: only what was given stays
        sequence = 0
        if inp.enrolment is not None and index == first_phase:
            sequence = inp.enrolment.doses_given_in_phase
        given_in_phase = sequence
        per_week: Counter[date] = Counter()
        phase_first: date | None = None
        beyond_horizon: date | None = None
        while True:
            sequence += 1
            if phase.end_condition == FIXED_COUNT and sequence > (phase.end_value or 0):
                break
            slot = records.get((index, sequence), [])
            given = next((r for r in slot if r.status == GIVEN), None)
            not_given = [r for r in slot if r.status == NOT_GIVEN]
            for record in not_given:
                doses.append(_dose(phase, index, sequence, record.due_date or record.on, NOT_GIVEN, record))
            if given is not None:
                day = given.on
                given_in_phase += 1
            else:
                if phase.end_condition in OPEN_ENDED and index in ended:
                    break
                # The first dose is due on the start date; each next one is one interval after the
                # previous dose as given (or as planned, if not yet given); the first dose of a
                # phase is one interval of that phase after the last dose of the previous phase.
                candidate = inp.start_date if previous is None else add_interval(previous, phase)
                if enrolled:
                    candidate = max(candidate, inp.start_date)
                if sequence == 1 and phase.start_gate:
                    candidate = max(candidate, gates[index])
                if not_given:
                    # A replacement for a dose not given: the first day after it that also
                    # respects the spacing rule.
                    candidate = max(candidate, not_given[-1].on + timedelta(days=1))
                kept = held.get((index, sequence))
                if kept is not None and kept >= candidate:
                    day = kept
                else:
                    if index in shortened:
                        candidate = max(candidate, shortened[index])
                    day = _place(candidate, phase, calendar, per_week)
                if (
                    phase.end_condition == FIXED_DURATION
                    and phase_first is not None
                    and day >= phase_first + timedelta(days=phase.end_value or 0)
                ):
                    break
                if horizon is not None and day > horizon:
                    beyond_horizon = day
                    break
            phase_first = phase_first or day
            per_week[_week(day)] += 1
            if given is not None:
                doses.append(_dose(phase, index, sequence, given.due_date or day, GIVEN, given))
            else:
                doses.append(_dose(phase, index, sequence, day, PLANNED))
            previous = day
            enrolled = False

        if phase.review_every_days and phase_first is not None:
            # §1.3: a review prompt every N days while the open-ended phase runs.
            last_day = ended.get(index, horizon_for[CLINICIAN_ENDED])
            review = phase_first + timedelta(days=phase.review_every_days)
            while review <= last_day:
                reviews.append(ReviewPrompt(index, phase.key, review))
                review += timedelta(days=phase.review_every_days)

        if phase.end_condition == FIXED_COUNT:
            done = given_in_phase >= (phase.end_value or 0)
        elif phase.end_condition == FIXED_DURATION:
            done = phase_first is not None and all(d.status != PLANNED for d in doses if d.phase_index == index)
        elif phase.end_condition in OPEN_ENDED:
            done = index in ended
        else:
            done = False
        if not done and current is None:
            current = index
        if beyond_horizon is not None:
            # Plan further when the first dose not yet planned comes within the horizon.
            lead = (horizon or anchor) - anchor
            extend_on = beyond_horizon - lead
            break
        if phase.end_condition == LIFELONG or (phase.end_condition in OPEN_ENDED and not done):
            break  # nothing after an open-ended or lifelong phase can be planned yet

    t0 = _t0(doses, inp)
    rechecks: tuple[PlannedRecheck, ...] = ()
    recheck_extend: date | None = None
    if t0 is not None:
        rechecks, recheck_extend = plan_rechecks(inp, t0, horizon_for[LIFELONG])
    elif inp.enrolment is not None:
        # RULES §10 V-1: an enrolled regimen has no T0; L-12 still applies, from the start date (D-ENROL-L12).
        rechecks, recheck_extend = plan_enrolment_rechecks(inp, horizon_for[LIFELONG])
    if recheck_extend is not None:
        extend_on = recheck_extend if extend_on is None else min(extend_on, recheck_extend)
    return Plan(
        doses=tuple(doses),
        rechecks=rechecks,
        reviews=tuple(reviews),
        current_phase=current if current is not None else len(phases) - 1,
        complete=current is None,
        awaiting_gate=awaiting_gate,
        t0=t0,
        extend_on=extend_on,
        labs=inp.labs,
    )


def _dose(
    phase: PhaseSpec, index: int, sequence: int, due: date, status: str, record: DoseRecord | None = None
) -> PlannedDose:
    return PlannedDose(
        phase_index=index,
        phase=phase.key,
        sequence=sequence,
        due_date=due,
        drug=phase.drug,
        dose_mcg=phase.dose_mcg,
        dose_unit=phase.dose_unit,
        route=phase.route,
        self_administered=phase.self_administered,
        status=status,
        recorded_on=record.on if record else None,
        reason=record.reason if record else "",
    )


def _t0(doses: list[PlannedDose], inp: PlanInput) -> date | None:
    """T0 is the date of the first B12 dose (RULES §2): as given, else as planned. Patients
    enrolled mid-treatment have no T0 here; their initial rechecks happened elsewhere."""
    if inp.enrolment is not None:
        return None
    first = [d for d in doses if d.phase_index == 0 and d.sequence == 1 and d.status != NOT_GIVEN]
    if first:
        return first[0].due_date if first[0].status == PLANNED else first[0].recorded_on
    return None


# --- Lab rechecks -------------------------------------------------------------------------

HB = ("hemoglobin",)
CBC = ("hemoglobin", "mcv", "platelets")
HEMOLYSIS = ("ldh", "bilirubin_indirect", "haptoglobin")


def _horizon_reaches(day: date, months: int) -> date:
    """The first day from which a horizon `months` ahead covers `day` (month arithmetic is not reversible at the
    ends of months: one day at a time after the first guess)."""
    first = day - relativedelta(months=months)
    while first + relativedelta(months=months) < day:
        first += timedelta(days=1)
    return first


def plan_rechecks(inp: PlanInput, t0: date, until: date) -> tuple[tuple[PlannedRecheck, ...], date | None]:
    """The lab-recheck plan of RULES §2 from T0 and the baseline flags, and the day it must
    be extended (for the repeating rechecks that run "until normal")."""
    labs = inp.labs
    out: list[PlannedRecheck] = []
    lead = timedelta(days=inp.horizons.conditional_recheck_days)
    horizon = max(inp.today, t0) + lead
    extend: list[date] = []

    def add(rule: str, day: int, before: int, after: int, analytes: tuple[str, ...], text: str) -> None:
        due = t0 + timedelta(days=day)
        out.append(
            PlannedRecheck(
                rule=rule,
                key=f"{rule}@{day}",
                due_date=due,
                window_start=due - timedelta(days=before),
                window_end=due + timedelta(days=after),
                analytes=analytes,
                description=text,
            )
        )

    def repeating(
        rule: str,
        first_day: int,
        every: int,
        stop_on: date | None,
        plus_minus: int,
        analytes: tuple[str, ...],
        text: str,
    ) -> None:
        day = first_day
        while True:
            opens = t0 + timedelta(days=day - plus_minus)
            if stop_on is not None and opens > stop_on:
                return
            if opens > horizon:
                extend.append(opens - lead)
                return
            add(rule, day, plus_minus, plus_minus, analytes, text)
            day += every

    def until_normal(
        rule: str,
        at_days: tuple[int, ...],
        every: int,
        plus_minus: int,
        stop_on: date | None,
        analytes: tuple[str, ...],
        text: str,
        every_text: str,
        keep_first: bool = False,
    ) -> None:
        """The fixed days (`text`, "day N"), then one every `every` days from the last of them (`every_text`),
        ± `plus_minus`; none whose window opens after `stop_on` (the follow-up result that ends the series), but
        the first fixed day when `keep_first`."""
        for index, day in enumerate(at_days):
            ended = stop_on is not None and t0 + timedelta(days=day - plus_minus) > stop_on
            if ended and not (keep_first and index == 0):
                return
            add(rule, day, plus_minus, plus_minus, analytes, f"{text}, day {day}")
        repeating(rule, at_days[-1] + every, every, stop_on, plus_minus, analytes, every_text)

    no_baseline = not labs.has_baseline
    if labs.hb_severe:
        # L-1 / S-9 [P]: Hb < 80 g/L at T0 -> serum potassium within the first 48 h.
        add("L-1", 0, 0, 2, ("potassium",), "Serum potassium within 48 hours of the first dose")
    if labs.hb_low and labs.retics_low:
        # L-3: reticulocytes (+ CBC) on days 7-10.
        add("L-3", 7, 0, 3, ("reticulocytes_pct", *CBC), "Reticulocytes and full blood count, days 7-10")
    times = inp.recheck_times
    if labs.platelets_low:
        # L-4: days 7-10, day 14 ± 2, then weekly until >= 150 x10^9/L (frequency is [P]: RecheckTimes).
        first, last = times.l4_first_window
        add("L-4", first, 0, last - first, ("platelets",), f"Platelet count, days {first}-{last}")
        every = times.l4_every_days
        weekly = "Weekly platelet count" if every == 7 else f"Platelet count every {every} days"
        normal_on = labs.platelets_normal_on
        plus_minus = times.l4_plus_minus_days
        until_normal("L-4", times.l4_at_days, every, plus_minus, normal_on, ("platelets",), "Platelet count", weekly)
    # L-4b [P]: platelets + Hb + LDH every 24-72 h until rising: due every 2 days, ±1 day (RecheckTimes). From T0
    # when the baseline started it; else from the day of the follow-up result that started it, until a later count
    # is above the count that result rests on.
    l4b: tuple[int, date | None] | None = None
    if labs.platelets_very_low:
        l4b = (0, labs.platelets_rising_on)
    elif labs.platelets_very_low_from is not None and labs.platelets_very_low_from > t0:
        l4b = ((labs.platelets_very_low_from - t0).days, labs.platelets_very_low_rising_on)
    if l4b is not None:
        every, plus_minus = times.l4b_every_days, times.l4b_plus_minus_days
        text = "Platelets, Hb and LDH every 24-72 hours until rising"
        start, rising_on = l4b
        repeating("L-4b", start + every, every, rising_on, plus_minus, ("platelets", "hemoglobin", "ldh"), text)
    if labs.hemolysis_abnormal:
        # L-5: day 7 ± 2 and day 14 ± 2, then every 2 weeks until normal (interval is [P]: RecheckTimes).
        every, plus_minus = times.l5_every_days, times.l5_plus_minus_days
        markers = "LDH, indirect bilirubin and haptoglobin"
        repeat = f"{markers} every {'2 weeks' if every == 14 else f'{every} days'} until normal"
        # The first (day 7) is planned whatever the follow-up results, as the first L-4 window is.
        normal_on = labs.hemolysis_normal_on
        until_normal("L-5", times.l5_at_days, every, plus_minus, normal_on, HEMOLYSIS, markers, repeat, keep_first=True)
    if no_baseline or labs.hb_low:
        # L-6 [P timepoints]: Hb on day 14 ± 3 and day 28 ± 3 (RecheckTimes).
        for day in times.l6_at_days:
            add("L-6", day, times.l6_plus_minus_days, times.l6_plus_minus_days, HB, f"Hemoglobin, day {day}")
    if no_baseline or labs.cbc_abnormal:
        # L-7: week 8 (day 56 ± 7) CBC + reticulocytes.
        add("L-7", 56, 7, 7, (*CBC, "reticulocytes_pct"), "Full blood count and reticulocytes, week 8")
    # L-8: clinical review at month 3 (after 1 month if pregnant or breastfeeding, NG239; V-10); CBC if it
    # was abnormal.
    months = 1 if (labs.pregnant or labs.breastfeeding) else 3
    review_day = (t0 + relativedelta(months=months) - t0).days
    # The ±14-day window is the A-H7 "day 90 ± 14" window, the only one RULES gives near month 3.
    add(
        "L-8",
        review_day,
        14,
        14,
        CBC if (no_baseline or labs.cbc_abnormal) else (),
        "Clinical review of symptoms" + (" and full blood count" if (no_baseline or labs.cbc_abnormal) else ""),
    )
    if labs.irreversible_cause:
        annual, next_review = _annual_reviews(inp, t0, until)
        out.extend(annual)
        extend.append(next_review)
    for step in inp.protocol.recheck_steps:
        add(step.rule, step.day, step.window_before, step.window_after, step.analytes, step.note or step.rule)
    return tuple(sorted(out, key=lambda r: (r.due_date, r.rule))), min(extend, default=None)


def _annual_reviews(inp: PlanInput, anchor: date, until: date) -> tuple[list[PlannedRecheck], date]:
    """L-12 [P]: the annual clinical review ± CBC for irreversible causes, on each anniversary of `anchor` (T0;
    the start date of an enrolled regimen) up to `until` (the lifelong horizon), ± the setting (RecheckTimes:
    every year, ± 30 days); and the day the lifelong horizon reaches the next one (the periodic task re-plans
    then). Keys are "L-12@<days from the anchor>"."""
    times = inp.recheck_times
    year, plus_minus = times.l12_every_years, times.l12_plus_minus_days
    text = "Annual review" if year == 1 else f"Review every {year} years"
    text += " and full blood count"
    out: list[PlannedRecheck] = []
    while anchor + relativedelta(years=year) <= until:
        due = anchor + relativedelta(years=year)
        out.append(
            PlannedRecheck(
                rule="L-12",
                key=f"L-12@{(due - anchor).days}",
                due_date=due,
                window_start=due - timedelta(days=plus_minus),
                window_end=due + timedelta(days=plus_minus),
                analytes=CBC,
                description=text,
            )
        )
        year += times.l12_every_years
    return out, _horizon_reaches(anchor + relativedelta(years=year), inp.horizons.lifelong_months)


def plan_enrolment_rechecks(inp: PlanInput, until: date) -> tuple[tuple[PlannedRecheck, ...], date | None]:
    """The recheck plan of a regimen entered by enrolment (RULES §10 V-1: no T0, no response windows): only L-12
    for an irreversible cause, anchored at the regimen's start date (the enrolment date) since the first dose ever
    was given elsewhere. L-8 and L-11 count from the start of treatment and are not planned (decision D-ENROL-L12)."""
    if not inp.labs.irreversible_cause:
        return (), None
    annual, next_review = _annual_reviews(inp, inp.start_date, until)
    return tuple(sorted(annual, key=lambda r: (r.due_date, r.rule))), next_review


# --- Options --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseLimits:
    """What a clinician may set per phase without giving an override reason."""

    dose_mcg: tuple[int | None, int | None] = (None, None)
    spacing_value: tuple[int | None, int | None] = (None, None)
    count: tuple[int | None, int | None] = (None, None)


OVERRIDABLE = ("dose_mcg", "spacing_value", "count")


def apply_options(
    protocol: ProtocolSpec,
    options: dict[str, Any],
    limits: dict[str, PhaseLimits] | None = None,
    max_factor: int | None = None,
    min_reason_length: int = 1,
) -> ProtocolSpec:
    """The protocol with the per-phase options applied, e.g.
    {"phases": {"maintenance": {"spacing_value": 10}}, "override_reason": "..."}.

    A value inside the protocol's range (for example 8-13 weeks for hydroxo-uk-standard
    maintenance, RULES R-UK-3a) needs no reason; a value outside it is a clinician
    override and needs `override_reason` (RULES §1.1: record overrides with a reason) of at least
    `min_reason_length` characters. With `max_factor`, even an override stays within the range widened
    by that factor (low / factor to high × factor): a dose of 5,000,000 mcg or 20,000 doses is a typo,
    not a clinical decision (issue 12; the factor is a setting awaiting clinical sign-off).
    """
    limits = limits or {}
    if not isinstance(options, dict):
        raise ScheduleError("options", "must be an object")
    unknown = set(options) - {"phases", "override_reason", "enrol"}
    if unknown:
        raise ScheduleError(f"options.{sorted(unknown)[0]}", "unknown option")
    phase_options = options.get("phases") or {}
    if not isinstance(phase_options, dict):
        raise ScheduleError("options.phases", "must be an object keyed by phase")
    reason = str(options.get("override_reason") or "").strip()
    by_key = {p.key: p for p in protocol.phases}
    new_phases = list(protocol.phases)
    for key, values in phase_options.items():
        if key not in by_key:
            raise ScheduleError(f"options.phases.{key}", f"no phase '{key}'; phases are {', '.join(by_key)}")
        if not isinstance(values, dict):
            raise ScheduleError(f"options.phases.{key}", "must be an object")
        phase = by_key[key]
        changes: dict[str, Any] = {}
        for name, value in values.items():
            where = f"options.phases.{key}.{name}"
            if name not in OVERRIDABLE:
                raise ScheduleError(where, f"cannot be changed; use one of {', '.join(OVERRIDABLE)}")
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ScheduleError(where, "must be a whole number of at least 1")
            if name == "count" and phase.end_condition != FIXED_COUNT:
                raise ScheduleError(where, "this phase does not end after a number of doses")
            if name == "spacing_value" and phase.spacing in (DAILY, ALTERNATE_DAYS):
                raise ScheduleError(where, f"'{phase.spacing}' spacing takes no number")
            low, high = getattr(limits.get(key, PhaseLimits()), name)
            if low is None and high is None:
                # No range in the protocol: its own value is the only one that needs no reason
                # (RULES §1.1: a clinician can override any number, with a reason).
                low = high = phase.end_value if name == "count" else getattr(phase, name)
            outside = (low is not None and value < low) or (high is not None and value > high)
            if outside and not reason:
                bounds = f"{low}-{high}"
                raise ScheduleError(
                    where, f"{value} is outside the protocol's range {bounds}; give override_reason to override"
                )
            if outside and len(reason) < min_reason_length:
                raise ScheduleError(
                    "options.override_reason",
                    f"say why in at least {min_reason_length} characters: it is kept on the regimen",
                )
            if outside and max_factor is not None:
                floor = max(1, -(-low // max_factor)) if low is not None else 1
                ceiling = (high if high is not None else low or 1) * max_factor
                if not floor <= value <= ceiling:
                    raise ScheduleError(
                        where,
                        f"{value} is beyond what an override may set: {floor}-{ceiling} "
                        f"(the protocol's range {low}-{high} widened {max_factor}-fold)",
                    )
            changes["end_value" if name == "count" else name] = value
        new_phases[protocol.phases.index(phase)] = replace(phase, **changes)
    return replace(protocol, phases=tuple(new_phases))
