"""regimens/selectors.py: the current regimen and its T0 (RULES §10 V-1)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine

from regimens.models import DoseStatus, Protocol, Regimen, ScheduledDose
from regimens.selectors import (
    current_regimen,
    current_t0,
    enrolled_at_maintenance,
    first_dose_date,
    regimen_t0,
)
from regimens.services import dose_record_administration, regimen_start, regimen_stop
from tests.timeline import T0, day, noon

pytestmark = pytest.mark.django_db


def start(patient: Any, on: date, code: str = "hydroxo-uk-standard", **options: Any) -> Regimen:
    with time_machine.travel(noon(on), tick=False):
        return regimen_start(patient=patient, protocol=Protocol.objects.get(code=code), start_date=on, options=options)


def give_first(regimen: Regimen, hour: int = 10) -> ScheduledDose:
    dose = regimen.doses.filter(status=DoseStatus.PLANNED).order_by("due_date").first()
    assert dose is not None
    when = datetime.combine(dose.due_date, datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour)
    with time_machine.travel(when, tick=False):
        return dose_record_administration(dose=dose, administered_at=when)


def stop(regimen: Regimen, on: date) -> None:
    with time_machine.travel(noon(on), tick=False):
        regimen_stop(regimen=regimen, reason="stopped for the test", acknowledge=["lifelong_therapy_stopped"])


def test_it_has_no_t0_before_the_first_dose_is_given(patient: Any) -> None:
    regimen = start(patient, T0)
    assert current_regimen(patient) == regimen
    assert regimen_t0(regimen) is None and current_t0(patient) is None


def test_it_takes_t0_from_the_first_dose_given_in_the_current_regimen(patient: Any) -> None:
    first = start(patient, T0)
    give_first(first)
    assert current_t0(patient) == T0
    stop(first, day(20))
    # A stopped regimen stays current until another starts.
    assert current_regimen(patient) == first and current_t0(patient) == T0

    second = start(patient, day(100))
    assert current_regimen(patient) == second
    assert current_t0(patient) is None  # restarted, no dose yet: no T0
    dose = give_first(second)
    assert current_t0(patient) == dose.due_date
    assert regimen_t0(first) == T0
    # The patient's first dose ever does not move (S-6).
    assert first_dose_date(patient) == T0


def test_it_uses_the_patients_local_date(patient: Any) -> None:
    patient.timezone = "Pacific/Auckland"  # UTC+13 in January
    patient.save()
    regimen = start(patient, T0)
    give_first(regimen, hour=12)  # 12:00 UTC on T0 is 01:00 on T0 + 1 in Auckland
    assert regimen_t0(regimen) == day(1)


def test_it_ignores_doses_entered_in_error(patient: Any) -> None:
    regimen = start(patient, T0)
    dose = give_first(regimen)
    ScheduledDose.objects.filter(pk=dose.pk).update(status=DoseStatus.ENTERED_IN_ERROR)
    assert regimen_t0(regimen) is None


def test_it_counts_an_enrolment_at_maintenance_from_the_last_dose_given_elsewhere(patient: Any) -> None:
    enrol = {"phase": "maintenance", "last_dose_date": "2026-12-01", "doses_given": 3}
    regimen = start(patient, T0, enrol=enrol)
    assert enrolled_at_maintenance(regimen)
    assert regimen_t0(regimen) == date(2026, 12, 1)
    give_first(regimen)
    assert regimen_t0(regimen) == date(2026, 12, 1)
    assert not enrolled_at_maintenance(Regimen(patient=patient, options={}))
