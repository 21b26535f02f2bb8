"""RULES §10 V-11: changing a clinic's calendar re-plans only the planned doses due today or later (the
patient's today); a dose already overdue keeps its due date and stays overdue. Also L-8 when breastfeeding
and L-11 on every oral protocol (V-10), which the engine plans."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine

from patients.models import Clinic, Patient
from patients.services import clinic_update_calendar
from regimens.models import DoseStatus, Protocol, ProtocolRecheckStep, Regimen, ScheduledDose
from regimens.schedule import GIVEN, ClinicCalendar, DoseRecord, HeldDose, LabContext, PlanInput, plan
from regimens.services import dose_record_administration, regimen_start
from tests.factories import PatientFactory
from tests.regimens.test_schedule import builtin

MONDAY = date(2027, 1, 4)


def jan(n: int) -> date:
    return date(2027, 1, n)


def at(on: date, hour: int = 8) -> datetime:
    return datetime(on.year, on.month, on.day, hour, tzinfo=UTC)


# --- The engine ---------------------------------------------------------------------------------------------


def loading(p: Any) -> list[date]:
    return [d.due_date for d in p.doses if d.phase_index == 0 and d.status == "planned"]


def test_it_keeps_a_held_dose_on_its_past_date_when_that_day_is_now_closed() -> None:
    # Given dose 1 given Monday 4th, dose 2 due Wednesday 6th never recorded, today Friday 8th; Wednesdays close
    no_wednesdays = ClinicCalendar(open_weekdays=frozenset({0, 1, 3, 4}))
    inp = PlanInput(
        protocol=builtin("hydroxo-uk-standard"),
        start_date=MONDAY,
        today=jan(8),
        calendar=no_wednesdays,
        records=(DoseRecord(0, 1, GIVEN, MONDAY, MONDAY),),
        held=(HeldDose(0, 2, jan(6)),),
    )

    # Then dose 2 stays due on the 6th (overdue); the doses from today on follow the new calendar
    assert loading(plan(inp)) == [jan(6), jan(8), jan(11), jan(14), jan(18)]
    # Without the held date the engine would have moved it: the difference is V-11
    assert loading(plan(PlanInput(**{**inp.__dict__, "held": ()})))[0] == jan(7)


def test_it_replans_a_held_date_that_the_spacing_rule_no_longer_allows() -> None:
    # Given dose 1 was given late, on Thursday 7th: dose 2's old date (6th) is before it
    inp = PlanInput(
        protocol=builtin("hydroxo-uk-standard"),
        start_date=MONDAY,
        today=jan(8),
        records=(DoseRecord(0, 1, GIVEN, jan(7), MONDAY),),
        held=(HeldDose(0, 2, jan(6)),),
    )

    assert loading(plan(inp))[0] == jan(11)  # 7th + 2 days = Saturday 9th -> Monday 11th


def test_it_ignores_a_held_date_of_today_or_later() -> None:
    inp = PlanInput(
        protocol=builtin("hydroxo-uk-standard"),
        start_date=MONDAY,
        today=jan(6),
        calendar=ClinicCalendar(closed_dates=frozenset({jan(6)})),
        records=(DoseRecord(0, 1, GIVEN, MONDAY, MONDAY),),
        held=(HeldDose(0, 2, jan(6)),),
    )

    assert loading(plan(inp))[0] == jan(7)


@pytest.mark.parametrize(
    ("pregnant", "breastfeeding", "months"), [(False, False, 3), (True, False, 1), (False, True, 1)]
)
def test_l8_comes_after_one_month_when_pregnant_or_breastfeeding(
    pregnant: bool, breastfeeding: bool, months: int
) -> None:
    inp = PlanInput(
        protocol=builtin("hydroxo-uk-standard"),
        start_date=MONDAY,
        today=MONDAY,
        labs=LabContext(pregnant=pregnant, breastfeeding=breastfeeding),
    )

    review = next(r for r in plan(inp).rechecks if r.rule == "L-8")

    assert review.due_date == date(2027, 1 + months, 4)


@pytest.mark.parametrize("code", ["oral-high-dose", "bariatric-oral", "diet-oral"])
def test_l11_is_planned_at_month_3_on_every_oral_protocol(code: str) -> None:
    p = plan(PlanInput(protocol=builtin(code), start_date=MONDAY, today=MONDAY))

    l11 = [r for r in p.rechecks if r.rule == "L-11"]

    assert [(r.due_date, r.window_start, r.window_end) for r in l11] == [
        (MONDAY + timedelta(days=90), MONDAY + timedelta(days=76), MONDAY + timedelta(days=104))
    ]
    assert {"b12_total", "mma", "hemoglobin"} <= set(l11[0].analytes)


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["oral-high-dose", "bariatric-oral", "diet-oral"])
def test_the_builtin_oral_protocols_carry_the_l11_step(code: str) -> None:
    assert ProtocolRecheckStep.objects.filter(protocol__code=code, rule="L-11", day=90).count() == 1


# --- Through the clinic calendar service ------------------------------------------------------------------


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(at(MONDAY, 9), tick=False) as traveller:
        yield traveller


@pytest.fixture
def regimen(patient: Patient, clock: Any) -> Regimen:
    regimen = regimen_start(
        patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=MONDAY
    )
    first = regimen.doses.get(phase_index=0, sequence=1)
    dose_record_administration(dose=first, administered_at=at(MONDAY))
    return regimen


def planned(regimen: Regimen) -> list[date]:
    return list(
        regimen.doses.filter(phase_index=0, status=DoseStatus.PLANNED)
        .order_by("sequence")
        .values_list("due_date", flat=True)
    )


@pytest.mark.django_db
def test_a_calendar_change_leaves_an_overdue_dose_on_its_due_date(regimen: Regimen, clinic: Clinic, clock: Any) -> None:
    # Given dose 2 (Wednesday 6th) was never recorded and today is Friday 8th
    second = regimen.doses.get(phase_index=0, sequence=2)
    clock.move_to(at(jan(8), 9))

    # When the clinic stops opening on Wednesdays
    clinic_update_calendar(clinic=clinic, open_weekdays=[0, 1, 3, 4])

    # Then dose 2 keeps its row and its due date, and is still overdue; only the future doses follow the change
    kept = ScheduledDose.objects.get(pk=second.pk)
    assert (kept.status, kept.due_date) == (DoseStatus.PLANNED, jan(6))
    assert planned(regimen) == [jan(6), jan(8), jan(11), jan(14), jan(18)]


@pytest.mark.django_db
def test_a_calendar_change_moves_a_dose_due_today(regimen: Regimen, clinic: Clinic, clock: Any) -> None:
    clock.move_to(at(jan(6), 7))

    clinic_update_calendar(clinic=clinic, closed_dates=[jan(6)])

    assert planned(regimen)[0] == jan(7)


@pytest.mark.django_db
def test_an_overdue_dose_in_the_patients_own_day_stays(clinic: Clinic, clock: Any) -> None:
    # Given a patient in Auckland: at 20:00 UTC on the 6th it is already the 7th there, so the dose of the 6th
    # is overdue for them (and would be due today for a patient in London)
    patient = PatientFactory(clinic=clinic, timezone="Pacific/Auckland")
    regimen = regimen_start(
        patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=MONDAY
    )
    clock.move_to(at(jan(3), 21))  # already Monday 4th 10:00 in Auckland
    dose_record_administration(dose=regimen.doses.get(phase_index=0, sequence=1), administered_at=at(jan(3), 21))
    clock.move_to(at(jan(6), 20))

    clinic_update_calendar(clinic=clinic, closed_dates=[jan(6)])

    assert planned(regimen)[0] == jan(6)
