"""Staff management by clinic admins (/api/staff/ and patients/staff.py): invite by email with a link
that sets the password, change roles, deactivate (the API token stops at once), and never reach
another clinic's staff or the Django admin's accounts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from patients.models import ClinicMembership, Role
from tests.factories import staff_user
from tracker.authentication import token_issue

pytestmark = pytest.mark.django_db

User = get_user_model()


def invite(api: APIClient, email: str = "new.nurse@example.org", role: str = "nurse", **extra: Any) -> Any:
    return api.post("/api/staff/", {"email": email, "role": role, **extra}, format="json")


def test_it_lists_the_clinic_staff_with_their_last_sign_in(admin_api: Any, nurse: Any, other_clinic: Any) -> None:
    staff_user(other_clinic, Role.NURSE, username="elsewhere")
    body = admin_api.get("/api/staff/").json()
    assert sorted(row["username"] for row in body["results"]) == ["clinic-admin", "nurse"]
    row = next(r for r in body["results"] if r["username"] == "nurse")
    assert row["role"] == "nurse" and row["active"] is True and row["last_login"] is None


def test_an_invited_nurse_sets_a_password_and_signs_in(
    admin_api: Any, clinic: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = invite(admin_api, first_name="Nia", last_name="Hale")
    assert response.status_code == 201, response.content
    assert response.json()["role"] == "nurse" and response.json()["username"] == "new.nurse@example.org"
    user = User.objects.get(username="new.nurse@example.org")
    assert not user.has_usable_password() and not user.is_staff and not user.is_superuser
    assert ClinicMembership.objects.get(user=user).clinic == clinic
    (message,) = mail.outbox
    assert message.to == ["new.nurse@example.org"] and "Riverside Haematology" in message.subject
    link = re.search(r"https?://\S+|/password-reset/\S+", message.body)
    assert link is not None
    path = re.sub(r"^https?://[^/]+", "", link.group(0))

    browser = Client()
    page = browser.get(path, follow=True)
    assert page.status_code == 200
    form_url = page.redirect_chain[-1][0] if page.redirect_chain else path
    done = browser.post(form_url, {"new_password1": "a-long-new-pass-42", "new_password2": "a-long-new-pass-42"})
    assert done.status_code == 302, done.context["form"].errors if done.context else done.content[:300]
    assert browser.login(username="new.nurse@example.org", password="a-long-new-pass-42")
    # The link works once.
    assert "no longer works" in Client().get(form_url).content.decode()


def test_it_adds_someone_from_another_clinic_without_a_new_account(
    admin_api: Any, other_clinic: Any, django_capture_on_commit_callbacks: Any
) -> None:
    known = staff_user(other_clinic, Role.CLINICIAN, username="dr-who")
    with django_capture_on_commit_callbacks(execute=True):
        assert invite(admin_api, email=known.email, role="clinician").status_code == 201
    assert known.memberships.count() == 2
    assert "/login/" in mail.outbox[0].body and "password-reset" not in mail.outbox[0].body


def test_it_names_the_field_of_a_bad_invitation(admin_api: Any, nurse: Any) -> None:
    assert invite(admin_api, email="not-an-email").json().keys() == {"email"}
    assert invite(admin_api, role="superuser").json().keys() == {"role"}
    response = invite(admin_api, email=nurse.email)
    assert response.status_code == 400 and "already works" in response.json()["email"][0]
    assert User.objects.count() == 2  # nothing half-written


def test_it_changes_a_role_and_keeps_an_admin(admin_api: Any, nurse: Any, clinic_admin: Any) -> None:
    row = ClinicMembership.objects.get(user=nurse)
    response = admin_api.patch(f"/api/staff/{row.id}/", {"role": "clinician"}, format="json")
    assert response.status_code == 200 and response.json()["role"] == "clinician"
    own = ClinicMembership.objects.get(user=clinic_admin)
    response = admin_api.patch(f"/api/staff/{own.id}/", {"role": "nurse"}, format="json")
    assert response.status_code == 400 and "at least one" in response.json()["role"][0]
    assert admin_api.patch(f"/api/staff/{row.id}/", {"role": "root"}, format="json").json().keys() == {"role"}


def test_deactivating_stops_the_token_at_once(admin_api: Any, nurse: Any, patient: Any) -> None:
    token = token_issue(nurse)
    with_token = APIClient()
    with_token.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert with_token.get(f"/api/patients/{patient.id}/").status_code == 200
    row = ClinicMembership.objects.get(user=nurse)
    response = admin_api.post(f"/api/staff/{row.id}/deactivate/")
    assert response.status_code == 200 and response.json()["active"] is False
    assert with_token.get(f"/api/patients/{patient.id}/").status_code == 401
    assert not APIClient().login(username="nurse", password="pw-for-tests")
    assert admin_api.post(f"/api/staff/{row.id}/reactivate/").json()["active"] is True
    assert APIClient().login(username="nurse", password="pw-for-tests")


def test_an_admin_cannot_deactivate_themselves(admin_api: Any, clinic_admin: Any) -> None:
    own = ClinicMembership.objects.get(user=clinic_admin)
    assert admin_api.post(f"/api/staff/{own.id}/deactivate/").status_code == 400
    assert User.objects.get(pk=clinic_admin.pk).is_active


def test_it_never_reaches_another_clinics_staff(admin_api: Any, other_clinic: Any, clinic: Any) -> None:
    theirs = staff_user(other_clinic, Role.NURSE, username="theirs")
    row = ClinicMembership.objects.get(user=theirs)
    assert admin_api.post(f"/api/staff/{row.id}/deactivate/").status_code == 404
    assert admin_api.patch(f"/api/staff/{row.id}/", {"role": "admin"}, format="json").status_code == 404
    assert invite(admin_api, clinic=other_clinic.id).status_code == 404
    # Someone who also works in a clinic this admin does not run: only a superuser deactivates them.
    ClinicMembership.objects.create(user=theirs, clinic=clinic, role=Role.NURSE)
    here = ClinicMembership.objects.get(user=theirs, clinic=clinic)
    assert admin_api.post(f"/api/staff/{here.id}/deactivate/").status_code == 403
    assert User.objects.get(pk=theirs.pk).is_active


def test_it_never_touches_django_administrators(admin_api: Any, clinic: Any) -> None:
    boss = staff_user(clinic, Role.NURSE, username="boss")
    boss.is_superuser = True
    boss.save()
    row = ClinicMembership.objects.get(user=boss)
    assert admin_api.post(f"/api/staff/{row.id}/deactivate/").status_code == 403
    assert admin_api.patch(f"/api/staff/{row.id}/", {"role": "admin"}, format="json").status_code == 403
    response = admin_api.post(
        "/api/staff/", {"email": "x@example.org", "role": "nurse", "is_superuser": True}, format="json"
    )
    assert response.status_code == 201
    assert not User.objects.get(username="x@example.org").is_superuser


def test_it_is_for_clinic_admins(nurse_api: Any, clinician_api: Any) -> None:
    assert nurse_api.get("/api/staff/").status_code == 403
    assert invite(clinician_api).status_code == 403
    assert APIClient().get("/api/staff/").status_code in (401, 403)
