"""RULES §2 L-4b after T0: "Platelets < 50 x10^9/L [P], or pseudo-TMA pattern (S-3)" is not limited to the
baseline (unlike L-4, L-5, L-6). A follow-up count below the threshold, or the S-3 laboratory pattern resting on
a follow-up result, starts the 24-72 h rechecks (platelets, Hb, LDH; every 2 days ± 1 by default) from the day of
that result, until a later count is above the count that started them. The baseline's series is unchanged."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, cast

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from monitoring.inputs import lab_context
from patients.models import LabResult, Patient
from regimens.models import LabRecheck, RecheckStatus, Regimen
from regimens.schedule import LabContext, PlanInput, ProtocolSpec, plan
from tests.factories import PatientFactory
from tests.regimens.test_schedule import builtin
from tests.timeline import T0, day, noon, start_treatment

L4B_ANALYTES = ["platelets", "hemoglobin", "ldh"]


# --- the engine ---------------------------------------------------------------------------------


def l4b(labs: LabContext, today: date = T0) -> list[tuple[str, date, date, date]]:
    spec: ProtocolSpec = builtin("hydroxo-uk-standard")
    p = plan(PlanInput(protocol=spec, start_date=T0, today=today, labs=labs))
    assert p.t0 == T0
    return [(r.key, r.window_start, r.due_date, r.window_end) for r in p.rechecks if r.rule == "L-4b"]


def test_engine_plans_from_the_day_of_the_follow_up_result() -> None:
    planned = l4b(LabContext(has_baseline=True, platelets_very_low_from=day(5)), today=day(5))

    # Due every 2 days ± 1 from day 5, as far as the conditional horizon (today + 14 days) reaches.
    assert planned == [(f"L-4b@{n}", day(n - 1), day(n), day(n + 1)) for n in range(7, 20, 2)]


def test_engine_stops_at_the_first_window_opening_after_the_rising_count() -> None:
    labs = LabContext(has_baseline=True, platelets_very_low_from=day(5), platelets_very_low_rising_on=day(8))

    # Day 9's window opens on day 8 (the rising count): kept; day 11's opens after it.
    assert [key for key, *_ in l4b(labs, today=day(8))] == ["L-4b@7", "L-4b@9"]


def test_engine_baseline_series_wins_and_is_unchanged() -> None:
    baseline = LabContext(has_baseline=True, platelets_very_low=True, platelets_rising_on=day(5))
    both = LabContext(
        has_baseline=True,
        platelets_very_low=True,
        platelets_rising_on=day(5),
        platelets_very_low_from=day(9),
    )

    assert [key for key, *_ in l4b(baseline)] == ["L-4b@2", "L-4b@4", "L-4b@6"]
    assert l4b(both) == l4b(baseline)


def test_engine_ignores_a_start_on_or_before_t0() -> None:
    assert l4b(LabContext(has_baseline=True, platelets_very_low_from=T0)) == []


# --- lab_context (monitoring.inputs) ------------------------------------------------------------


@pytest.fixture
def bare(clinic: Any) -> Patient:
    return cast(Patient, PatientFactory(clinic=clinic, sex="female"))


def add(patient: Patient, analyte: str, value: str, on: date) -> None:
    LabResult.objects.create(
        patient=patient,
        analyte=analyte,
        loinc="x",
        value_as_entered=value,
        value_canonical=value,
        collected_at=noon(on),
    )


@pytest.mark.django_db
def test_lab_context_starts_on_a_follow_up_count_below_the_threshold(bare: Patient) -> None:
    add(bare, "platelets", "220", day(-1))
    add(bare, "platelets", "60", day(3))  # above the threshold: not a start
    add(bare, "platelets", "35", day(5))
    add(bare, "platelets", "35", day(7))  # not above 35: not rising
    add(bare, "platelets", "36", day(9))

    ctx = lab_context(bare, T0)

    assert not ctx.platelets_very_low and ctx.platelets_rising_on is None  # the baseline flags are as before
    assert (ctx.platelets_very_low_from, ctx.platelets_very_low_rising_on) == (day(5), day(9))


@pytest.mark.django_db
def test_lab_context_leaves_the_baseline_series_alone(bare: Patient) -> None:
    add(bare, "platelets", "40", day(-1))
    add(bare, "platelets", "45", day(3))
    add(bare, "platelets", "20", day(6))

    ctx = lab_context(bare, T0)

    assert ctx.platelets_very_low and ctx.platelets_rising_on == day(3)
    assert (ctx.platelets_very_low_from, ctx.platelets_very_low_rising_on) == (None, None)


@pytest.mark.django_db
def test_lab_context_starts_on_a_follow_up_s3_pattern(bare: Patient) -> None:
    add(bare, "hemoglobin", "130", day(-1))  # normal baseline (female LLN 120)
    add(bare, "platelets", "220", day(-1))
    add(bare, "hemoglobin", "85", day(4))
    add(bare, "platelets", "100", day(4))  # < 150 but not < 50
    add(bare, "ldh", "3000", day(6))  # the pattern is complete on day 6
    add(bare, "platelets", "100", day(8))
    add(bare, "platelets", "120", day(10))

    ctx = lab_context(bare, T0)

    assert (ctx.platelets_very_low_from, ctx.platelets_very_low_rising_on) == (day(6), day(10))


@pytest.mark.django_db
def test_lab_context_a_baseline_only_pattern_is_not_a_follow_up_start(bare: Patient) -> None:
    # The pattern rests on baseline results only (platelets 120 >= the LLN, so the baseline flag is off): a later
    # B12 result is no follow-up Hb, platelet or haemolysis result.
    add(bare, "hemoglobin", "85", day(-2))
    add(bare, "platelets", "140", day(-2))
    add(bare, "ldh", "3000", day(-2))
    add(bare, "b12_total", "100", day(3))

    ctx = lab_context(bare, T0)

    assert (ctx.platelets_very_low_from, ctx.platelets_very_low_rising_on) == (None, None)


# --- through the API: the evaluation re-plans -----------------------------------------------------


@pytest.fixture
def treated(patient: Patient, clock: Any) -> Regimen:
    return cast(Regimen, start_treatment(patient))


@pytest.fixture
def enter(api: APIClient, clock: Any, django_capture_on_commit_callbacks: Any) -> Any:
    def post(patient: Patient, analyte: str, value: str, unit: str, on: date) -> None:
        clock.move_to(max(noon(on) + timedelta(hours=1), noon(T0)))
        body = {
            "patient": patient.pk,
            "analyte": analyte,
            "value": value,
            "unit": unit,
            "collected_at": noon(on).isoformat(),
        }
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post("/api/lab-results/", body, format="json")
        assert response.status_code == 201, response.json()

    return post


def live_l4b(patient: Patient) -> dict[str, LabRecheck]:
    rows = LabRecheck.objects.filter(patient=patient, rule="L-4b").exclude(status=RecheckStatus.CANCELLED)
    return {r.key: r for r in rows}


@pytest.mark.django_db
def test_a_day_5_count_of_35_after_a_baseline_of_220_plans_l4b_until_rising(
    patient: Patient, treated: Regimen, enter: Any
) -> None:
    enter(patient, "platelets", "220", "10^9/L", day(-1))
    assert not live_l4b(patient)

    enter(patient, "platelets", "35", "10^9/L", day(5))

    planned = live_l4b(patient)
    assert sorted(planned, key=lambda k: int(k.split("@")[1])) == [f"L-4b@{n}" for n in range(7, 20, 2)]
    first, second = planned["L-4b@7"], planned["L-4b@9"]
    assert (first.window_start, first.due_date, first.window_end) == (day(6), day(7), day(8))
    assert (second.window_start, second.due_date, second.window_end) == (day(8), day(9), day(10))
    assert all(r.analytes == L4B_ANALYTES and r.status == RecheckStatus.DUE for r in planned.values())

    enter(patient, "platelets", "40", "10^9/L", day(8))  # above 35: rising

    after = live_l4b(patient)
    # No recheck whose window opens after day 8; day 9's window opens on day 8.
    assert set(after) == {"L-4b@7", "L-4b@9"}
    assert all(r.window_start <= day(8) for r in after.values())


@pytest.mark.django_db
def test_a_baseline_below_50_plans_from_t0_as_before(patient: Patient, treated: Regimen, enter: Any) -> None:
    enter(patient, "platelets", "40", "10^9/L", day(-1))
    assert {"L-4b@2", "L-4b@4"} <= set(live_l4b(patient))

    enter(patient, "platelets", "45", "10^9/L", day(3))  # rising above the baseline: the series stops
    enter(patient, "platelets", "30", "10^9/L", day(6))  # no second series (open question, D-L4B)

    assert set(live_l4b(patient)) == {"L-4b@2", "L-4b@4"}


@pytest.mark.django_db
def test_a_follow_up_s3_pattern_plans_l4b(patient: Patient, treated: Regimen, enter: Any) -> None:
    enter(patient, "hemoglobin", "130", "g/L", day(-1))
    enter(patient, "platelets", "220", "10^9/L", day(-1))
    enter(patient, "hemoglobin", "85", "g/L", day(4))
    enter(patient, "platelets", "100", "10^9/L", day(4))
    assert not live_l4b(patient)

    enter(patient, "ldh", "3000", "U/L", day(4))  # Hb low, platelets < 150, LDH high: S-3

    planned = live_l4b(patient)
    assert {"L-4b@6", "L-4b@8"} <= set(planned)
    assert min(r.window_start for r in planned.values()) == day(5)


@pytest.mark.django_db
def test_a_follow_up_count_of_60_plans_none(patient: Patient, treated: Regimen, enter: Any) -> None:
    enter(patient, "platelets", "220", "10^9/L", day(-1))
    enter(patient, "platelets", "60", "10^9/L", day(5))

    assert not live_l4b(patient)


@pytest.mark.django_db
def test_an_import_that_starts_l4b_and_answers_its_first_recheck_leaves_that_recheck_done(
    patient: Patient, treated: Regimen, api: APIClient, clock: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """One write that holds both the count that plans the series and the results that answer its first recheck (a
    history imported at once) is evaluated once: that evaluation completes what its own re-plan planned, instead
    of leaving it due, and overdue two days later, until the patient's next write."""
    clock.move_to(noon(day(8)))
    rows = [("platelets", "220", day(-1)), ("platelets", "35", day(5))]
    rows += [(analyte, value, day(7)) for analyte, value in (("platelets", "30"), ("hemoglobin", "95"), ("ldh", "400"))]
    units = {"platelets": "10^9/L", "hemoglobin": "g/L", "ldh": "U/L"}
    text = "mrn,analyte,value,unit,collected_at\n" + "".join(
        f"{patient.mrn},{analyte},{value},{units[analyte]},{noon(on).isoformat()}\n" for analyte, value, on in rows
    )
    file = SimpleUploadedFile("results.csv", text.encode(), content_type="text/csv")

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/lab-results/import/", {"file": file}, format="multipart")

    assert response.status_code == 201, response.json()
    planned = live_l4b(patient)
    assert planned["L-4b@7"].status == RecheckStatus.DONE
    assert planned["L-4b@9"].status == RecheckStatus.DUE
