"""Properties of the schedule engine that hold for any protocol, start date, clinic calendar and
history (RULES "Scheduling semantics"). No database.

A history is simulated the way the services build one: plan, act on the first planned dose (give
it early or late, or record it not given), let a clinician confirm a gate or end an open-ended
phase, and plan again.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regimens.protocol_data import PROTOCOLS
from regimens.schedule import (
    FIXED_COUNT,
    GIVEN,
    NOT_GIVEN,
    OPEN_ENDED,
    PLANNED,
    SPACINGS,
    TIMES_PER_WEEK,
    ClinicCalendar,
    Decision,
    DoseRecord,
    Enrolment,
    Horizons,
    PhaseSpec,
    Plan,
    PlanInput,
    PlannedDose,
    ProtocolSpec,
    add_interval,
    plan,
)
from tests.regimens.test_schedule import builtin

# A short lifelong horizon keeps daily lifelong phases small; the properties do not depend on it.
HORIZONS = Horizons(lifelong_months=3, clinician_ended_days=14)

SPECIAL_STARTS = [
    date(2027, 1, 31),
    date(2028, 1, 31),
    date(2028, 2, 29),
    date(2027, 2, 28),
    date(2026, 12, 31),
    date(2027, 12, 31),
    date(2027, 3, 28),
    date(2027, 10, 31),
    date(2024, 2, 29),
]


@st.composite
def synthetic_protocols(draw: st.DrawFn) -> ProtocolSpec:
    """One to three phases with any spacing; the last one lifelong or clinician-ended."""
    count = draw(st.integers(1, 3))
    phases = []
    for index in range(count):
        spacing = draw(st.sampled_from(SPACINGS))
        value = draw(st.integers(1, 5 if spacing == TIMES_PER_WEEK else 4))
        last = index == count - 1
        end = draw(st.sampled_from(["lifelong", "clinician_ended"])) if last else FIXED_COUNT
        phases.append(
            PhaseSpec(
                key=f"p{index}",
                name=f"Phase {index}",
                drug="cyanocobalamin",
                dose_mcg=1000,
                route="IM",
                spacing=spacing,
                spacing_value=value,
                end_condition=end,
                end_value=draw(st.integers(1, 8)) if end == FIXED_COUNT else None,
                start_gate="gate" if index and draw(st.booleans()) else "",
                self_administered=draw(st.booleans()),
            )
        )
    return ProtocolSpec("synthetic", tuple(phases))


protocols = st.one_of(st.sampled_from([p["code"] for p in PROTOCOLS]).map(builtin), synthetic_protocols())
starts = st.one_of(st.dates(date(2024, 1, 1), date(2030, 12, 31)), st.sampled_from(SPECIAL_STARTS))
actions = st.lists(
    st.one_of(
        st.tuples(st.just("give"), st.integers(-3, 6)),
        st.tuples(st.just("miss"), st.integers(0, 3)),
        st.tuples(st.just("decide"), st.integers(0, 4)),
    ),
    max_size=14,
)


@st.composite
def calendars(draw: st.DrawFn, start: date) -> ClinicCalendar:
    weekdays = draw(st.frozensets(st.integers(0, 6), min_size=1))
    offsets = draw(st.lists(st.integers(-5, 200), max_size=25))
    return ClinicCalendar(open_weekdays=weekdays, closed_dates=frozenset(start + timedelta(days=o) for o in offsets))


@st.composite
def enrolments(draw: st.DrawFn, protocol: ProtocolSpec, start: date) -> Enrolment | None:
    """Sometimes a patient already on treatment elsewhere, with their last dose up to 200 days ago."""
    if not draw(st.booleans()):
        return None
    index = draw(st.integers(0, len(protocol.phases) - 1))
    phase = protocol.phases[index]
    most = (phase.end_value or 1) - 1 if phase.end_condition == FIXED_COUNT else 10
    return Enrolment(
        phase_index=index,
        last_dose_date=start - timedelta(days=draw(st.integers(0, 200))),
        doses_given_in_phase=draw(st.integers(0, most)),
    )


def when(dose: PlannedDose) -> date:
    """The date a dose counts from: its administration date if given, else its due date."""
    return dose.recorded_on if dose.status == GIVEN and dose.recorded_on else dose.due_date


def simulate(
    protocol: ProtocolSpec,
    start: date,
    calendar: ClinicCalendar,
    steps: list[tuple[str, int]],
    enrolment: Enrolment | None = None,
) -> list[PlanInput]:
    """The plan inputs a regimen goes through as things happen; returns every one of them."""
    records: list[DoseRecord] = []
    decisions: list[Decision] = []
    today = start
    inputs = []

    def current() -> PlanInput:
        return PlanInput(
            protocol, start, today, calendar, tuple(records), tuple(decisions), enrolment, horizons=HORIZONS
        )

    for kind, shift in steps:
        inp = current()
        inputs.append(inp)
        p = plan(inp)
        last_event = max([r.on for r in records] + [d.on for d in decisions], default=None)
        if kind == "decide":
            phase = inp.protocol.phases[p.current_phase]
            given_here = [r.on for r in records if r.status == GIVEN and r.phase_index == p.current_phase]
            if p.awaiting_gate is not None:
                on = max(today, last_event or today) + timedelta(days=shift)
                decisions.append(Decision(p.awaiting_gate, "confirm_gate", on))
            elif phase.end_condition in OPEN_ENDED and given_here and not p.complete:
                on = max(given_here) + timedelta(days=shift)
                decisions.append(Decision(p.current_phase, "end_phase", on))
            else:
                continue
            today = max(today, on)
            continue
        if not p.planned:
            break
        slot = p.planned[0]
        if kind == "give":
            on = slot.due_date + timedelta(days=shift)
            if last_event is not None:
                # A dose is given after whatever happened before it.
                on = max(on, last_event + timedelta(days=1))
            records.append(DoseRecord(slot.phase_index, slot.sequence, GIVEN, on, slot.due_date))
        else:
            on = slot.due_date + timedelta(days=shift)
            if last_event is not None:
                on = max(on, last_event)
            records.append(DoseRecord(slot.phase_index, slot.sequence, NOT_GIVEN, on, slot.due_date, "refused"))
        today = max(today, on)
    inputs.append(current())
    return inputs


def check(inp: PlanInput, p: Plan) -> None:
    phases = inp.protocol.phases
    live = [d for d in p.doses if d.status != NOT_GIVEN]
    missed: dict[tuple[int, int], list[date]] = {}
    for d in p.doses:
        if d.status == NOT_GIVEN and d.recorded_on is not None:
            missed.setdefault((d.phase_index, d.sequence), []).append(d.recorded_on)

    # Planned doses never fall on a closed day (oral self-administered doses ignore the clinic).
    for d in p.planned:
        assert d.self_administered or inp.calendar.is_open(d.due_date), d

    # Slots come in order and their dates never go backwards.
    assert [(d.phase_index, d.sequence) for d in live] == sorted((d.phase_index, d.sequence) for d in live)
    for a, b in pairwise(live):
        assert when(a) <= when(b), (a, b)

    # A planned dose is at least one interval of its phase after the dose before it, after the start
    # date, and after the day a dose in its slot was not given.
    for prev, d in zip([None, *live], live, strict=False):
        if d.status != PLANNED:
            continue
        if prev is None:
            assert d.due_date >= inp.start_date
            if inp.enrolment is not None:
                enrolled = phases[inp.enrolment.phase_index]
                assert d.due_date >= add_interval(inp.enrolment.last_dose_date, enrolled)
        else:
            assert d.due_date >= add_interval(when(prev), phases[d.phase_index]), (prev, d)
        for missed_on in missed.get((d.phase_index, d.sequence), []):
            assert d.due_date > missed_on

    # times_per_week: no week holding a planned dose has more than N doses of that phase.
    for index, phase in enumerate(phases):
        if phase.spacing != TIMES_PER_WEEK:
            continue
        weeks = Counter(when(d) - timedelta(days=when(d).weekday()) for d in live if d.phase_index == index)
        for d in p.planned:
            if d.phase_index == index:
                assert weeks[d.due_date - timedelta(days=d.due_date.weekday())] <= phase.spacing_value

    # fixed_count phases have exactly N doses given or planned (not-given ones excluded) once
    # anything after them is planned, and never more.
    for index, phase in enumerate(phases):
        if phase.end_condition != FIXED_COUNT or (inp.enrolment and index < inp.enrolment.phase_index):
            continue  # phases before an enrolment happened elsewhere
        n = sum(1 for d in live if d.phase_index == index)
        if inp.enrolment is not None and inp.enrolment.phase_index == index:
            n += inp.enrolment.doses_given_in_phase
        assert n <= (phase.end_value or 0)
        later = any(d.phase_index > index for d in live) or (p.awaiting_gate or 0) > index
        if later:
            assert n == phase.end_value, (index, n)

    # Nothing is planned in or after a phase still waiting for its gate.
    if p.awaiting_gate is not None:
        assert all(d.phase_index < p.awaiting_gate for d in p.doses)

    # The periodic task is told to come back on a day still to come.
    if p.extend_on is not None:
        assert p.extend_on > inp.today


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), protocol=protocols, start=starts, steps=actions)
def test_it_keeps_every_scheduling_rule_for_any_protocol_calendar_and_history(
    data: Any, protocol: ProtocolSpec, start: date, steps: list[tuple[str, int]]
) -> None:
    calendar = data.draw(calendars(start))
    enrolment = data.draw(enrolments(protocol, start))

    for inp in simulate(protocol, start, calendar, steps, enrolment):
        check(inp, plan(inp))


@settings(max_examples=100, deadline=None)
@given(data=st.data(), protocol=protocols, start=starts, steps=actions, seed=st.integers(0, 2**16))
def test_it_plans_the_same_every_time_whatever_the_order_of_the_records(
    data: Any, protocol: ProtocolSpec, start: date, steps: list[tuple[str, int]], seed: int
) -> None:
    calendar = data.draw(calendars(start))
    inp = simulate(protocol, start, calendar, steps, data.draw(enrolments(protocol, start)))[-1]
    shuffled = list(inp.records)
    random.Random(seed).shuffle(shuffled)

    first = plan(inp)

    assert plan(inp) == first
    assert plan(PlanInput(**{**inp.__dict__, "records": tuple(shuffled)})) == first
