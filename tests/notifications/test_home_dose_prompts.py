"""Patients who take their doses at home (oral phases) get a short note every month from their first home dose
(REMINDER_HOME_DOSE_EVERY_MONTHS, issue 15 [P]) and the reminder of their month-3 review (the L-11 recheck),
with nothing clinical, one message a day at most."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.core import mail

from notifications.models import Delivery
from regimens.models import LabRecheck, Protocol
from regimens.services import regimen_start
from tests.factories import PatientFactory
from tests.notifications.test_reminders import clinical_words_in
from tracker import sweeps

pytestmark = pytest.mark.django_db

START = date(2027, 1, 4)


def utc(on: date, hour: int) -> datetime:
    return datetime(on.year, on.month, on.day, hour, tzinfo=UTC)


def start_oral(clinic: Any, clock: Any, **fields: Any) -> Any:
    clock.move_to(utc(START - timedelta(days=3), 9))
    patient = PatientFactory(clinic=clinic, given_name="Jo", deficiency_cause="diet", **fields)
    regimen_start(patient=patient, protocol=Protocol.objects.get(code="diet-oral"), start_date=START)
    return patient


def step(until: date, clock: Any) -> dict[date, list[str]]:
    received: dict[date, list[str]] = {}
    day = START
    while day <= until:
        clock.move_to(utc(day, 10))
        before = len(mail.outbox)
        with sweeps.delivering_inline():  # as `manage.py run_sweeps --at` does
            sweeps.run_all(utc(day, 10))
        if len(mail.outbox) > before:
            received[day] = [f"{m.subject}\n{m.body}" for m in mail.outbox[before:]]
        day += timedelta(days=1)
    return received


def test_a_note_every_month_and_the_month_3_review_reminder(clinic: Any, clock: Any) -> None:
    patient = start_oral(clinic, clock)
    review = LabRecheck.objects.get(patient=patient, rule="L-11")
    received = step(date(2027, 4, 10), clock)
    notes = [d for d, ms in received.items() if ms[0].startswith("A monthly note from Riverside Haematology")]
    assert notes == [date(2027, 2, 4), date(2027, 3, 4), date(2027, 4, 4)]  # a month after each, from 4 January
    (month_3,) = received[review.window_start - timedelta(days=2)]  # two days before its window opens
    assert "Please book an appointment at Riverside Haematology between Sunday 21 March 2027" in month_3
    assert month_3.count("Please book") == 1  # the L-8 and L-11 checks due together: one line, one message
    for messages_of_the_day in received.values():
        assert len(messages_of_the_day) == 1
        assert clinical_words_in(messages_of_the_day[0]) == []
    assert "keep to the plan you agreed with us, every day" in received[date(2027, 2, 4)][0]


def test_no_note_when_switched_off(clinic: Any, clock: Any, settings: Any) -> None:
    settings.COBALT = {**settings.COBALT, "REMINDER_HOME_DOSE_EVERY_MONTHS": 0}
    start_oral(clinic, clock)
    assert not Delivery.objects.filter(purpose="home_dose_prompt").exists()
    step(date(2027, 2, 5), clock)
    assert not Delivery.objects.filter(purpose="home_dose_prompt").exists()


def test_a_spanish_note(clinic: Any, clock: Any) -> None:
    start_oral(clinic, clock, language="es")
    step(date(2027, 2, 4), clock)  # the horizons sweep keeps the home doses planned ahead
    (note,) = Delivery.objects.filter(purpose="home_dose_prompt")
    assert note.subject == "Una nota mensual de Riverside Haematology"
    assert "siga cada día el plan" in note.body
