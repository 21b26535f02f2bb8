"""A nurse sets a dose's appointment time from the calendar's day view (/calendar/?view=day): a time field per
planned clinic dose, defaulting to the clinic's first session, posted in place with htmx to the service that
POST /api/doses/{id}/appointment-time/ calls; the same roles and clinic boundary as the API."""

from __future__ import annotations

import re
from datetime import date, time
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from patients.models import Role
from regimens import services
from regimens.models import Protocol, ScheduledDose
from tests.factories import PatientFactory, UserFactory, staff_user

pytestmark = pytest.mark.django_db

START = date(2027, 1, 4)  # a Monday: loading doses on 4, 6, 8, 11, 13 and 15 January
DAY = date(2027, 1, 13)
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def monday() -> Any:
    with time_machine.travel("2027-01-11 09:00:00+00:00", tick=False) as traveller:
        yield traveller


@pytest.fixture
def sessions(clinic: Any) -> Any:
    clinic.session_start, clinic.session_end, clinic.slot_minutes = time(9), time(12, 30), 20
    clinic.save()
    return clinic


def on_treatment(clinic: Any, **fields: Any) -> ScheduledDose:
    patient = PatientFactory(clinic=clinic, **fields)
    services.regimen_start(patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=START)
    return ScheduledDose.objects.get(patient=patient, status="planned", due_date=DAY)


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def day_page(client: Client) -> str:
    response = client.get(f"/calendar/?view=day&date={DAY}")
    assert response.status_code == 200
    return response.content.decode()


def time_input(body: str, dose: ScheduledDose) -> str:
    match = re.search(rf'<input [^>]*id="dose{dose.pk}-appointment_time"[^>]*>', body)
    assert match, f"no time field for dose {dose.pk}"
    return match.group(0)


def set_time(client: Client, dose: ScheduledDose, value: str, **extra: Any) -> Any:
    return client.post(f"/doses/{dose.pk}/appointment-time/", {f"dose{dose.pk}-appointment_time": value}, **extra)


def test_each_dose_of_the_day_has_a_time_field_defaulting_to_the_first_session(sessions: Any, nurse: Any) -> None:
    dose = on_treatment(sessions, family_name="Adeyemi", given_name="Tola")
    field = time_input(day_page(signed_in(nurse)), dose)
    assert 'type="time"' in field and 'value="09:00"' in field
    assert 'min="09:00"' in field and 'max="12:30"' in field and 'step="1200"' in field
    body = day_page(signed_in(nurse))
    assert "Session 09:00 to 12:30" in body and 'hx-post="/doses/' in body
    assert "regimens/worklist.js" in body  # a refused time swaps in place too (no inline script)


def test_a_nurse_sets_the_time_in_place_and_the_api_and_the_page_show_it(
    sessions: Any, nurse: Any, nurse_api: Any
) -> None:
    dose = on_treatment(sessions, given_name="Tola", family_name="Adeyemi")
    client = signed_in(nurse)
    response = set_time(client, dose, "10:20", **HTMX)
    assert response.status_code == 200
    cell = response.content.decode()
    assert cell.lstrip().startswith(f'<td class="nhsuk-table__cell app-appointment-time" id="dose-{dose.pk}-time">')
    assert 'value="10:20"' in cell and "Tola Adeyemi: appointment at 10:20." in cell
    dose.refresh_from_db()
    assert dose.appointment_time == time(10, 20)
    assert dose.history.first().history_user == nurse  # audited, as through the API
    assert nurse_api.get(f"/api/doses/{dose.pk}/").json()["appointment_time"] == "10:20"
    assert 'value="10:20"' in time_input(day_page(client), dose)

    # Emptied: back to the clinic's default, the session's start.
    cleared = set_time(client, dose, "", **HTMX)
    assert cleared.status_code == 200 and "appointment at 09:00" in cleared.content.decode()
    dose.refresh_from_db()
    assert dose.appointment_time is None


def test_a_time_outside_the_session_is_refused_in_place_naming_the_field(sessions: Any, nurse: Any) -> None:
    dose = on_treatment(sessions)
    response = set_time(signed_in(nurse), dose, "13:00", **HTMX)
    assert response.status_code == 400
    cell = response.content.decode()
    assert "must be within the clinic&#x27;s session, 09:00 to 12:30" in cell
    assert "nhsuk-form-group--error" in cell and 'value="13:00"' in cell  # what was typed, to correct
    garbled = set_time(signed_in(nurse), dose, "ten past", **HTMX)
    assert garbled.status_code == 400 and "Enter a valid time." in garbled.content.decode()
    dose.refresh_from_db()
    assert dose.appointment_time is None  # nothing written


def test_without_javascript_the_form_posts_and_returns_to_the_day(sessions: Any, nurse: Any) -> None:
    dose = on_treatment(sessions, given_name="Tola", family_name="Adeyemi")
    client = signed_in(nurse)
    response = set_time(client, dose, "11:00")
    assert response.status_code == 302 and response["Location"] == f"/calendar/?view=day&date={DAY}"
    dose.refresh_from_db()
    assert dose.appointment_time == time(11)
    assert "Tola Adeyemi: appointment at 11:00." in client.get(response["Location"]).content.decode()
    refused = client.get(set_time(client, dose, "08:00")["Location"]).content.decode()
    assert "Tola Adeyemi: Appointment time: must be within the clinic&#x27;s session" in refused


def test_a_given_dose_has_no_appointment_to_move(sessions: Any, nurse: Any, monday: Any) -> None:
    first = on_treatment(sessions).regimen.doses.get(due_date=START)
    monday.move_to("2027-01-04 11:00:00+00:00")
    services.dose_record_administration(dose=first, administered_at=timezone.now(), user=nurse)
    response = set_time(signed_in(nurse), first, "10:00", **HTMX)
    assert response.status_code == 409
    assert "only a planned dose has an appointment" in response.content.decode()


@pytest.mark.parametrize("role", [Role.NURSE, Role.CLINICIAN, Role.ADMIN])
def test_every_staff_role_of_the_clinic_may_set_a_time_as_in_the_api(sessions: Any, role: str) -> None:
    dose = on_treatment(sessions)
    user = staff_user(sessions, role, username="sam")
    assert set_time(signed_in(user), dose, "09:40", **HTMX).status_code == 200


def test_another_clinic_is_a_404_and_outsiders_are_refused(sessions: Any, other_clinic: Any, nurse: Any) -> None:
    dose = on_treatment(sessions)
    outsider = staff_user(other_clinic, Role.NURSE, username="outsider")
    assert set_time(signed_in(outsider), dose, "10:00", **HTMX).status_code == 404
    assert set_time(signed_in(UserFactory()), dose, "10:00").status_code == 403  # works in no clinic
    visitor = set_time(Client(), dose, "10:00")
    assert visitor.status_code == 302 and visitor["Location"].startswith("/login/")
    assert signed_in(nurse).get(f"/doses/{dose.pk}/appointment-time/").status_code == 405
    dose.refresh_from_db()
    assert dose.appointment_time is None
    # Not the family name alone: the factories' random names let it turn up inside the outsider's clinic name.
    outsiders_day = day_page(signed_in(outsider))
    assert f"/doses/{dose.pk}/appointment-time/" not in outsiders_day
    assert escape(f"{dose.patient.family_name}, {dose.patient.given_name}") not in outsiders_day


def test_a_home_dose_has_no_time_field(clinic: Any, nurse: Any) -> None:
    dose = on_treatment(clinic)
    ScheduledDose.objects.filter(pk=dose.pk).update(self_administered=True)
    body = signed_in(nurse).get(f"/calendar/?view=day&date={DAY}&home=1").content.decode()
    assert f'id="dose{dose.pk}-appointment_time"' not in body and "At home" in body
    refused = set_time(signed_in(nurse), dose, "10:00", **HTMX)
    assert refused.status_code == 400 and "At home" in refused.content.decode()  # the service refuses it


@pytest.mark.parametrize("patients", [1, 6])
def test_the_day_view_with_its_time_fields_costs_the_same_queries_however_many_doses(
    sessions: Any, nurse: Any, patients: int, django_assert_max_num_queries: Any
) -> None:
    for _ in range(patients):
        on_treatment(sessions)
    client = signed_in(nurse)
    with django_assert_max_num_queries(13):  # with the doses' warnings (RULES §10 V-12), 4 queries for them all
        body = day_page(client)
    assert body.count('type="time"') == patients
