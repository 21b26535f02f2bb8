"""Issue 12: clinicians and clinic admins confirm each web sign-in with a TOTP code (django-otp), and send one
to the token endpoint (`otp_token`)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from patients.models import Role, StaffEvent, StaffEventKind
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


# --- The token endpoint asks the same people for the code ------------------------------------------------


def ask_token(username: str, otp_token: str | None = None) -> Any:
    body = {"username": username, "password": PASSWORD}
    if otp_token is not None:
        body["otp_token"] = otp_token
    return APIClient().post("/api/auth/token/", body, format="json")


def wrong_code(device: Any) -> str:
    return "000000" if code_for(device) != "000000" else "111111"


@pytest.fixture
def clinician_with_app(clinic: Any, settings: Any) -> Any:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # else each wrong code makes the next one wait
    user = staff_user(clinic, Role.CLINICIAN, username="dr-app")
    return TOTPDevice.objects.create(user=user, name="app", confirmed=True)


def test_a_clinician_with_an_app_gets_a_token_only_with_its_code(clinician_with_app: Any) -> None:
    missing = ask_token("dr-app")
    assert missing.status_code == 400
    assert list(missing.json()) == ["otp_token"] and "required" in missing.json()["otp_token"][0]
    wrong = ask_token("dr-app", wrong_code(clinician_with_app))
    assert wrong.status_code == 400 and "not right" in wrong.json()["otp_token"][0]
    assert ask_token("dr-app", "12345").status_code == 400  # not six digits
    right = ask_token("dr-app", code_for(clinician_with_app))
    assert right.status_code == 200 and set(right.json()) == {"token"}
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {right.json()['token']}")
    assert api.get("/api/patients/").status_code == 200


def test_a_clinician_without_an_app_is_told_to_set_one_up_first(clinic: Any) -> None:
    staff_user(clinic, Role.ADMIN, username="lead")
    response = ask_token("lead", "123456")
    assert response.status_code == 400
    assert "/login/two-factor/" in response.json()["otp_token"][0]
    assert "token" not in response.json()


def test_a_nurse_without_an_app_needs_only_the_password(clinic: Any) -> None:
    staff_user(clinic, Role.NURSE, username="sister")
    assert ask_token("sister").status_code == 200


def test_a_nurse_who_set_up_an_app_must_send_its_code(clinic: Any, settings: Any) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    nurse = staff_user(clinic, Role.NURSE, username="careful")
    device = TOTPDevice.objects.create(user=nurse, name="app", confirmed=True)
    assert list(ask_token("careful").json()) == ["otp_token"]
    assert ask_token("careful", code_for(device)).status_code == 200


def test_a_nurse_with_an_app_is_asked_even_with_the_setting_off(clinic: Any, settings: Any) -> None:
    settings.COBALT = {**settings.COBALT, "REQUIRE_SECOND_FACTOR": False}
    nurse = staff_user(clinic, Role.NURSE, username="careful")
    TOTPDevice.objects.create(user=nurse, name="app", confirmed=True)
    staff_user(clinic, Role.CLINICIAN, username="dr-no")
    assert ask_token("careful").status_code == 400
    assert ask_token("dr-no").status_code == 200  # the role alone asks for nothing when the setting is off


def test_wrong_codes_lock_the_token_endpoint_like_wrong_passwords(clinician_with_app: Any, settings: Any) -> None:
    wrong = wrong_code(clinician_with_app)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert ask_token("dr-app", wrong).status_code == 400
    locked = ask_token("dr-app", wrong)
    assert locked.status_code == 429 and int(locked["Retry-After"]) == 15 * 60
    right = ask_token("dr-app", code_for(clinician_with_app))
    assert right.status_code == 429 and "token" not in right.json()


def test_a_missing_code_counts_towards_the_lockout_too_and_is_audited(clinician_with_app: Any, settings: Any) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert ask_token("dr-app").status_code == 400
    assert ask_token("dr-app").status_code == 429
    failed = StaffEvent.objects.filter(kind=StaffEventKind.SIGN_IN_FAILED, username="dr-app")
    assert failed.count() == settings.AXES_FAILURE_LIMIT
