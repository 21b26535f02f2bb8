"""The [P] lab-recheck times of RULES §2 (L-4 "frequency is [P]", L-4b [P], L-5 "interval is [P]", L-6
"timepoints are [P]", L-12 [P]) are settings with RULES' numbers as defaults (COBALT_RECHECK_*): the engine
plans from regimens.schedule.RecheckTimes, which regimens/services/planning.py builds from settings.COBALT.

Expected dates are worked out by hand (2027-01-04, T0, is a Monday)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from patients.models import Patient
from regimens.models import LabRecheck
from regimens.schedule import Horizons, LabContext, RecheckTimes
from regimens.services.planning import recheck_times
from tests.regimens.test_schedule import jan, rechecks, run
from tests.timeline import start_treatment


def with_setting(settings: Any, **values: Any) -> None:
    settings.COBALT = {**settings.COBALT, **values}


def test_the_defaults_are_rules_numbers_and_the_settings_give_them() -> None:
    times = RecheckTimes()
    assert times.l4_first_window == (7, 10)  # L-4: days 7-10
    assert (times.l4_at_days, times.l4_every_days, times.l4_plus_minus_days) == ((14,), 7, 2)  # day 14 ± 2, weekly
    assert (times.l4b_every_days, times.l4b_plus_minus_days) == (2, 1)  # L-4b: every 24-72 h
    assert (times.l5_at_days, times.l5_every_days, times.l5_plus_minus_days) == ((7, 14), 14, 2)  # L-5
    assert (times.l6_at_days, times.l6_plus_minus_days) == ((14, 28), 3)  # L-6: day 14 ± 3, day 28 ± 3
    assert (times.l12_every_years, times.l12_plus_minus_days) == (1, 30)  # L-12: yearly ± 30
    assert times.problems() == []
    assert recheck_times() == times


def test_the_l4_windows_move_with_their_settings() -> None:
    labs = LabContext(has_baseline=True, platelets_low=True)
    times = RecheckTimes(l4_first_window=(5, 8), l4_at_days=(12,), l4_every_days=5, l4_plus_minus_days=1)

    p = run("hydroxo-uk-standard", jan(4), date(2027, 2, 1), labs=labs, recheck_times=times)

    l4 = [(r.key, r.due_date, r.window_start, r.window_end, r.description) for r in p.rechecks if r.rule == "L-4"]
    # Days 5-8; day 12 ± 1; then every 5 days (± 1) from day 17, as far as 14 days ahead of 1 February.
    assert l4 == [
        ("L-4@5", jan(9), jan(9), jan(12), "Platelet count, days 5-8"),
        ("L-4@12", jan(16), jan(15), jan(17), "Platelet count, day 12"),
        ("L-4@17", jan(21), jan(20), jan(22), "Platelet count every 5 days"),
        ("L-4@22", jan(26), jan(25), jan(27), "Platelet count every 5 days"),
        ("L-4@27", jan(31), jan(30), date(2027, 2, 1), "Platelet count every 5 days"),
        ("L-4@32", date(2027, 2, 5), date(2027, 2, 4), date(2027, 2, 6), "Platelet count every 5 days"),
        ("L-4@37", date(2027, 2, 10), date(2027, 2, 9), date(2027, 2, 11), "Platelet count every 5 days"),
        ("L-4@42", date(2027, 2, 15), date(2027, 2, 14), date(2027, 2, 16), "Platelet count every 5 days"),
    ]
    # Normal on 20 January: the day-17 window (opens 20 January) is the last.
    normal = LabContext(has_baseline=True, platelets_low=True, platelets_normal_on=jan(20))
    p = run("hydroxo-uk-standard", jan(4), date(2027, 2, 1), labs=normal, recheck_times=times)
    assert [r.due_date for r in p.rechecks if r.rule == "L-4"] == [jan(9), jan(16), jan(21)]


def test_the_l4b_interval_follows_its_settings() -> None:
    labs = LabContext(has_baseline=True, platelets_very_low=True, platelets_rising_on=jan(12))

    p = run("hydroxo-uk-standard", jan(4), labs=labs, recheck_times=RecheckTimes(l4b_every_days=3))

    # Every 3 days ± 1 from day 3 until the first rising count (12 January opens the day-9 window, the last).
    assert [(r.due_date, r.window_start, r.window_end) for r in p.rechecks if r.rule == "L-4b"] == [
        (jan(7), jan(6), jan(8)),
        (jan(10), jan(9), jan(11)),
        (jan(13), jan(12), jan(14)),
    ]


def test_the_l5_days_and_interval_follow_their_settings() -> None:
    labs = LabContext(has_baseline=True, hemolysis_abnormal=True)
    times = RecheckTimes(l5_at_days=(5, 10), l5_every_days=7, l5_plus_minus_days=1)

    p = run("hydroxo-uk-standard", jan(4), date(2027, 2, 1), labs=labs, recheck_times=times)

    assert [(r.due_date, r.window_start, r.window_end) for r in p.rechecks if r.rule == "L-5"] == [
        (jan(9), jan(8), jan(10)),
        (jan(14), jan(13), jan(15)),
        (jan(21), jan(20), jan(22)),
        (jan(28), jan(27), jan(29)),
        (date(2027, 2, 4), date(2027, 2, 3), date(2027, 2, 5)),
        (date(2027, 2, 11), date(2027, 2, 10), date(2027, 2, 12)),
    ]
    descriptions = {r.description for r in p.rechecks if r.rule == "L-5"}
    assert "LDH, indirect bilirubin and haptoglobin every 7 days until normal" in descriptions
    # Normal already on day 1: the first fixed day stays planned (as with the defaults), nothing after it.
    early = LabContext(has_baseline=True, hemolysis_abnormal=True, hemolysis_normal_on=jan(5))
    p = run("hydroxo-uk-standard", jan(4), date(2027, 2, 1), labs=early, recheck_times=times)
    assert [r.key for r in p.rechecks if r.rule == "L-5"] == ["L-5@5"]
    p = run("hydroxo-uk-standard", jan(4), date(2027, 2, 1), labs=early)
    assert [r.key for r in p.rechecks if r.rule == "L-5"] == ["L-5@7"]


def test_the_l6_timepoints_follow_their_settings() -> None:
    p = run("hydroxo-uk-standard", jan(4), recheck_times=RecheckTimes(l6_at_days=(10, 21), l6_plus_minus_days=2))

    assert [r for r in rechecks(p) if r[0] == "L-6"] == [
        ("L-6", jan(14), jan(12), jan(16), ("hemoglobin",)),
        ("L-6", jan(25), jan(23), jan(27), ("hemoglobin",)),
    ]


def test_the_l12_interval_and_window_follow_their_settings() -> None:
    labs = LabContext(irreversible_cause=True)
    horizons = Horizons(lifelong_months=36)

    default = run("ileal-resection", jan(4), labs=labs, horizons=horizons)
    assert [r.due_date for r in default.rechecks if r.rule == "L-12"] == [
        date(2028, 1, 4),
        date(2029, 1, 4),
        date(2030, 1, 4),
    ]

    times = RecheckTimes(l12_every_years=2, l12_plus_minus_days=60)
    p = run("ileal-resection", jan(4), labs=labs, horizons=horizons, recheck_times=times)
    l12 = [(r.due_date, r.window_start, r.window_end) for r in p.rechecks if r.rule == "L-12"]
    assert l12 == [(date(2029, 1, 4), date(2029, 1, 4) - timedelta(days=60), date(2029, 1, 4) + timedelta(days=60))]


def test_times_that_cannot_be_planned_are_named() -> None:
    bad = RecheckTimes(
        l4_first_window=(10, 7), l4b_every_days=0, l5_at_days=(14, 7), l6_at_days=(2,), l12_plus_minus_days=-1
    )

    problems = bad.problems()

    assert any(p.startswith("l4_first_window") for p in problems)
    assert any(p.startswith("l4b_every_days 0") for p in problems)
    assert any(p.startswith("l5_at_days [14, 7]") for p in problems)
    assert any(p.startswith("l6_at_days") and "opens on or before T0" in p for p in problems)
    assert any(p.startswith("l12_plus_minus_days -1") for p in problems)


def test_the_planning_layer_reads_the_settings(settings: Any) -> None:
    with_setting(
        settings,
        RECHECK_L4_FIRST_WINDOW=[5, 8],
        RECHECK_L4_AT_DAYS=[12],
        RECHECK_L4_EVERY_DAYS=5,
        RECHECK_L4_PLUS_MINUS_DAYS=1,
        RECHECK_L4B_EVERY_DAYS=3,
        RECHECK_L4B_PLUS_MINUS_DAYS=0,
        RECHECK_L5_AT_DAYS=[5, 10],
        RECHECK_L5_EVERY_DAYS=7,
        RECHECK_L5_PLUS_MINUS_DAYS=1,
        RECHECK_L6_AT_DAYS=[10, 21],
        RECHECK_L6_PLUS_MINUS_DAYS=2,
        RECHECK_L12_EVERY_YEARS=2,
        RECHECK_L12_PLUS_MINUS_DAYS=60,
    )

    assert recheck_times() == RecheckTimes(
        l4_first_window=(5, 8),
        l4_at_days=(12,),
        l4_every_days=5,
        l4_plus_minus_days=1,
        l4b_every_days=3,
        l4b_plus_minus_days=0,
        l5_at_days=(5, 10),
        l5_every_days=7,
        l5_plus_minus_days=1,
        l6_at_days=(10, 21),
        l6_plus_minus_days=2,
        l12_every_years=2,
        l12_plus_minus_days=60,
    )


@pytest.mark.django_db
def test_a_regimen_plans_its_rechecks_at_the_configured_times(settings: Any, patient: Patient) -> None:
    with_setting(settings, RECHECK_L6_AT_DAYS=[10, 21], RECHECK_L6_PLUS_MINUS_DAYS=2)

    regimen = start_treatment(patient)  # no baseline Hb: L-6 is planned

    l6 = LabRecheck.objects.filter(regimen=regimen, rule="L-6").order_by("due_date")
    assert [(r.key, r.due_date, r.window_start, r.window_end) for r in l6] == [
        ("L-6@10", jan(14), jan(12), jan(16)),
        ("L-6@21", jan(25), jan(23), jan(27)),
    ]


def test_bad_recheck_settings_stop_the_system_check(settings: Any) -> None:
    from monitoring.checks import recheck_time_settings

    assert recheck_time_settings(None) == []
    with_setting(settings, RECHECK_L6_AT_DAYS=[28, 14], RECHECK_L4B_PLATELETS_BELOW=0)
    errors = recheck_time_settings(None)
    assert [e.id for e in errors] == ["cobalt.E005", "cobalt.E005"]
    assert "COBALT_RECHECK_L6_AT_DAYS [28, 14] do not rise" in errors[0].msg
    assert "COBALT_RECHECK_L4B_PLATELETS_BELOW" in errors[1].msg
    with_setting(settings, RECHECK_L6_AT_DAYS=[14, 28], RECHECK_L4B_PLATELETS_BELOW=50, RECHECK_L4_FIRST_WINDOW=[7])
    assert [e.id for e in recheck_time_settings(None)] == ["cobalt.E005"]
