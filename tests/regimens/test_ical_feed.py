"""The patient's calendar feed GET /ical/{token}.ics (regimens/ical.py): parsed with icalendar and compared
with the doses the API plans, across a re-plan; cancelled doses cancelled; nothing clinical; the token
rotated by staff stops the old address at once and never reaches a log."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from icalendar import Calendar

from regimens.models import Protocol, ScheduledDose
from regimens.services import dose_record_administration, dose_record_not_given, regimen_start, regimen_stop
from tests.conftest import client_for
from tests.factories import PatientFactory, staff_user
from tests.notifications.test_reminders import clinical_words_in

pytestmark = pytest.mark.django_db

START = date(2027, 1, 4)  # a Monday; hydroxo-uk-standard loads on 4, 6, 8, 11, 13, 15 January


def at(on: date, hour: int = 11) -> datetime:
    return datetime(on.year, on.month, on.day, hour, tzinfo=UTC)


@pytest.fixture
def patient(clinic: Any, clock: Any) -> Any:
    clinic.phone = "020 7946 0000"
    clinic.address = "1 River Road\nLondon SE1 7AA"
    clinic.save()
    clock.move_to(at(START - timedelta(days=3)))
    return PatientFactory(clinic=clinic, given_name="Jo")


def start(patient: Any, code: str = "hydroxo-uk-standard") -> Any:
    return regimen_start(patient=patient, protocol=Protocol.objects.get(code=code), start_date=START)


def feed(patient: Any, client: Client | None = None) -> Calendar:
    patient.refresh_from_db()
    response = (client or Client()).get(f"/ical/{patient.ical_token}.ics")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert "no-store" in response["Cache-Control"]
    return Calendar.from_ical(response.content)


def events(calendar: Calendar) -> dict[str, tuple[date, str]]:
    """{uid: (day, status)} of every event."""
    return {str(e["UID"]): (e.decoded("DTSTART"), str(e["STATUS"])) for e in calendar.walk("VEVENT")}


def api_planned_doses(api: Any, patient: Any) -> dict[int, date]:
    body = api.get("/api/doses/", {"patient": patient.pk, "status": "planned", "page_size": 500}).json()
    return {row["id"]: date.fromisoformat(row["due_date"]) for row in body["results"] if not row["self_administered"]}


def dose_uid(dose_id: int) -> str:
    return f"cobalt-visit-{dose_id}@cobalt"


def test_every_planned_dose_of_the_api_is_an_event_and_a_replan_moves_them_under_the_same_uid(
    patient: Any, nurse_api: Any, clock: Any
) -> None:
    start(patient)
    planned = api_planned_doses(nurse_api, patient)
    before = events(feed(patient))
    assert len(planned) >= 6
    for dose_id, due in planned.items():
        assert before[dose_uid(dose_id)] == (due, "CONFIRMED")

    # The first dose given on its day, the second two days late: every later dose is re-planned.
    clock.move_to(at(START, 12))
    first, second = ScheduledDose.objects.filter(patient=patient, status="planned").order_by("due_date")[:2]
    dose_record_administration(dose=first, administered_at=at(START))
    clock.move_to(at(date(2027, 1, 8), 12))
    dose_record_administration(dose=second, administered_at=at(date(2027, 1, 8)))

    replanned = api_planned_doses(nurse_api, patient)
    after = events(feed(patient))
    moved = [dose_id for dose_id in replanned if replanned[dose_id] != planned.get(dose_id)]
    assert moved, "giving a dose late re-plans the later ones"
    for dose_id, due in replanned.items():
        assert after[dose_uid(dose_id)] == (due, "CONFIRMED")
    # The same events, moved (not new ones beside the old): the given doses stay as past appointments.
    assert set(after) >= set(before)
    assert after[dose_uid(second.pk)] == (date(2027, 1, 8), "CONFIRMED")  # on the day it was given


def test_a_dose_not_given_is_cancelled_and_its_replacement_is_a_new_event(patient: Any, clock: Any) -> None:
    start(patient)
    first = ScheduledDose.objects.filter(patient=patient, status="planned").order_by("due_date").first()
    assert first is not None
    clock.move_to(at(START, 16))
    dose_record_not_given(dose=first, reason="did not attend", on=START)
    replacement = ScheduledDose.objects.get(regimen=first.regimen, phase_index=0, sequence=1, status="planned")
    shown = events(feed(patient))
    assert shown[dose_uid(first.pk)] == (START, "CANCELLED")
    assert shown[dose_uid(replacement.pk)][1] == "CONFIRMED"


def test_stopping_the_regimen_cancels_every_planned_appointment(patient: Any, clinician: Any) -> None:
    regimen = start(patient)
    planned = set(ScheduledDose.objects.filter(patient=patient, status="planned").values_list("id", flat=True))
    regimen_stop(regimen=regimen, reason="treated elsewhere", acknowledge=["lifelong_therapy_stopped"], user=clinician)
    shown = events(feed(patient))
    assert {shown[dose_uid(pk)][1] for pk in planned} == {"CANCELLED"}
    assert {status for _day, status in shown.values()} == {"CANCELLED"}


def test_the_feed_is_valid_names_the_clinic_and_its_address_and_nothing_clinical(patient: Any) -> None:
    start(patient)
    calendar = feed(patient)
    assert str(calendar["VERSION"]) == "2.0" and "PRODID" in calendar
    assert calendar.decoded("REFRESH-INTERVAL") == timedelta(hours=6)
    rechecks = [e for e in calendar.walk("VEVENT") if "booking" in str(e["UID"])]
    assert rechecks, "lab rechecks are appointments too"
    for event in calendar.walk("VEVENT"):
        assert {"UID", "DTSTAMP", "DTSTART", "SUMMARY"} <= set(event)
        assert str(event["SUMMARY"]) == "Appointment at Riverside Haematology"
        assert str(event["LOCATION"]) == "Riverside Haematology, 1 River Road, London SE1 7AA"
        assert "020 7946 0000" in str(event["DESCRIPTION"])
    text = calendar.to_ical().decode()
    assert clinical_words_in(text) == []


def test_oral_doses_taken_at_home_are_not_appointments(patient: Any) -> None:
    patient.deficiency_cause = "diet"
    patient.save()
    start(patient, "diet-oral")
    home = ScheduledDose.objects.filter(patient=patient, self_administered=True).values_list("id", flat=True)
    assert home
    assert not set(map(dose_uid, home)) & set(events(feed(patient)))


def test_a_spanish_speaking_patient_gets_spanish_events(patient: Any) -> None:
    patient.language = "es"
    patient.save()
    start(patient)
    summaries = {str(e["SUMMARY"]) for e in feed(patient).walk("VEVENT")}
    assert summaries == {"Cita en Riverside Haematology"}


def test_an_unknown_token_is_404_without_saying_more(db: Any) -> None:
    assert Client().get("/ical/not-a-real-token-at-all-xyz.ics").status_code == 404
    assert Client().get("/ical/x.ics").status_code == 404
    assert Client().post("/ical/not-a-real-token-at-all-xyz.ics").status_code == 405


def test_staff_rotate_the_link_and_the_old_address_stops_at_once(patient: Any, nurse_api: Any) -> None:
    old = patient.ical_token
    response = nurse_api.post(f"/api/patients/{patient.pk}/rotate-calendar-link/")
    assert response.status_code == 200
    patient.refresh_from_db()
    assert patient.ical_token != old and len(patient.ical_token) >= 32
    assert response.json()["ical_url"] == f"http://testserver/ical/{patient.ical_token}.ics"
    assert Client().get(f"/ical/{old}.ics").status_code == 404
    assert Client().get(f"/ical/{patient.ical_token}.ics").status_code == 200
    assert patient.history.first().history_change_reason == "calendar link renewed by staff"


def test_staff_of_another_clinic_cannot_rotate_it(patient: Any, other_clinic: Any) -> None:
    outsider = client_for(staff_user(other_clinic, "admin", username="outsider"))
    old = patient.ical_token
    assert outsider.post(f"/api/patients/{patient.pk}/rotate-calendar-link/").status_code == 404
    patient.refresh_from_db()
    assert patient.ical_token == old


def test_tokens_are_random_not_derived_from_ids(clinic: Any) -> None:
    tokens = {PatientFactory(clinic=clinic).ical_token for _ in range(5)}
    assert len(tokens) == 5
    assert all(len(t) >= 32 for t in tokens)


def test_the_token_never_reaches_django_or_gunicorn_logs(patient: Any, caplog: Any) -> None:
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    secret = patient.ical_token
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    logging.getLogger("gunicorn.access").addHandler(handler)
    with caplog.at_level(logging.INFO):
        Client().get(f"/ical/{secret}x.ics")  # a 404: Django logs "Not Found: <path>"
        access = Logger(Config())
        request = type("Req", (), {"method": "GET", "path": f"/ical/{secret}.ics", "query": "", "version": (1, 1),
                                   "headers": [], "uri": f"/ical/{secret}.ics"})()
        response = type("Resp", (), {"status": "200 OK", "sent": 10, "headers": [], "response_length": 10})()
        access.cfg.set("accesslog", "-")
        access.access(response, request, {
            "REMOTE_ADDR": "127.0.0.1", "REQUEST_METHOD": "GET", "RAW_URI": f"/ical/{secret}.ics",
            "PATH_INFO": f"/ical/{secret}.ics", "SERVER_PROTOCOL": "HTTP/1.1"},
                      timedelta(milliseconds=5))
    logging.getLogger("gunicorn.access").removeHandler(handler)
    messages = [record.getMessage() for record in [*caplog.records, *seen]]
    assert any("Not Found: /ical/[redacted]" in m for m in messages)
    assert any("GET /ical/[redacted]" in m for m in messages)
    assert not [m for m in messages if secret in m]
