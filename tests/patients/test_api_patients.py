"""API: patients, clinics and clinic calendars, authentication."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from patients.models import Clinic, ClosedDate, Patient, Role
from regimens import services
from regimens.models import Protocol
from tests.factories import PatientFactory, UserFactory, staff_user

TODAY = "2026-12-01 09:00:00+00:00"

pytestmark = pytest.mark.django_db


def new_patient(clinic_: Clinic, **changes: Any) -> dict[str, Any]:
    return {
        "clinic": clinic_.pk,
        "mrn": "RX-1001",
        "given_name": "Ada",
        "family_name": "Okafor",
        "birth_date": "1958-03-14",
        "sex": "female",
        "email": "ada@example.org",
        "phone": "+447700900456",
        "timezone": "Europe/London",
        "language": "en",
        "neurological_involvement": True,
        "deficiency_cause": "pernicious_anemia",
        "reminder_channel": "sms",
        **changes,
    }


def ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.json()
    return {row["id"] for row in response.json()["results"]}


# --- Authentication -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/patients/", "/api/clinics/", "/api/doses/", "/api/lab-rechecks/"])
def test_it_refuses_anonymous_requests(anon_api: APIClient, path: str) -> None:
    assert anon_api.get(path).status_code == 401


def test_it_refuses_a_logged_in_user_who_works_in_no_clinic(patient: Patient) -> None:
    client = APIClient()
    client.force_authenticate(UserFactory(username="outsider"))

    response = client.get("/api/patients/")

    assert response.status_code == 403


def test_it_issues_a_token_that_authenticates_api_clients(anon_api: APIClient, nurse: Any, patient: Patient) -> None:
    # Given an API client that logs in with a username and password
    response = anon_api.post("/api/auth/token/", {"username": "nurse", "password": "pw-for-tests"}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]

    # When it calls the API with the token
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    listed = client.get("/api/patients/")

    # Then it sees the clinic's patients
    assert ids(listed) == {patient.pk}


def test_it_refuses_a_token_for_a_wrong_password(anon_api: APIClient, nurse: Any) -> None:
    response = anon_api.post("/api/auth/token/", {"username": "nurse", "password": "guess"}, format="json")

    assert response.status_code == 400
    assert "token" not in response.json()


def test_it_refuses_a_made_up_token(patient: Patient) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")

    assert client.get("/api/patients/").status_code == 401


# --- Patients -------------------------------------------------------------------------------


def test_it_creates_a_patient_in_the_users_clinic(api: APIClient, clinic: Clinic) -> None:
    response = api.post("/api/patients/", new_patient(clinic), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    stored = Patient.objects.get(pk=body["id"])
    assert (stored.clinic, stored.mrn, stored.reminder_channel) == (clinic, "RX-1001", "sms")
    assert body["birth_date"] == "1958-03-14"
    assert body["deficiency_cause"] == "pernicious_anemia"
    assert body["neurological_involvement"] is True
    assert "ical_token" not in body


def test_it_refuses_a_patient_for_another_clinic(api: APIClient, other_clinic: Clinic) -> None:
    response = api.post("/api/patients/", new_patient(other_clinic), format="json")

    assert response.status_code == 400
    assert "clinic" in response.json()
    assert not Patient.objects.exists()


def test_it_refuses_a_duplicate_mrn_in_the_same_clinic_only(
    api: APIClient, clinic: Clinic, other_clinic: Clinic
) -> None:
    PatientFactory(clinic=clinic, mrn="RX-1001")
    PatientFactory(clinic=other_clinic, mrn="RX-2002")

    duplicate = api.post("/api/patients/", new_patient(clinic), format="json")
    used_elsewhere = api.post("/api/patients/", new_patient(clinic, mrn="RX-2002"), format="json")

    assert duplicate.status_code == 400
    assert "mrn" in duplicate.json()
    assert used_elsewhere.status_code == 201


@time_machine.travel(TODAY, tick=False)
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"birth_date": "2027-01-01"}, "birth_date"),
        ({"birth_date": "2010-12-02"}, "birth_date"),  # 15 years old
        ({"birth_date": "14/03/1958"}, "birth_date"),
        ({"timezone": "London"}, "timezone"),
        ({"sex": "f"}, "sex"),
        ({"deficiency_cause": "bad luck"}, "deficiency_cause"),
        ({"reminder_channel": "pigeon"}, "reminder_channel"),
        ({"email": "not-an-email"}, "email"),
        ({"phone": "07700 900456"}, "phone"),
        ({"mrn": "   "}, "mrn"),
        ({"given_name": ""}, "given_name"),
        ({"clinic": "Riverside"}, "clinic"),
        ({"neurological_involvement": "sometimes"}, "neurological_involvement"),
    ],
)
def test_it_refuses_a_bad_patient_naming_the_field(
    api: APIClient, clinic: Clinic, changes: dict[str, Any], field: str
) -> None:
    response = api.post("/api/patients/", new_patient(clinic, **changes), format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Patient.objects.exists()


@time_machine.travel(TODAY, tick=False)
def test_it_explains_why_a_child_is_refused(api: APIClient, clinic: Clinic) -> None:
    response = api.post("/api/patients/", new_patient(clinic, birth_date="2012-06-01"), format="json")

    assert response.status_code == 400
    assert "16" in response.json()["birth_date"][0]


@time_machine.travel(TODAY, tick=False)
def test_it_accepts_a_patient_on_their_sixteenth_birthday(api: APIClient, clinic: Clinic) -> None:
    response = api.post("/api/patients/", new_patient(clinic, birth_date="2010-12-01"), format="json")

    assert response.status_code == 201, response.json()


def test_it_normalises_a_phone_number_with_spaces(api: APIClient, clinic: Clinic) -> None:
    response = api.post("/api/patients/", new_patient(clinic, phone="+44 7700 900456"), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["phone"] == "+447700900456"


def test_it_lists_and_reads_only_the_users_clinics_patients(
    api: APIClient, patient: Patient, other_clinic: Clinic
) -> None:
    theirs = PatientFactory(clinic=other_clinic)

    listed = ids(api.get("/api/patients/"))

    assert listed == {patient.pk}
    assert api.get(f"/api/patients/{patient.pk}/").json()["mrn"] == patient.mrn
    assert api.get(f"/api/patients/{theirs.pk}/").status_code == 404
    assert api.patch(f"/api/patients/{theirs.pk}/", {"given_name": "X"}, format="json").status_code == 404
    theirs.refresh_from_db()
    assert theirs.given_name != "X"


def test_it_searches_patients_by_name_and_mrn(api: APIClient, clinic: Clinic) -> None:
    ada = PatientFactory(clinic=clinic, given_name="Ada", family_name="Okafor", mrn="RX-77")
    PatientFactory(clinic=clinic, given_name="Bea", family_name="Lind", mrn="RX-88")

    assert ids(api.get("/api/patients/?search=okaf")) == {ada.pk}
    assert ids(api.get("/api/patients/?search=RX-77")) == {ada.pk}
    assert ids(api.get("/api/patients/?search=nobody")) == set()


def test_it_filters_patients_by_clinic(api: APIClient, nurse: Any, clinic: Clinic) -> None:
    # Given a nurse who works in two clinics
    second = Clinic.objects.create(name="Second Site")
    staff_user(second, Role.NURSE, username="nurse")
    here = PatientFactory(clinic=clinic)
    there = PatientFactory(clinic=second)
    client = APIClient()
    client.force_authenticate(nurse)

    assert ids(client.get("/api/patients/")) == {here.pk, there.pk}
    assert ids(client.get(f"/api/patients/?clinic={second.pk}")) == {there.pk}


def test_it_updates_a_patient_with_patch_and_put(api: APIClient, clinic: Clinic, patient: Patient) -> None:
    patched = api.patch(
        f"/api/patients/{patient.pk}/", {"reminder_channel": "none", "timezone": "America/Chicago"}, format="json"
    )
    replaced = api.put(f"/api/patients/{patient.pk}/", new_patient(clinic, mrn=patient.mrn), format="json")

    assert patched.status_code == 200, patched.json()
    assert patched.json()["reminder_channel"] == "none"
    assert replaced.status_code == 200, replaced.json()
    patient.refresh_from_db()
    assert (patient.given_name, patient.reminder_channel, patient.timezone) == ("Ada", "sms", "Europe/London")


def test_it_refuses_an_update_that_takes_another_patients_mrn(api: APIClient, clinic: Clinic, patient: Patient) -> None:
    PatientFactory(clinic=clinic, mrn="TAKEN")

    response = api.patch(f"/api/patients/{patient.pk}/", {"mrn": "TAKEN"}, format="json")

    assert response.status_code == 400
    assert "mrn" in response.json()
    patient.refresh_from_db()
    assert patient.mrn != "TAKEN"


def test_it_refuses_to_move_a_patient_to_another_clinic(api: APIClient, patient: Patient, other_clinic: Clinic) -> None:
    response = api.patch(f"/api/patients/{patient.pk}/", {"clinic": other_clinic.pk}, format="json")

    assert response.status_code == 400
    assert "clinic" in response.json()
    patient.refresh_from_db()
    assert patient.clinic_id != other_clinic.pk


def test_it_does_not_delete_patients(api: APIClient, patient: Patient) -> None:
    assert api.delete(f"/api/patients/{patient.pk}/").status_code == 405
    assert Patient.objects.filter(pk=patient.pk).exists()


# --- Clinics and calendars ------------------------------------------------------------------


def test_it_lists_only_the_users_clinics_with_their_calendars(
    api: APIClient, clinic: Clinic, other_clinic: Clinic
) -> None:
    ClosedDate.objects.create(clinic=clinic, date=date(2026, 12, 25))

    listed = api.get("/api/clinics/").json()["results"]

    assert [c["id"] for c in listed] == [clinic.pk]
    assert listed[0]["name"] == "Riverside Haematology"
    assert listed[0]["timezone"] == "Europe/London"
    assert listed[0]["open_weekdays"] == [0, 1, 2, 3, 4]
    assert listed[0]["closed_dates"] == ["2026-12-25"]
    assert api.get(f"/api/clinics/{other_clinic.pk}/").status_code == 404


@time_machine.travel(TODAY, tick=False)
def test_it_replans_future_doses_when_the_clinic_closes_a_day(
    admin_api: APIClient, clinic: Clinic, patient: Patient
) -> None:
    # Given the RULES example regimen (second loading dose on Wednesday 6 January)
    regimen = services.regimen_start(
        patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=date(2027, 1, 4)
    )

    # When the clinic closes on 6 January
    response = admin_api.post(f"/api/clinics/{clinic.pk}/calendar/", {"closed_dates": ["2027-01-06"]}, format="json")

    # Then the calendar is stored and the dose moves to the next open day
    assert response.status_code == 200, response.json()
    assert response.json()["closed_dates"] == ["2027-01-06"]
    second = regimen.doses.get(phase="loading", sequence=2, status="planned")
    assert second.due_date == date(2027, 1, 7)


@time_machine.travel(TODAY, tick=False)
def test_it_changes_the_open_weekdays(admin_api: APIClient, clinic: Clinic) -> None:
    response = admin_api.post(f"/api/clinics/{clinic.pk}/calendar/", {"open_weekdays": [5, 0, 2]}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["open_weekdays"] == [0, 2, 5]
    clinic.refresh_from_db()
    assert clinic.open_weekdays == [0, 2, 5]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"open_weekdays": [0, 7]}, "open_weekdays"),
        ({"open_weekdays": []}, "open_weekdays"),
        ({"open_weekdays": "weekdays"}, "open_weekdays"),
        ({"closed_dates": ["2027-02-30"]}, "closed_dates"),
        ({}, "detail"),
    ],
)
def test_it_refuses_a_bad_calendar_and_writes_nothing(
    admin_api: APIClient, clinic: Clinic, body: dict[str, Any], field: str
) -> None:
    response = admin_api.post(f"/api/clinics/{clinic.pk}/calendar/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    clinic.refresh_from_db()
    assert clinic.open_weekdays == [0, 1, 2, 3, 4]


def test_it_does_not_let_staff_change_another_clinics_calendar(admin_api: APIClient, other_clinic: Clinic) -> None:
    response = admin_api.post(f"/api/clinics/{other_clinic.pk}/calendar/", {"open_weekdays": [0]}, format="json")

    assert response.status_code == 404
    other_clinic.refresh_from_db()
    assert other_clinic.open_weekdays == [0, 1, 2, 3, 4]


def test_it_leaves_the_calendar_to_the_clinic_admin(api: APIClient, clinic: Clinic) -> None:
    response = api.post(f"/api/clinics/{clinic.pk}/calendar/", {"open_weekdays": [0]}, format="json")

    assert response.status_code == 403
    clinic.refresh_from_db()
    assert clinic.open_weekdays == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/lab-results/?analyte=hemo%00globin", "analyte"),
        ("/api/patients/?search=%00", "search"),
        ("/api/protocols/hydroxo%00/", "detail"),
    ],
)
def test_it_refuses_a_nul_character_in_the_url_naming_the_parameter(api: APIClient, url: str, field: str) -> None:
    response = api.get(url)

    assert response.status_code == 400
    assert field in response.json()
