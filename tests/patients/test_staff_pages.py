"""The /staff/ pages: the same services as /api/staff/, for a clinic admin in a browser."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from patients.models import ClinicMembership, Role
from tests.factories import staff_user

pytestmark = pytest.mark.django_db


def signed_in(user: Any) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def test_it_lists_the_staff_and_invites_a_person(
    clinic_admin: Any, nurse: Any, other_clinic: Any, django_capture_on_commit_callbacks: Any
) -> None:
    staff_user(other_clinic, Role.NURSE, username="elsewhere")
    browser = signed_in(clinic_admin)
    html = browser.get("/staff/").content.decode()
    assert "nurse@example.org" in html and "elsewhere" not in html and "Never" in html
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post("/staff/", {"email": "kim@example.org", "role": "clinician"}, follow=True)
    assert "kim@example.org was added" in response.content.decode()
    assert ClinicMembership.objects.get(user__username="kim@example.org").role == "clinician"
    assert len(mail.outbox) == 1


def test_a_bad_invitation_names_the_field(clinic_admin: Any, nurse: Any) -> None:
    html = signed_in(clinic_admin).post("/staff/", {"email": nurse.email, "role": "nurse"}).content.decode()
    assert "There is a problem" in html and "already works in this clinic" in html
    html = signed_in(clinic_admin).post("/staff/", {"email": "nope", "role": ""}).content.decode()
    assert "Email address: Enter a valid email address." in html and "Role in this clinic:" in html


def test_it_changes_a_role_and_deactivates(clinic_admin: Any, nurse: Any) -> None:
    browser = signed_in(clinic_admin)
    row = ClinicMembership.objects.get(user=nurse)
    browser.post(f"/staff/{row.id}/", {"role": "clinician"})
    assert ClinicMembership.objects.get(pk=row.pk).role == "clinician"
    html = browser.post(f"/staff/{row.id}/deactivate/", follow=True).content.decode()
    assert "Deactivated" in html
    assert not get_user_model().objects.get(pk=nurse.pk).is_active
    own = ClinicMembership.objects.get(user=clinic_admin)
    html = browser.post(f"/staff/{own.id}/deactivate/", follow=True).content.decode()
    assert "you cannot deactivate your own account" in html


def test_it_is_for_the_clinic_admins_of_that_clinic(nurse: Any, clinic_admin: Any, other_clinic: Any) -> None:
    assert signed_in(nurse).get("/staff/").status_code == 403
    theirs = ClinicMembership.objects.get(user=staff_user(other_clinic, Role.NURSE, username="theirs"))
    browser = signed_in(clinic_admin)
    assert browser.get(f"/staff/{theirs.id}/").status_code == 404
    assert browser.post(f"/staff/{theirs.id}/deactivate/").status_code == 404
    assert browser.get(f"/staff/?clinic={other_clinic.id}").status_code == 404


@pytest.mark.parametrize("people", [2, 20])
def test_its_query_count_does_not_grow_with_rows(
    clinic: Any, clinic_admin: Any, people: int, django_assert_max_num_queries: Any
) -> None:
    for n in range(people):
        staff_user(clinic, Role.NURSE, username=f"n{n}")
    browser = signed_in(clinic_admin)
    with django_assert_max_num_queries(7):
        assert browser.get("/staff/").status_code == 200
