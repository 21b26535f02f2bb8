"""The pure schedule engine against RULES, first section ("Scheduling semantics", "Lab-recheck
plan"), §1.3 and §2. No database: plain functions over frozen dataclasses.

Every expected date below was worked out by hand from the rules (weekday facts: 2027-01-04 is a
Monday, 2027-01-31 a Sunday, 2028-02-29 a Tuesday), never by running the engine.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta

from regimens.protocol_data import PROTOCOLS
from regimens.schedule import (
    GIVEN,
    NOT_GIVEN,
    PLANNED,
    ClinicCalendar,
    Decision,
    DoseRecord,
    Enrolment,
    LabContext,
    PhaseLimits,
    PhaseSpec,
    Plan,
    PlanInput,
    ProtocolSpec,
    RecheckStepSpec,
    ScheduleError,
    _horizon_reaches,
    add_interval,
    apply_options,
    local_date,
    plan,
    plan_rechecks,
)

MON_FRI = ClinicCalendar()
EVERY_DAY = ClinicCalendar(open_weekdays=frozenset(range(7)))


def builtin(code: str) -> ProtocolSpec:
    """A built-in protocol of RULES "Protocol codes", straight from regimens/protocol_data."""
    data = next(p for p in PROTOCOLS if p["code"] == code)
    phases = tuple(
        PhaseSpec(
            key=p["key"],
            name=p["name"],
            drug=p["drug"],
            dose_mcg=p["dose_mcg"],
            route=p["route"],
            spacing=p["spacing"],
            spacing_value=p.get("spacing_value", 1),
            end_condition=p["end_condition"],
            end_value=p.get("end_value"),
            start_gate=p.get("start_gate", ""),
            review_every_days=p.get("review_every_days"),
            self_administered=p.get("self_administered", False),
        )
        for p in data["phases"]
    )
    steps = tuple(
        RecheckStepSpec(
            rule=s["rule"],
            day=s["day"],
            analytes=tuple(s["analytes"]),
            window_before=s["window_before"],
            window_after=s["window_after"],
            note=s["note"],
        )
        for s in data.get("recheck_steps", [])
    )
    return ProtocolSpec(code, phases, steps)


def builtin_limits(code: str) -> dict[str, PhaseLimits]:
    data = next(p for p in PROTOCOLS if p["code"] == code)
    return {
        p["key"]: PhaseLimits(
            dose_mcg=(p.get("dose_min_mcg"), p.get("dose_max_mcg")),
            spacing_value=(p.get("spacing_min"), p.get("spacing_max")),
            count=(p.get("end_min"), p.get("end_max")),
        )
        for p in data["phases"]
    }


def run(code: str | ProtocolSpec, start: date, today: date | None = None, **kwargs: Any) -> Plan:
    protocol = builtin(code) if isinstance(code, str) else code
    return plan(PlanInput(protocol=protocol, start_date=start, today=today or start, **kwargs))


def due(p: Plan, phase: str | None = None, status: str | None = PLANNED) -> list[date]:
    return [
        d.due_date for d in p.doses if (phase is None or d.phase == phase) and (status is None or d.status == status)
    ]


def given(phase_index: int, sequence: int, on: date, due_date: date | None = None) -> DoseRecord:
    return DoseRecord(phase_index, sequence, GIVEN, on, due_date or on)


def not_given(phase_index: int, sequence: int, on: date, reason: str = "did not attend") -> DoseRecord:
    return DoseRecord(phase_index, sequence, NOT_GIVEN, on, on, reason)


def jan(day: int) -> date:
    return date(2027, 1, day)


def phase_spec(spacing: str, value: int = 1, count: int = 6, **kwargs: Any) -> ProtocolSpec:
    phase = PhaseSpec(
        key="only",
        name="Only",
        drug="hydroxocobalamin",
        dose_mcg=1000,
        route="IM",
        spacing=spacing,
        spacing_value=value,
        end_condition="fixed_count",
        end_value=count,
        **kwargs,
    )
    return ProtocolSpec("test", (phase,))


# --- The RULES example and start days ------------------------------------------------------


def test_it_plans_the_rules_example_hydroxo_uk_standard_from_monday_4_january_2027() -> None:
    p = run("hydroxo-uk-standard", jan(4))

    assert due(p, "loading") == [jan(4), jan(6), jan(8), jan(11), jan(13), jan(15)]
    # First maintenance dose 12 weeks after the sixth loading dose (RULES example).
    assert due(p, "maintenance")[0] == date(2027, 4, 9)


def test_it_starts_on_a_thursday_and_waits_for_the_next_week_after_two_days() -> None:
    # Thu 7, then Sat 9 is closed -> Mon 11; Mon-Wed-Fri fills that week; Sun 17 -> Mon 18.
    p = run("hydroxo-uk-standard", jan(7))

    assert due(p, "loading") == [jan(7), jan(11), jan(13), jan(15), jan(18), jan(20)]
    assert due(p, "maintenance")[0] == jan(20) + timedelta(weeks=12) == date(2027, 4, 14)


def test_it_gives_the_first_dose_on_the_next_open_day_after_a_weekend_start() -> None:
    p = run("hydroxo-uk-standard", date(2027, 1, 2))  # a Saturday

    assert due(p, "loading") == [jan(4), jan(6), jan(8), jan(11), jan(13), jan(15)]


def test_it_moves_a_dose_off_a_closed_holiday_to_the_next_open_day() -> None:
    calendar = ClinicCalendar(closed_dates=frozenset({jan(6)}))

    p = run("hydroxo-uk-standard", jan(4), calendar=calendar)

    # Wed 6 closed -> Thu 7; Sat 9 -> Mon 11; 11, 13, 15 fill the week; Sun 17 -> Mon 18.
    assert due(p, "loading") == [jan(4), jan(7), jan(11), jan(13), jan(15), jan(18)]
    assert due(p, "maintenance")[0] == date(2027, 4, 12)


def test_it_moves_a_maintenance_dose_off_a_holiday_and_measures_the_next_from_the_moved_date() -> None:
    calendar = ClinicCalendar(closed_dates=frozenset({date(2027, 4, 9)}))

    p = run("hydroxo-uk-standard", jan(4), calendar=calendar)

    assert due(p, "maintenance")[:2] == [date(2027, 4, 12), date(2027, 4, 12) + timedelta(weeks=12)]


def test_it_never_plans_a_dose_on_a_closed_weekday_of_a_clinic_open_tuesday_to_thursday() -> None:
    calendar = ClinicCalendar(open_weekdays=frozenset({1, 2, 3}))

    p = run("hydroxo-uk-standard", jan(4), calendar=calendar)

    # Tue 5, Thu 7; Sat 9 -> Tue 12, Thu 14; Sat 16 -> Tue 19, Thu 21.
    assert due(p, "loading") == [jan(5), jan(7), jan(12), jan(14), jan(19), jan(21)]


# --- Spacing rules --------------------------------------------------------------------------


def test_it_caps_times_per_week_at_n_doses_in_one_monday_to_sunday_week() -> None:
    # Every day open: Thu 7, Sat 9, Mon 11, Wed 13, Fri 15; Sun 17 is 2 days on but the week of
    # 11 January already has 3 doses, so the sixth goes to Monday 18.
    p = run("hydroxo-uk-standard", jan(7), calendar=EVERY_DAY)

    assert due(p, "loading") == [jan(7), jan(9), jan(11), jan(13), jan(15), jan(18)]


def test_it_caps_twice_a_week_at_two_doses_per_week_at_least_two_days_apart() -> None:
    p = run(phase_spec("times_per_week", 2, count=5), jan(4), calendar=EVERY_DAY)

    assert due(p) == [jan(4), jan(6), jan(11), jan(13), jan(18)]


def test_it_counts_the_week_across_new_year_as_one_monday_to_sunday_week() -> None:
    # The week of Monday 28 December 2026 runs to Sunday 3 January 2027.
    p = run("hydroxo-uk-standard", date(2026, 12, 28), calendar=EVERY_DAY)

    assert due(p, "loading") == [date(2026, 12, 28), date(2026, 12, 30), jan(1), jan(4), jan(6), jan(8)]


def test_it_plans_daily_then_weekly_then_monthly_for_cyano_1000_us() -> None:
    p = run("cyano-1000-us", jan(4))

    assert due(p, "daily") == [jan(4), jan(5), jan(6), jan(7), jan(8), jan(11), jan(12)]
    # Weekly: the first one interval (7 days) after the last daily dose.
    assert due(p, "weekly") == [jan(19), jan(26), date(2027, 2, 2), date(2027, 2, 9)]
    # Monthly from 9 Feb; 9 May is a Sunday -> Mon 10 May; June measured from 10 May.
    assert due(p, "monthly")[:4] == [date(2027, 3, 9), date(2027, 4, 9), date(2027, 5, 10), date(2027, 6, 10)]


def test_it_plans_alternate_days_at_least_two_days_apart() -> None:
    p = run("hydroxo-uk-neuro", jan(4))

    assert due(p, "loading") == [jan(4), jan(6), jan(8), jan(11), jan(13), jan(15), jan(18)]


def test_it_plans_every_n_days_n_days_after_the_previous_dose() -> None:
    p = run(phase_spec("every_n_days", 3, count=4), jan(1), calendar=EVERY_DAY)

    assert due(p) == [jan(1), jan(4), jan(7), jan(10)]


def test_it_plans_every_n_weeks_as_seven_n_days() -> None:
    p = run(phase_spec("every_n_weeks", 2, count=3), jan(4))

    assert due(p) == [jan(4), jan(18), date(2027, 2, 1)]


def test_it_plans_monthly_from_31_january_on_the_last_day_of_february_then_from_that_dose() -> None:
    p = run("ileal-resection", date(2027, 1, 31), calendar=EVERY_DAY)

    # 31 Jan + 1 month -> 28 Feb (no 31 Feb); the next is measured from 28 Feb, not from 31 Jan.
    assert due(p)[:4] == [date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 28), date(2027, 4, 28)]


def test_it_plans_monthly_from_31_january_on_29_february_in_a_leap_year() -> None:
    p = run("ileal-resection", date(2028, 1, 31), calendar=EVERY_DAY)

    assert due(p)[:3] == [date(2028, 1, 31), date(2028, 2, 29), date(2028, 3, 29)]


def test_it_adds_twelve_months_to_29_february_as_28_february() -> None:
    monthly = builtin("ileal-resection").phases[0]

    assert add_interval(date(2028, 2, 29), monthly) == date(2028, 3, 29)
    assert add_interval(date(2028, 2, 29), PhaseSpec(**{**monthly.__dict__, "spacing_value": 12})) == date(2029, 2, 28)


def test_it_counts_every_n_weeks_across_29_february() -> None:
    p = run(phase_spec("every_n_weeks", 1, count=2), date(2028, 2, 25))  # a Friday

    assert due(p) == [date(2028, 2, 25), date(2028, 3, 3)]


def test_it_moves_a_dose_off_new_years_day_and_the_weekend() -> None:
    calendar = ClinicCalendar(closed_dates=frozenset({jan(1)}))

    p = run("cyano-1000-us", date(2026, 12, 31), calendar=calendar)

    # Thu 31 Dec, then Fri 1 Jan (closed), Sat, Sun -> Mon 4 Jan.
    assert due(p, "daily")[:3] == [date(2026, 12, 31), jan(4), jan(5)]


def test_it_lets_oral_daily_self_administered_doses_ignore_clinic_days() -> None:
    calendar = ClinicCalendar(closed_dates=frozenset({jan(4)}))

    p = run("bariatric-oral", date(2027, 1, 2), calendar=calendar)

    assert due(p)[:5] == [jan(2), jan(3), jan(4), jan(5), jan(6)]
    assert all(d.self_administered for d in p.doses)


# --- What happened drives the plan ----------------------------------------------------------


def test_it_replans_later_doses_from_the_actual_date_of_a_late_dose() -> None:
    p = run("hydroxo-uk-standard", jan(4), jan(7), records=(given(0, 1, jan(4)), given(0, 2, jan(7), jan(6))))

    # Given Thu 7 (due Wed 6): next 2 days later is Sat 9 -> Mon 11; 11, 13, 15; Sun 17 -> Mon 18.
    assert due(p, "loading") == [jan(11), jan(13), jan(15), jan(18)]
    assert due(p, "maintenance")[0] == date(2027, 4, 12)
    late = next(d for d in p.doses if d.sequence == 2 and d.phase == "loading")
    assert (late.status, late.due_date, late.recorded_on) == (GIVEN, jan(6), jan(7))


def test_it_replans_later_doses_from_the_actual_date_of_an_early_dose() -> None:
    p = run("hydroxo-uk-standard", jan(4), jan(5), records=(given(0, 1, jan(4)), given(0, 2, jan(5), jan(6))))

    # Given Tue 5: Thu 7 completes the week (4, 5, 7); Sat 9 -> Mon 11.
    assert due(p, "loading") == [jan(7), jan(11), jan(13), jan(15)]
    assert due(p, "maintenance")[0] == date(2027, 4, 9)


def test_it_keeps_a_dose_not_given_with_its_reason_and_plans_a_replacement_on_the_next_open_day() -> None:
    records = (given(0, 1, jan(4)), not_given(0, 2, jan(6), "did not attend"))

    p = run("hydroxo-uk-standard", jan(4), jan(6), records=records)

    missed = [d for d in p.doses if d.status == NOT_GIVEN]
    assert [(d.sequence, d.due_date, d.reason) for d in missed] == [(2, jan(6), "did not attend")]
    # Replacement: the first open day after Wed 6 is Thu 7; then Sat 9 -> Mon 11, 13, 15, Sun 17 -> 18.
    assert due(p, "loading") == [jan(7), jan(11), jan(13), jan(15), jan(18)]


def test_it_moves_the_replacement_of_a_dose_not_given_on_a_friday_to_monday() -> None:
    records = (given(0, 1, jan(4)), given(0, 2, jan(6)), not_given(0, 3, jan(8)))

    p = run("hydroxo-uk-standard", jan(4), jan(8), records=records)

    assert due(p, "loading")[0] == jan(11)


def test_it_plans_the_replacement_no_earlier_than_the_spacing_rule_allows() -> None:
    # Monthly: dose 2 is due Thu 4 Feb; on 20 Jan the clinician holds it. The first open day
    # after 20 Jan is 21 Jan, but a month after the dose given on 4 Jan is 4 Feb.
    records = (given(0, 1, jan(4)), not_given(0, 2, jan(20), "held"))

    p = run("ileal-resection", jan(4), jan(20), records=records)

    assert due(p)[0] == date(2027, 2, 4)


def test_it_counts_only_doses_given_towards_a_fixed_count_phase() -> None:
    records = (given(0, 1, jan(4)), not_given(0, 2, jan(6)), not_given(0, 2, jan(7)))

    p = run("hydroxo-uk-standard", jan(4), jan(7), records=records)

    loading = [d for d in p.doses if d.phase == "loading"]
    assert len([d for d in loading if d.status != NOT_GIVEN]) == 6
    assert len([d for d in loading if d.status == NOT_GIVEN]) == 2
    # Replacement after the second miss on Thu 7: Fri 8 (only 2 doses in that week), then Mon 11 ...
    assert due(p, "loading") == [jan(8), jan(11), jan(13), jan(15), jan(18)]


def test_it_does_not_move_an_overdue_planned_dose() -> None:
    p = run("hydroxo-uk-standard", jan(4), jan(12), records=(given(0, 1, jan(4)),))

    # RULES: a planned dose whose due date has passed is overdue until it is given or not given.
    assert due(p, "loading")[0] == jan(6)


# --- Phases, gates and clinician decisions ------------------------------------------------------


def test_it_plans_nothing_after_the_gate_of_cyano_us_label_until_a_clinician_confirms_it() -> None:
    p = run("cyano-us-label", jan(4))

    assert due(p, "daily") == [jan(4), jan(5), jan(6), jan(7), jan(8), jan(11), jan(12)]
    assert {d.phase for d in p.doses} == {"daily"}
    assert p.awaiting_gate == 1
    assert p.extend_on is None


def test_it_plans_the_rest_of_cyano_us_label_once_the_gate_is_confirmed() -> None:
    records = tuple(given(0, i + 1, d) for i, d in enumerate([jan(4), jan(5), jan(6), jan(7), jan(8), jan(11)]))
    decisions = (Decision(1, "confirm_gate", jan(11)),)

    p = run("cyano-us-label", jan(4), jan(11), records=records, decisions=decisions)

    assert p.awaiting_gate is None
    # Phase B: alternate days from the later of the gate (11) and 2 days after dose 7 (12 + 2).
    assert due(p, "alternate") == [jan(14), jan(18), jan(20), jan(22), jan(25), jan(27), jan(29)]
    # Phase C: every 3 days for 3 weeks (21 days from Mon 1 Feb): 1, 4, 7->8, 11, 14->15, 18;
    # 21 -> 22 Feb is day 21, outside the 3 weeks.
    assert due(p, "every-3-days") == [date(2027, 2, d) for d in (1, 4, 8, 11, 15, 18)]
    # Phase D: a month after the last dose of C; 18 April is a Sunday -> Monday 19.
    assert due(p, "monthly")[:3] == [date(2027, 3, 18), date(2027, 4, 19), date(2027, 5, 19)]


def test_it_starts_the_gated_phase_no_earlier_than_the_day_the_gate_was_confirmed() -> None:
    decisions = (Decision(1, "confirm_gate", jan(18)),)

    p = run("cyano-us-label", jan(4), jan(18), decisions=decisions)

    assert due(p, "alternate")[0] == jan(18)


def test_it_plans_the_neuro_loading_phase_14_days_ahead_with_a_review_prompt_every_14_days() -> None:
    p = run("hydroxo-uk-neuro", jan(4))

    assert due(p, "loading")[-1] <= jan(4) + timedelta(days=14)
    assert due(p, "maintenance") == []
    assert [r.due_date for r in p.reviews] == [jan(18)]
    # The next loading dose (Wed 20) must be planned by 6 January to stay 14 days ahead.
    assert p.extend_on == jan(6)


def test_it_keeps_prompting_neuro_reviews_every_14_days_while_the_phase_stays_open() -> None:
    p = run("hydroxo-uk-neuro", jan(4), date(2027, 2, 1))

    assert [r.due_date for r in p.reviews] == [jan(18), date(2027, 2, 1), date(2027, 2, 15)]
    assert due(p, "maintenance") == []


def test_it_plans_neuro_maintenance_56_days_after_the_last_loading_dose_given_when_the_clinician_ends_it() -> None:
    days = [jan(4), jan(6), jan(8), jan(11), jan(13), jan(15), jan(18), jan(20)]
    records = tuple(given(0, i + 1, d) for i, d in enumerate(days))
    decisions = (Decision(0, "end_phase", jan(20)),)

    p = run("hydroxo-uk-neuro", jan(4), jan(20), records=records, decisions=decisions)

    assert due(p, "loading") == []
    # §1.3: plateau_reached -> maintenance R-UK-3b, first dose 56 days after the last loading dose.
    assert due(p, "maintenance")[:2] == [date(2027, 3, 17), date(2027, 5, 12)]
    assert p.current_phase == 1


def test_it_plans_a_lifelong_phase_at_least_12_months_ahead_and_says_when_to_extend() -> None:
    p = run("ileal-resection", jan(4))

    planned = due(p)
    assert planned[-1] <= date(2028, 1, 4) < add_interval(planned[-1], builtin("ileal-resection").phases[0])
    assert p.extend_on is not None
    # Re-planning on extend_on keeps 12 months ahead of that day.
    later = run("ileal-resection", jan(4), p.extend_on)
    assert due(later)[-1] > planned[-1]
    next_missing = add_interval(due(later)[-1], builtin("ileal-resection").phases[0])
    assert next_missing > p.extend_on + timedelta(days=365)


def test_it_plans_hydroxo_uk_standard_maintenance_to_the_12_month_horizon() -> None:
    p = run("hydroxo-uk-standard", jan(4))

    # 9 Apr + 12 weeks each: 2 Jul, 24 Sep, 17 Dec; 10 Mar 2028 is beyond 4 Jan 2028.
    assert due(p, "maintenance") == [date(2027, 4, 9), date(2027, 7, 2), date(2027, 9, 24), date(2027, 12, 17)]
    # Extend when 10 March 2028 comes within 12 months (365 days before it, 2028 being a leap year).
    assert p.extend_on == date(2027, 3, 11)


def test_it_enrols_a_patient_already_on_maintenance_one_interval_after_their_last_dose() -> None:
    enrolment = Enrolment(phase_index=1, last_dose_date=date(2026, 12, 1))

    p = run("hydroxo-uk-standard", jan(4), enrolment=enrolment)

    assert due(p, "loading") == []
    assert due(p, "maintenance")[0] == date(2026, 12, 1) + timedelta(weeks=12) == date(2027, 2, 23)


def test_it_enrols_a_patient_part_way_through_loading_with_the_doses_already_given() -> None:
    enrolment = Enrolment(phase_index=0, last_dose_date=jan(4), doses_given_in_phase=4)

    p = run("hydroxo-uk-standard", jan(4), enrolment=enrolment)

    loading = [d for d in p.doses if d.phase == "loading"]
    assert [(d.sequence, d.due_date) for d in loading] == [(5, jan(6)), (6, jan(8))]


# --- Options ----------------------------------------------------------------------------------


def test_it_allows_maintenance_every_8_to_13_weeks_without_a_reason() -> None:
    spec = builtin("hydroxo-uk-standard")
    limits = builtin_limits("hydroxo-uk-standard")

    for weeks in (8, 13):
        options = {"phases": {"maintenance": {"spacing_value": weeks}}}
        changed = apply_options(spec, options, limits)
        p = run(changed, jan(4))
        assert due(p, "maintenance")[0] == jan(15) + timedelta(weeks=weeks)


@pytest.mark.parametrize("weeks", [7, 14])
def test_it_needs_an_override_reason_for_maintenance_outside_8_to_13_weeks(weeks: int) -> None:
    spec = builtin("hydroxo-uk-standard")
    limits = builtin_limits("hydroxo-uk-standard")
    options: dict[str, Any] = {"phases": {"maintenance": {"spacing_value": weeks}}}

    with pytest.raises(ScheduleError) as exc:
        apply_options(spec, options, limits)
    assert exc.value.field == "options.phases.maintenance.spacing_value"

    changed = apply_options(spec, {**options, "override_reason": "symptoms return early"}, limits)
    assert changed.phases[1].spacing_value == weeks


def test_it_needs_an_override_reason_to_change_a_number_the_protocol_gives_no_range_for() -> None:
    # RULES §1.1: a clinician can override any number; record overrides with a reason.
    spec = builtin("hydroxo-uk-standard")
    limits = builtin_limits("hydroxo-uk-standard")

    with pytest.raises(ScheduleError) as exc:
        apply_options(spec, {"phases": {"loading": {"count": 5}}}, limits)
    assert exc.value.field == "options.phases.loading.count"
    unchanged = apply_options(spec, {"phases": {"loading": {"count": 6}}}, limits)
    assert unchanged.phases[0].end_value == 6


def test_it_refuses_an_unknown_option_and_an_unknown_phase_naming_them() -> None:
    spec = builtin("hydroxo-uk-standard")

    with pytest.raises(ScheduleError) as exc:
        apply_options(spec, {"colour": "blue"})
    assert exc.value.field == "options.colour"
    with pytest.raises(ScheduleError) as exc:
        apply_options(spec, {"phases": {"booster": {"count": 2}}})
    assert exc.value.field == "options.phases.booster"


def test_it_refuses_a_number_for_a_spacing_that_has_none() -> None:
    spec = builtin("hydroxo-uk-neuro")

    with pytest.raises(ScheduleError) as exc:
        apply_options(spec, {"phases": {"loading": {"spacing_value": 3}}, "override_reason": "x"})
    assert exc.value.field == "options.phases.loading.spacing_value"


# --- Lab rechecks (RULES "Lab-recheck plan", §2) ---------------------------------------------


def rechecks(p: Plan) -> list[tuple[str, date, date, date, tuple[str, ...]]]:
    return [(r.rule, r.due_date, r.window_start, r.window_end, r.analytes) for r in p.rechecks]


def test_it_plans_l6_l7_and_l8_from_the_first_dose_when_there_is_no_baseline() -> None:
    p = run("hydroxo-uk-standard", jan(4))

    cbc = ("hemoglobin", "mcv", "platelets")
    assert p.t0 == jan(4)
    assert rechecks(p) == [
        ("L-6", jan(18), jan(15), jan(21), ("hemoglobin",)),  # day 14 ± 3
        ("L-6", date(2027, 2, 1), jan(29), date(2027, 2, 4), ("hemoglobin",)),  # day 28 ± 3
        ("L-7", date(2027, 3, 1), date(2027, 2, 22), date(2027, 3, 8), (*cbc, "reticulocytes_pct")),  # day 56 ± 7
        ("L-8", date(2027, 4, 4), date(2027, 3, 21), date(2027, 4, 18), cbc),  # month 3
    ]


def test_it_plans_rechecks_from_the_day_the_first_dose_was_actually_given() -> None:
    p = run("hydroxo-uk-standard", jan(4), jan(5), records=(given(0, 1, jan(5), jan(4)),))

    assert p.t0 == jan(5)
    assert p.rechecks[0].due_date == jan(19)


def test_it_plans_t0_from_the_replacement_when_the_first_dose_was_not_given() -> None:
    p = run("hydroxo-uk-standard", jan(4), jan(4), records=(not_given(0, 1, jan(4)),))

    assert p.t0 == jan(5)


def test_it_plans_potassium_within_48_hours_when_baseline_hb_is_below_80() -> None:
    labs = LabContext(has_baseline=True, hb_severe=True, hb_low=True)

    p = run("hydroxo-uk-standard", jan(4), labs=labs)

    l1 = [r for r in rechecks(p) if r[0] == "L-1"]
    assert l1 == [("L-1", jan(4), jan(4), jan(6), ("potassium",))]


def test_it_plans_reticulocytes_on_days_7_to_10_when_baseline_hb_and_reticulocytes_are_low() -> None:
    labs = LabContext(has_baseline=True, hb_low=True, retics_low=True)

    p = run("hydroxo-uk-standard", jan(4), labs=labs)

    l3 = [r for r in rechecks(p) if r[0] == "L-3"]
    assert [(r[1], r[2], r[3]) for r in l3] == [(jan(11), jan(11), jan(14))]
    assert "reticulocytes_pct" in l3[0][4]
    # Hb low: L-6 too; CBC not flagged abnormal: no L-7.
    assert {r[0] for r in rechecks(p)} == {"L-3", "L-6", "L-8"}


def test_it_plans_only_the_month_3_review_when_the_baseline_is_normal() -> None:
    p = run("hydroxo-uk-standard", jan(4), labs=LabContext(has_baseline=True))

    assert rechecks(p) == [("L-8", date(2027, 4, 4), date(2027, 3, 21), date(2027, 4, 18), ())]


def test_it_plans_the_review_after_one_month_in_pregnancy() -> None:
    p = run("hydroxo-uk-standard", jan(4), labs=LabContext(has_baseline=True, pregnant=True))

    assert [r.due_date for r in p.rechecks if r.rule == "L-8"] == [date(2027, 2, 4)]


def test_it_plans_platelets_on_days_7_to_10_day_14_and_weekly_until_normal() -> None:
    labs = LabContext(has_baseline=True, platelets_low=True)

    p = run("hydroxo-uk-standard", jan(4), date(2027, 2, 1), labs=labs)

    l4 = [(r[1], r[2], r[3]) for r in rechecks(p) if r[0] == "L-4"]
    # Days 7-10; day 14 ± 2; then weekly (± 2) as far as 14 days ahead of 1 February.
    assert l4 == [
        (jan(11), jan(11), jan(14)),
        (jan(18), jan(16), jan(20)),
        (jan(25), jan(23), jan(27)),
        (date(2027, 2, 1), jan(30), date(2027, 2, 3)),
        (date(2027, 2, 8), date(2027, 2, 6), date(2027, 2, 10)),
        (date(2027, 2, 15), date(2027, 2, 13), date(2027, 2, 17)),
    ]
    assert p.extend_on is not None


def test_it_stops_the_weekly_platelet_count_once_platelets_are_normal() -> None:
    labs = LabContext(has_baseline=True, platelets_low=True, platelets_normal_on=jan(27))

    p = run("hydroxo-uk-standard", jan(4), date(2027, 2, 1), labs=labs)

    assert [r.due_date for r in p.rechecks if r.rule == "L-4"] == [jan(11), jan(18), jan(25)]


def test_it_plans_hemolysis_markers_on_day_7_day_14_and_every_2_weeks() -> None:
    labs = LabContext(has_baseline=True, hemolysis_abnormal=True)

    p = run("hydroxo-uk-standard", jan(4), date(2027, 2, 1), labs=labs)

    l5 = [(r[1], r[2], r[3]) for r in rechecks(p) if r[0] == "L-5"]
    # Day 7 ± 2, day 14 ± 2, then every 2 weeks (± 2) as far as 14 days ahead of 1 February.
    assert l5 == [
        (jan(11), jan(9), jan(13)),
        (jan(18), jan(16), jan(20)),
        (date(2027, 2, 1), jan(30), date(2027, 2, 3)),
        (date(2027, 2, 15), date(2027, 2, 13), date(2027, 2, 17)),
    ]
    assert all(r.analytes == ("ldh", "bilirubin_indirect", "haptoglobin") for r in p.rechecks if r.rule == "L-5")


def test_it_plans_platelets_every_two_days_until_rising_when_below_50() -> None:
    labs = LabContext(has_baseline=True, platelets_very_low=True, platelets_rising_on=jan(9))

    p = run("hydroxo-uk-standard", jan(4), labs=labs)

    # Every 24-72 h: due every 2 days ± 1 until the first count that is rising (9 Jan).
    assert [r.due_date for r in p.rechecks if r.rule == "L-4b"] == [jan(6), jan(8), jan(10)]


def test_it_plans_an_annual_review_for_an_irreversible_cause() -> None:
    p = run("ileal-resection", jan(4), labs=LabContext(irreversible_cause=True))

    assert [r.due_date for r in p.rechecks if r.rule == "L-12"] == [date(2028, 1, 4)]


def test_it_adds_the_protocols_own_recheck_steps() -> None:
    p = run("oral-high-dose", jan(4), labs=LabContext(has_baseline=True))

    assert [(r.rule, r.due_date) for r in p.rechecks if r.rule == "L-11"] == [("L-11", jan(4) + timedelta(days=90))]


def test_it_plans_no_rechecks_for_a_patient_enrolled_mid_treatment_with_a_reversible_cause() -> None:
    p = run("hydroxo-uk-standard", jan(4), enrolment=Enrolment(1, date(2026, 12, 1)))

    assert p.t0 is None
    assert p.rechecks == ()


def test_it_plans_only_the_annual_review_from_the_start_date_for_an_enrolment_with_an_irreversible_cause() -> None:
    # No T0 (V-1): no L-6/L-7/L-8 even without a baseline; L-12 on the anniversary of the start date (D-ENROL-L12).
    labs = LabContext(irreversible_cause=True)
    p = run("hydroxo-uk-standard", jan(4), enrolment=Enrolment(1, date(2026, 12, 1)), labs=labs)

    assert p.t0 is None
    assert [(r.rule, r.key, r.due_date) for r in p.rechecks] == [("L-12", "L-12@365", date(2028, 1, 4))]


# --- Time zones -------------------------------------------------------------------------------


def test_it_takes_the_local_date_in_berlin_on_a_summer_night() -> None:
    # CEST is UTC+2: 22:30 UTC on 1 July is 00:30 on 2 July.
    assert local_date(datetime(2027, 7, 1, 22, 30, tzinfo=UTC), "Europe/Berlin") == date(2027, 7, 2)
    # CET is UTC+1: 22:30 UTC on 4 January is still 23:30 on 4 January.
    assert local_date(datetime(2027, 1, 4, 22, 30, tzinfo=UTC), "Europe/Berlin") == jan(4)


def test_it_takes_the_local_date_across_the_march_and_october_changes() -> None:
    # 28 March 2027: clocks go forward at 01:00 UTC. 23:30 UTC on the 27th is 00:30 CET on the 28th.
    assert local_date(datetime(2027, 3, 27, 23, 30, tzinfo=UTC), "Europe/Berlin") == date(2027, 3, 28)
    # After the change 22:30 UTC on the 28th is 00:30 CEST on the 29th.
    assert local_date(datetime(2027, 3, 28, 22, 30, tzinfo=UTC), "Europe/Berlin") == date(2027, 3, 29)
    # 31 October 2027: clocks go back at 01:00 UTC. 22:30 UTC on the 30th is 00:30 CEST on the 31st;
    # 22:30 UTC on the 31st is only 23:30 CET on the 31st.
    assert local_date(datetime(2027, 10, 30, 22, 30, tzinfo=UTC), "Europe/Berlin") == date(2027, 10, 31)
    assert local_date(datetime(2027, 10, 31, 22, 30, tzinfo=UTC), "Europe/Berlin") == date(2027, 10, 31)


def test_it_refuses_a_time_without_a_zone() -> None:
    with pytest.raises(ScheduleError):
        local_date(datetime(2027, 1, 4, 9, 0), "Europe/Berlin")  # noqa: DTZ001


def test_it_replans_from_the_local_date_of_a_late_evening_dose_across_the_dst_change() -> None:
    # Alternate days, Friday 26 March 2027 start, every day open. Dose 2 due Sunday 28 March is
    # given at 23:30 UTC on Saturday 27 March: 00:30 on Sunday 28 in Berlin.
    on = local_date(datetime(2027, 3, 27, 23, 30, tzinfo=UTC), "Europe/Berlin")
    records = (given(0, 1, date(2027, 3, 26)), given(0, 2, on, date(2027, 3, 28)))

    p = run("hydroxo-uk-neuro", date(2027, 3, 26), date(2027, 3, 28), records=records, calendar=EVERY_DAY)

    assert due(p, "loading")[0] == date(2027, 3, 30)


# --- Determinism --------------------------------------------------------------------------------


def test_it_plans_the_same_whatever_the_order_of_the_records() -> None:
    records = (given(0, 1, jan(4)), not_given(0, 2, jan(6)), given(0, 2, jan(7), jan(6)))

    forwards = run("hydroxo-uk-standard", jan(4), jan(7), records=records)
    backwards = run("hydroxo-uk-standard", jan(4), jan(7), records=tuple(reversed(records)))

    assert forwards == backwards
    assert [d.status for d in forwards.doses[:3]] == [GIVEN, NOT_GIVEN, GIVEN]


def test_it_refuses_a_clinic_with_no_open_weekday() -> None:
    with pytest.raises(ScheduleError) as exc:
        run("hydroxo-uk-standard", jan(4), calendar=ClinicCalendar(open_weekdays=frozenset()))
    assert exc.value.field == "open_weekdays"


def test_it_never_plans_the_first_dose_after_an_enrolment_before_the_regimen_starts() -> None:
    # Last maintenance dose elsewhere 1 June 2026: 12 weeks later (24 Aug 2026) is long past, so the
    # first dose is due on the start date and the next one 12 weeks after it.
    enrolment = Enrolment(phase_index=1, last_dose_date=date(2026, 6, 1))

    p = run("hydroxo-uk-standard", jan(4), enrolment=enrolment)

    assert due(p, "maintenance")[:2] == [jan(4), jan(4) + timedelta(weeks=12)]


def test_it_counts_a_decision_recorded_twice_from_the_first_time() -> None:
    days = [jan(4), jan(6), jan(8), jan(11), jan(13), jan(15), jan(18), jan(20)]
    records = tuple(given(0, i + 1, d) for i, d in enumerate(days))
    decisions = (Decision(0, "end_phase", date(2027, 2, 1)), Decision(0, "end_phase", jan(20)))

    for order in (decisions, decisions[::-1]):
        p = run("hydroxo-uk-neuro", jan(4), date(2027, 2, 1), records=records, decisions=order)
        # Ended on 20 January: the review prompt of 1 February no longer applies.
        assert [r.due_date for r in p.reviews] == [jan(18)]
        assert due(p, "maintenance")[0] == date(2027, 3, 17)


def test_a_shortened_interval_never_plans_a_dose_before_the_day_it_was_shortened() -> None:
    # RULES R-UK-4 (decision D-UK4): loading given 4-15 January, the first maintenance dose on 9 April; on Friday
    # 25 June, 11 weeks on, maintenance is shortened to 8 weeks (in the options). 8 weeks after 9 April was 4 June:
    # the dose is due on the day of the decision, then every 8 weeks.
    loading = [jan(4), jan(6), jan(8), jan(11), jan(13), jan(15)]
    records = (*(given(0, i + 1, d) for i, d in enumerate(loading)), given(1, 1, date(2027, 4, 9)))
    options = {"phases": {"maintenance": {"spacing_value": 8}}}
    shorter = apply_options(builtin("hydroxo-uk-standard"), options, builtin_limits("hydroxo-uk-standard"))
    decided = date(2027, 6, 25)

    p = run(shorter, jan(4), decided, records=records, decisions=(Decision(1, "interval_shortened", decided),))
    assert due(p, "maintenance")[:2] == [decided, date(2027, 8, 20)]

    # Without the decision the engine would plan it in the past (the decision is what anchors it).
    p = run(shorter, jan(4), decided, records=records)
    assert due(p, "maintenance")[0] == date(2027, 6, 4)

    # Two shortenings: the later day counts; a Saturday decision gives the Monday after.
    twice = (Decision(1, "interval_shortened", date(2027, 5, 3)), Decision(1, "interval_shortened", date(2027, 6, 26)))
    p = run(shorter, jan(4), date(2027, 6, 26), records=records, decisions=twice)
    assert due(p, "maintenance")[0] == date(2027, 6, 28)


def test_the_next_annual_review_sets_the_day_the_plan_is_extended() -> None:
    # The lifelong horizon is 12 months: a regimen planned on T0 (4 Jan 2027) has the review of 4 Jan 2028; the
    # next, 4 Jan 2029, enters the plan when the horizon reaches it, on 4 Jan 2028: the day the periodic task must
    # re-plan (extend_on), not only when a dose happens to re-plan the regimen.
    inp = PlanInput(
        protocol=builtin("ileal-resection"),
        start_date=jan(4),
        today=jan(4),
        calendar=ClinicCalendar(),
        labs=LabContext(irreversible_cause=True),
    )

    rechecks, extend = plan_rechecks(inp, jan(4), jan(4) + relativedelta(months=12))

    assert [r.due_date for r in rechecks if r.rule == "L-12"] == [date(2028, 1, 4)]
    assert extend == date(2028, 1, 4)
    # Planned on that day, the plan has the 2029 review, and the next extension is a year on
    later = replace(inp, today=date(2028, 1, 4))
    rechecks, extend = plan_rechecks(later, jan(4), date(2029, 1, 4))
    assert [r.due_date for r in rechecks if r.rule == "L-12"] == [date(2028, 1, 4), date(2029, 1, 4)]
    assert extend == date(2029, 1, 4)


def test_the_day_a_horizon_reaches_a_day_holds_at_the_ends_of_months() -> None:
    # 29 Feb 2028 minus 12 months is 28 Feb 2027, and 28 Feb 2027 plus 12 months is 28 Feb 2028: one day short.
    assert _horizon_reaches(date(2028, 2, 29), 12) == date(2027, 3, 1)
    assert _horizon_reaches(date(2029, 1, 4), 12) == date(2028, 1, 4)
    # 28 Feb plus 3 months is 28 May, short of 31 May; 1 March plus 3 months is 1 June
    assert _horizon_reaches(date(2027, 5, 31), 3) == date(2027, 3, 1)
