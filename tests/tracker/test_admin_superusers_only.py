"""The Django admin is the superusers' tool: clinic staff (even with is_staff and model permissions) are
refused on every admin page and at its sign-in form, and pointed to the web app (tracker/admin_site.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from patients.models import Role
from tests.conftest import assert_admin_refused
from tests.factories import staff_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def clinic_lead(clinic: Any) -> Any:
    """A clinic admin with the Django flags and permissions that used to open the admin to them."""
    user = staff_user(clinic, Role.ADMIN, username="lead")
    user.is_staff = True
    user.save()
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["patients", "regimens"]))
    return user


@pytest.mark.parametrize("path", ["/admin/", "/admin/patients/patient/", "/admin/regimens/protocol/", "/admin/login/"])
def test_a_signed_in_clinic_admin_is_sent_to_the_web_app(clinic_lead: Any, path: str) -> None:
    browser = Client()
    browser.force_login(clinic_lead)
    response = browser.get(path)
    assert_admin_refused(response)
    assert b'href="/"' in response.content


def test_a_nurse_is_refused_too(clinic: Any) -> None:
    browser = Client()
    browser.force_login(staff_user(clinic, Role.NURSE, username="nia"))
    assert_admin_refused(browser.get("/admin/"))


def test_the_admin_sign_in_form_refuses_clinic_staff_with_a_pointer(clinic_lead: Any) -> None:
    browser = Client()
    response = browser.post("/admin/login/", {"username": "lead", "password": "pw-for-tests"})
    assert response.status_code == 200
    assert "Clinic staff sign in to the web app at /login/" in response.content.decode()
    assert "_auth_user_id" not in browser.session
    # The web app's sign-in works for the same account.
    assert browser.post("/login/", {"username": "lead", "password": "pw-for-tests"}).status_code == 302


def test_the_refusal_offers_the_web_apps_sign_out(clinic_lead: Any) -> None:
    browser = Client()
    browser.force_login(clinic_lead)
    page = browser.get("/admin/").content.decode()
    assert 'action="/logout/"' in page or 'href="/logout/"' in page


def test_a_superuser_uses_the_admin(admin_client: Any) -> None:
    assert admin_client.get("/admin/").status_code == 200
    assert admin_client.get("/admin/patients/patient/").status_code == 200
    assert admin_client.get("/admin/regimens/protocol/").status_code == 200
