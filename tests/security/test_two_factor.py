"""Issue 12: clinicians and clinic admins confirm each web sign-in with a TOTP code (django-otp)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from patients.models import Role
from tests.factories import staff_user

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"


@pytest.fixture(autouse=True)
def _required(settings: Any) -> None:
    settings.COBALT = {**settings.COBALT, "REQUIRE_SECOND_FACTOR": True}
    cache.clear()


def sign_in(username: str) -> tuple[Client, Any]:
    client = Client()
    response = client.post("/login/", {"username": username, "password": PASSWORD})
    return client, response


def code_for(secret_or_device: Any) -> str:
    from base64 import b32decode

    key = b32decode(secret_or_device) if isinstance(secret_or_device, str) else secret_or_device.bin_key
    return f"{totp(key, step=30, t0=0, digits=6, drift=0):06d}"


def test_a_clinician_sets_up_the_app_then_confirms_every_sign_in(clinic: Any, settings: Any) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # else a wrong code makes the next one wait a second
    staff_user(clinic, Role.CLINICIAN, username="dr-who")
    client, signed_in = sign_in("dr-who")
    assert signed_in.status_code == 302
    # Every page leads to the second step until it is done.
    page = client.get("/admin/")
    assert page.status_code == 302 and page["Location"].startswith("/login/two-factor/")
    assert client.get("/api/patients/").status_code == 403
    setup = client.get("/login/two-factor/")
    assert b"Set up your authenticator app" in setup.content
    secret = re.search(rb'class="app-secret">([A-Z2-7]+)<', setup.content)
    assert secret is not None
    right = code_for(secret.group(1).decode())
    wrong = client.post("/login/two-factor/", {"code": "000000" if right != "000000" else "111111"})
    assert b"That code is not right" in wrong.content
    done = client.post("/login/two-factor/?next=/api/patients/", {"code": right})
    assert done.status_code == 302 and done["Location"] == "/api/patients/"
    assert client.get("/api/patients/").status_code == 200
    assert TOTPDevice.objects.get(user__username="dr-who").confirmed

    # The next sign-in asks for a code, not a new set-up.
    again, _ = sign_in("dr-who")
    ask = again.get("/login/two-factor/")
    assert b"Confirm it is you" in ask.content and b"app-secret" not in ask.content
    assert again.get("/").status_code == 302


def test_a_clinic_admin_must_too_but_a_nurse_need_not(clinic: Any) -> None:
    staff_user(clinic, Role.ADMIN, username="lead")
    staff_user(clinic, Role.NURSE, username="sister")
    admin_client, _ = sign_in("lead")
    assert admin_client.get("/").status_code == 302
    nurse_client, _ = sign_in("sister")
    assert nurse_client.get("/api/patients/").status_code == 200


def test_a_nurse_who_set_one_up_is_asked_for_it(clinic: Any) -> None:
    nurse = staff_user(clinic, Role.NURSE, username="careful")
    TOTPDevice.objects.create(user=nurse, name="app", confirmed=True)
    client, _ = sign_in("careful")
    assert client.get("/api/patients/").status_code == 403


def test_the_setting_turns_it_off(clinic: Any, settings: Any) -> None:
    settings.COBALT = {**settings.COBALT, "REQUIRE_SECOND_FACTOR": False}
    staff_user(clinic, Role.CLINICIAN, username="dr-no")
    client, _ = sign_in("dr-no")
    assert client.get("/api/patients/").status_code == 200
