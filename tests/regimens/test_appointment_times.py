"""Appointment times: a clinic sets its session hours and slot length, a nurse gives a planned dose a time
(POST /api/doses/{id}/appointment-time/), a dose without one is at the session's start; the calendar feed,
the reminders and the portal show it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from django.test import Client
from icalendar import Calendar

from notifications.models import Delivery
from regimens.models import Protocol, ScheduledDose
from regimens.services import dose_record_administration, regimen_start
from tests.conftest import client_for
from tests.factories import PatientFactory, staff_user
from tracker import sweeps

pytestmark = pytest.mark.django_db

START = date(2027, 1, 4)  # a Monday; hydroxo-uk-standard loads on 4, 6, 8, 11, 13, 15 January


def at(on: date, hour: int) -> datetime:
    return datetime(on.year, on.month, on.day, hour, tzinfo=UTC)


@pytest.fixture
def patient(clinic: Any, clock: Any) -> Any:
    clinic.session_start, clinic.session_end, clinic.slot_minutes = time(9), time(12, 30), 20
    clinic.save()
    clock.move_to(at(START - timedelta(days=3), 9))
    patient = PatientFactory(clinic=clinic, given_name="Jo")
    regimen_start(patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=START)
    return patient


def dose_on(patient: Any, day: date) -> ScheduledDose:
    return ScheduledDose.objects.get(patient=patient, status="planned", due_date=day)


def set_time(api: Any, dose: ScheduledDose, value: str | None) -> Any:
    return api.post(f"/api/doses/{dose.pk}/appointment-time/", {"appointment_time": value}, format="json")


def test_a_nurse_sets_a_time_within_the_session_and_the_error_names_the_field(patient: Any, nurse_api: Any) -> None:
    dose = dose_on(patient, date(2027, 1, 6))
    response = set_time(nurse_api, dose, "11:15")
    assert response.status_code == 200 and response.json()["appointment_time"] == "11:15"
    assert set_time(nurse_api, dose, "11:15:00Z").status_code == 400  # no offset on a clinic-local time
    late = set_time(nurse_api, dose, "13:00")
    assert late.status_code == 400
    assert late.json() == {"appointment_time": ["must be within the clinic's session, 09:00 to 12:30"]}
    assert set_time(nurse_api, dose, None).json()["appointment_time"] is None
    dose.refresh_from_db()
    assert [h.appointment_time for h in dose.history.order_by("history_date")][-2:] == [time(11, 15), None]


def test_a_given_dose_has_no_appointment_to_move_and_another_clinic_cannot_see_it(
    patient: Any, nurse_api: Any, other_clinic: Any, clock: Any
) -> None:
    dose = dose_on(patient, START)
    clock.move_to(at(START, 12))
    dose_record_administration(dose=dose, administered_at=at(START, 10))
    assert set_time(nurse_api, dose, "10:00").status_code == 409
    outsider = client_for(staff_user(other_clinic, "nurse", username="outsider"))
    assert set_time(outsider, dose_on(patient, date(2027, 1, 8)), "10:00").status_code == 404


def test_the_feed_has_timed_events_in_the_clinic_zone(patient: Any, nurse_api: Any) -> None:
    set_time(nurse_api, dose_on(patient, date(2027, 1, 6)), "11:15")
    calendar = Calendar.from_ical(Client().get(f"/ical/{patient.ical_token}.ics").content)
    assert calendar.walk("VTIMEZONE"), "the clinic's zone is described in the feed"
    starts = {e.decoded("DTSTART"): e.decoded("DTEND") for e in calendar.walk("VEVENT") if "visit" in str(e["UID"])}
    own = datetime(2027, 1, 6, 11, 15).replace(tzinfo=next(iter(starts)).tzinfo)
    assert starts[own] - own == timedelta(minutes=20)
    default = [s for s in starts if s.date() == date(2027, 1, 8)]
    assert [s.time() for s in default] == [time(9)]  # the session's start
    assert all(str(s.tzinfo) in ("Europe/London", "GMT") or s.utcoffset() == timedelta(0) for s in starts)


def test_reminders_and_the_portal_say_the_time(patient: Any, nurse_api: Any) -> None:
    set_time(nurse_api, dose_on(patient, date(2027, 1, 6)), "11:15")
    sweeps.run("reminders", at(date(2027, 1, 3), 6))
    sweeps.run("reminders", at(date(2027, 1, 5), 6))
    bodies = [d.body for d in Delivery.objects.filter(patient=patient, purpose="dose_reminder").order_by("due_at")]
    assert "Monday 4 January 2027 at 09:00" in bodies[0]
    assert "Wednesday 6 January 2027 at 11:15" in bodies[1]


def test_the_clinic_api_shows_its_session_hours_on_its_own_clock(patient: Any, nurse_api: Any) -> None:
    body = nurse_api.get(f"/api/clinics/{patient.clinic_id}/").json()
    assert (body["session_start"], body["session_end"], body["slot_minutes"]) == ("09:00", "12:30", 20)
