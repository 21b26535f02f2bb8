"""The fixed cost of a list request (issue 16): a token brings its user's clinics in the same statement. It does not
change what a request answers."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from patients.models import Clinic, Patient, Role
from regimens.models import ScheduledDose
from tests.factories import ClinicMembershipFactory, PatientFactory, RegimenFactory, UserFactory, staff_user
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
