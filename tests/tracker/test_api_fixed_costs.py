"""The fixed cost of a list request (issue 16): a token brings its user's clinics in the same statement, a FilterSet
class builds its form class once, and only the choice filters a request gives are narrowed to the user's clinics (the
browsable API's filter form narrows them all). None of it changes what a request answers."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace
from typing import Any

import pytest
import time_machine
from django.db.models import QuerySet
from rest_framework.test import APIClient

from patients.models import Clinic, Patient, Role
from regimens.filters import DoseFilter
from regimens.models import ScheduledDose
from tests.factories import ClinicMembershipFactory, PatientFactory, RegimenFactory, UserFactory, staff_user
from tracker.api import filterset_form
from tracker.authentication import token_issue
from tracker.permissions import staff_clinic_ids

pytestmark = pytest.mark.django_db

DAY = date(2027, 1, 20)


def a_dose(patient: Patient, due: date = DAY) -> ScheduledDose:
    regimen = RegimenFactory(patient=patient)
    return ScheduledDose.objects.create(
        regimen=regimen, patient=patient, phase_index=0, phase="loading", sequence=1, due_date=due,
        drug="hydroxocobalamin", dose_mcg=1000, route="IM",
    )  # fmt: skip


def token_client(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(user)}")
    return client


# --- The user's clinics come with the token ----------------------------------------------------------------


@time_machine.travel("2027-01-20 09:00:00+00:00", tick=False)
@pytest.mark.parametrize(("query", "queries"), [(f"due_from={DAY}&due_to={DAY}", 3), ("overdue=true", 4)])
def test_a_token_request_to_the_worklist_reads_no_membership_of_its_own(
    clinic: Clinic, nurse: Any, query: str, queries: int, django_assert_num_queries: Any
) -> None:
    """The token with its user and their clinics, the count and the page (overdue: and the clinic's patients' zones);
    before issue 16's change the user's clinics were a query of their own (4 and 5)."""
    a_dose(PatientFactory(clinic=clinic), DAY if "due_from" in query else date(2027, 1, 10))
    client = token_client(nurse)

    with django_assert_num_queries(queries):
        response = client.get(f"/api/doses/?clinic={clinic.pk}&{query}")

    assert response.status_code == 200 and response.json()["count"] == 1


def test_a_token_answers_the_users_clinics_as_their_memberships_do(clinic: Clinic, other_clinic: Clinic) -> None:
    """A member of two clinics lists both clinics' doses and none of a third's, as with a session; a user of no
    clinic is refused (IsClinicStaff) whether the clinics come with the token or from their own query."""
    both = staff_user(clinic, Role.NURSE, username="both")
    ClinicMembershipFactory(user=both, clinic=other_clinic, role=Role.CLINICIAN)
    mine = {a_dose(PatientFactory(clinic=c)).pk for c in (clinic, other_clinic)}
    a_dose(PatientFactory(clinic=Clinic.objects.create(name="Third", timezone="UTC")))
    session = APIClient()
    session.force_login(both)

    by_token = token_client(both).get("/api/doses/?page_size=500")
    by_session = session.get("/api/doses/?page_size=500")

    assert by_token.status_code == 200
    assert {row["id"] for row in by_token.json()["results"]} == mine
    assert by_token.content == by_session.content
    nobody = UserFactory(username="nobody")
    assert token_client(nobody).get("/api/doses/").status_code == 403
    both.refresh_from_db()
    assert sorted(staff_clinic_ids(both)) == sorted([clinic.pk, other_clinic.pk])


# --- A FilterSet class's form class is built once ---------------------------------------------------------


def test_a_filtersets_form_class_is_built_once_and_each_form_has_its_own_fields(clinic: Clinic) -> None:
    first = filterset_form(DoseFilter({"status": "planned"}, ScheduledDose.objects.all()))
    second = filterset_form(DoseFilter({"status": "lost"}, ScheduledDose.objects.all()))

    assert type(first) is type(second)
    assert first.fields["patient"] is not second.fields["patient"]
    first.fields["patient"].queryset = Patient.objects.none()  # as the backend narrows one request's form
    patients: QuerySet[Patient] = second.fields["patient"].queryset
    assert patients.query.where.children == []  # the other form's rows are untouched
    assert first.is_valid() and first.cleaned_data["status"] == "planned"
    assert not second.is_valid() and list(second.errors) == ["status"]


# --- Choice filters stay narrowed to the user's clinics ---------------------------------------------------


@pytest.mark.parametrize("name", ["patient", "regimen"])
def test_another_clinics_row_in_a_choice_filter_is_the_same_400_as_an_unknown_id(
    api: APIClient, clinic: Clinic, other_clinic: Clinic, name: str
) -> None:
    mine, theirs = a_dose(PatientFactory(clinic=clinic)), a_dose(PatientFactory(clinic=other_clinic))
    mine_id, their_id = (getattr(dose, f"{name}_id") for dose in (mine, theirs))

    listed = api.get(f"/api/doses/?{name}={mine_id}")
    refused = api.get(f"/api/doses/?{name}={their_id}")
    unknown = api.get(f"/api/doses/?{name}=987654")

    assert listed.status_code == 200 and [row["id"] for row in listed.json()["results"]] == [mine.pk]
    assert refused.status_code == unknown.status_code == 400
    assert refused.json()[name] == [m.replace("987654", str(their_id)) for m in unknown.json()[name]]


def test_the_browsable_apis_filter_form_offers_only_the_users_clinics_patients(
    api: APIClient, clinic: Clinic, other_clinic: Clinic
) -> None:
    mine = PatientFactory(clinic=clinic, family_name="Mineowner")
    theirs = PatientFactory(clinic=other_clinic, family_name="Elsewhereperson")
    a_dose(mine)

    page = api.get("/api/doses/", HTTP_ACCEPT="text/html")

    assert page.status_code == 200
    html = page.content.decode()
    assert f'value="{mine.pk}"' in html and "Mineowner" in html
    assert "Elsewhereperson" not in html and theirs.pk != mine.pk


def test_on_another_database_a_token_request_reads_the_users_clinics_itself(
    clinic: Clinic, nurse: Any, monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
) -> None:
    """make run's SQLite demo has no ARRAY subquery: the token comes alone and staff_clinic_ids reads the clinics."""
    a_dose(PatientFactory(clinic=clinic))
    client = token_client(nurse)
    monkeypatch.setattr("tracker.permissions.connection", SimpleNamespace(vendor="sqlite"))

    with django_assert_num_queries(4):  # the token, the user's clinics, the count, the page
        response = client.get(f"/api/doses/?clinic={clinic.pk}")

    assert response.status_code == 200 and response.json()["count"] == 1
