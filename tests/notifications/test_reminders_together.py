"""Reminders that make sense together (notifications/reminders.py): stepping `run_sweeps --at` day by day over a
missed appointment and a re-plan, the patient gets exactly one message a day at most, and never two that
contradict each other: a missed-appointment follow-up and the next reminder due the same day are one
message; a re-planned appointment they had been told about gets one "your appointment moved" message."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command

from notifications import messages
from notifications.models import Delivery
from regimens.models import Protocol, ScheduledDose
from regimens.services import dose_record_administration, regimen_start
from tests.factories import PatientFactory
from tests.notifications.test_reminders import clinical_words_in

pytestmark = pytest.mark.django_db

START = date(2027, 1, 4)  # a Monday; hydroxo-uk-standard loads on 4, 6, 8, 11, 13, 15 January


def utc(on: date, hour: int) -> datetime:
    return datetime(on.year, on.month, on.day, hour, tzinfo=UTC)


def sweep(at: datetime) -> None:
    call_command("run_sweeps", "--at", at.isoformat(), stdout=StringIO())


def give(patient: Any, due: date, on: date, clock: Any) -> None:
    clock.move_to(utc(on, 11))
    dose = ScheduledDose.objects.get(patient=patient, status="planned", due_date=due)
    dose_record_administration(dose=dose, administered_at=utc(on, 11))


def test_day_by_day_a_missed_appointment_and_a_replan_give_one_clear_message_a_day(clinic: Any, clock: Any) -> None:
    clinic.phone = "020 7946 0000"
    clinic.save()
    clock.move_to(utc(START - timedelta(days=3), 9))
    patient = PatientFactory(clinic=clinic, given_name="Jo")
    regimen_start(patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=START)
    # Jo comes on Monday 4, misses Wednesday 6, comes on Friday 8 (given the missed one, so the rest move on).
    received: dict[date, list[str]] = {}
    day = START - timedelta(days=2)
    while day <= date(2027, 1, 12):
        clock.move_to(utc(day, 10))
        before = len(mail.outbox)
        sweep(utc(day, 10))  # 10:00 in London in January
        received[day] = [f"{m.subject}\n{m.body}" for m in mail.outbox[before:]]
        if day == START:
            give(patient, START, START, clock)
        if day == date(2027, 1, 8):
            give(patient, date(2027, 1, 6), date(2027, 1, 8), clock)
            clock.move_to(utc(day, 15))
            before = len(mail.outbox)
            sweep(utc(day, 15))  # the afternoon run after the re-plan
            received[day] += [f"{m.subject}\n{m.body}" for m in mail.outbox[before:]]
        day += timedelta(days=1)

    planned = list(
        ScheduledDose.objects.filter(patient=patient, status="planned")
        .order_by("due_date")
        .values_list("due_date", flat=True)
    )
    next_after_friday = planned[0]
    assert next_after_friday > date(2027, 1, 8), "giving the missed dose on Friday re-plans the next one"

    def fmt(d: date) -> str:
        return messages.format_date(d, "en")

    told = {d: [m.split("\n")[0] for m in ms] for d, ms in received.items() if ms}
    assert told == {
        date(2027, 1, 3): ["Reminder: your appointment at Riverside Haematology on " + fmt(date(2027, 1, 4))],
        date(2027, 1, 5): ["Reminder: your appointment at Riverside Haematology on " + fmt(date(2027, 1, 6))],
        # Missed Wednesday, and Friday is next: one message, both said in order.
        date(2027, 1, 7): ["Your appointments at Riverside Haematology"],
        # Friday's visit moved the next appointment: one "moved" message that afternoon.
        date(2027, 1, 8): ["Your appointment at Riverside Haematology has moved"],
        next_after_friday - timedelta(days=1): [
            "Reminder: your appointment at Riverside Haematology on " + fmt(next_after_friday)
        ],
        # Jo misses that one too: again one message, the missed day and the next one.
        next_after_friday + timedelta(days=1): ["Your appointments at Riverside Haematology"],
    }
    (merged,) = received[date(2027, 1, 7)]
    assert f"was on {fmt(date(2027, 1, 6))} and we have not seen you yet" in merged
    assert f"Your next appointment at Riverside Haematology is on {fmt(date(2027, 1, 8))}" in merged
    assert merged.index("was on") < merged.index("next appointment")
    (moved,) = received[date(2027, 1, 8)]
    assert f"has moved from {fmt(date(2027, 1, 8))} to {fmt(next_after_friday)}" in moved
    for day_messages in received.values():
        assert len(day_messages) <= 1
        for message in day_messages:
            assert clinical_words_in(message) == []
            assert "020 7946 0000" in message
    (again,) = received[next_after_friday + timedelta(days=1)]
    assert f"was on {fmt(next_after_friday)}" in again and f"is on {fmt(planned[1])}" in again
    # The messages folded into another are in the delivery log, not lost.
    folded = Delivery.objects.filter(patient=patient, status="cancelled", last_error__startswith="merged into")
    assert folded.count() == 2


def test_a_spanish_speaking_patient_gets_the_merged_message_in_spanish(clinic: Any, clock: Any) -> None:
    clock.move_to(utc(START - timedelta(days=3), 9))
    patient = PatientFactory(clinic=clinic, given_name="Ana", language="es")
    regimen_start(patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=START)
    for day in [START - timedelta(days=1), START, START + timedelta(days=1), START + timedelta(days=2),
                START + timedelta(days=3)]:
        clock.move_to(utc(day, 10))
        sweep(utc(day, 10))
    merged = [m for m in mail.outbox if m.subject == "Sus citas en Riverside Haematology"]
    # Monday and Wednesday both missed: Wednesday's follow-up (Thursday) and Friday's reminder are one.
    assert merged, [m.subject for m in mail.outbox]
    assert "todavía no ha venido" in merged[-1].body and "Su próxima cita" in merged[-1].body
    assert clinical_words_in(merged[-1].body) == []
