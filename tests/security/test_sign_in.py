"""Issue 12: sign-in protection. Lockout after wrong passwords on /login/, /admin/login/ and the token
endpoint (django-axes); the token endpoint throttled with Retry-After; Django's full password validators;
API tokens stored as a digest only, that expire and that sign-out, a password change or deactivation revoke."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from patients.models import Role
from tests.factories import staff_user

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"


@pytest.fixture(autouse=True)
def _fresh_counters() -> Any:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def admin_staff(clinic: Any) -> Any:
    user = staff_user(clinic, Role.ADMIN, username="lead")
    user.is_staff = True
    user.save()
    return user


def sign_in(client: Client, url: str, password: str, username: str = "lead") -> Any:
    return client.post(url, {"username": username, "password": password})


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_five_wrong_passwords_lock_the_session_sign_in_even_for_the_right_one(
    admin_staff: Any, settings: Any, url: str
) -> None:
    if url.startswith("/admin/"):  # the Django admin lets only superusers sign in (tracker/admin_site.py)
        admin_staff.is_superuser = True
        admin_staff.save()
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, url, "wrong-guess").status_code == 200  # the form again, with its error
    locked = sign_in(client, url, "wrong-guess")
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) == 15 * 60
    assert b"Sign-in locked" in locked.content
    # The right password no longer works until the cool-off has passed.
    assert sign_in(client, url, PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session
    with time_machine.travel(timezone.now() + timedelta(minutes=16), tick=False):
        after = sign_in(client, url, PASSWORD)
    assert after.status_code == 302
    assert client.session["_auth_user_id"] == str(admin_staff.pk)


def test_one_lockout_covers_the_web_sign_in_the_admin_and_the_token_endpoint(admin_staff: Any) -> None:
    client = Client()
    for _ in range(5):
        sign_in(client, "/login/", "wrong-guess")
    assert sign_in(client, "/admin/login/", PASSWORD).status_code == 429
    response = APIClient().post("/api/auth/token/", {"username": "lead", "password": PASSWORD})
    assert response.status_code == 429
    assert "Retry-After" in response


def test_wrong_passwords_lock_the_token_endpoint(nurse: Any) -> None:
    api = APIClient()
    for _ in range(4):
        assert api.post("/api/auth/token/", {"username": "nurse", "password": "guess"}).status_code == 400
    locked = api.post("/api/auth/token/", {"username": "nurse", "password": "guess"})
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) == 15 * 60
    right = api.post("/api/auth/token/", {"username": "nurse", "password": PASSWORD})
    assert right.status_code == 429
    assert "token" not in right.json()


def test_another_user_at_the_same_address_is_not_locked_out(clinic: Any, nurse: Any) -> None:
    staff_user(clinic, Role.CLINICIAN, username="colleague")
    api = APIClient()
    for _ in range(6):
        api.post("/api/auth/token/", {"username": "colleague", "password": "guess"})
    assert api.post("/api/auth/token/", {"username": "nurse", "password": PASSWORD}).status_code == 200


def test_the_token_endpoint_is_throttled_per_address_with_retry_after(nurse: Any, settings: Any) -> None:
    settings.TOKEN_THROTTLE_RATE = "3/minute"
    api = APIClient()
    for _ in range(3):
        assert api.post("/api/auth/token/", {"username": "nurse", "password": PASSWORD}).status_code == 200
    throttled = api.post("/api/auth/token/", {"username": "nurse", "password": PASSWORD})
    assert throttled.status_code == 429
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert "detail" in throttled.json()


@pytest.mark.parametrize("password", ["password", "12345678", "nurse-jones", "short1!", "918273645546372819"])
def test_weak_passwords_are_refused(nurse: Any, password: str) -> None:
    nurse.username = "nurse-jones"
    with pytest.raises(ValidationError):
        validate_password(password, nurse)


def test_a_long_uncommon_password_is_accepted(nurse: Any) -> None:
    validate_password("correct horse battery staple", nurse)


def token_for(user: Any) -> str:
    response = APIClient().post("/api/auth/token/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 200, response.json()
    return str(response.json()["token"])


def calls_with(token: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return int(client.get("/api/patients/").status_code)


def test_the_database_holds_no_usable_token(nurse: Any) -> None:
    token = token_for(nurse)
    row = AuthToken.objects.get(user=nurse)
    stored = " ".join(str(value) for value in AuthToken.objects.filter(pk=row.pk).values().get().values())
    assert token not in stored
    assert token[15:] not in stored  # only the first 15 characters are kept, to find the row
    # Sending what the table holds does not authenticate.
    assert calls_with(row.digest) == 401
    assert calls_with(row.token_key) == 401


def test_a_wrong_token_is_refused(nurse: Any) -> None:
    token = token_for(nurse)
    assert calls_with(token[:-1] + ("0" if token[-1] != "0" else "1")) == 401
    assert calls_with("0123456789abcdef0123456789abcdef01234567") == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token café-not-utf-8-on-the-wire")
    assert client.get("/api/patients/").status_code == 401


def test_a_token_expires_and_the_endpoint_then_issues_a_new_one(nurse: Any, settings: Any) -> None:
    token = token_for(nurse)
    assert calls_with(token) == 200
    second = token_for(nurse)
    assert second != token  # each request issues a new token (the old key cannot be shown again)
    assert calls_with(token) == 200 and calls_with(second) == 200
    later = timezone.now() + settings.TOKEN_TTL + timedelta(minutes=1)
    with time_machine.travel(later, tick=False):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        expired = client.get("/api/patients/")
        assert expired.status_code == 401
        assert "expired" in expired.json()["detail"]
        fresh = token_for(nurse)
        assert calls_with(fresh) == 200
        assert AuthToken.objects.filter(user=nurse).count() == 1  # the expired ones were cleared


def test_a_token_still_works_just_before_it_expires(nurse: Any, settings: Any) -> None:
    token = token_for(nurse)
    with time_machine.travel(timezone.now() + settings.TOKEN_TTL - timedelta(minutes=1), tick=False):
        assert calls_with(token) == 200


def test_signing_out_revokes_the_presented_token_only(nurse: Any) -> None:
    token, other = token_for(nurse), token_for(nurse)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.post("/api/auth/sign-out/").status_code == 204
    assert calls_with(token) == 401
    assert calls_with(other) == 200
    assert APIClient().post("/api/auth/sign-out/").status_code == 401


def test_a_password_change_revokes_every_token(nurse: Any) -> None:
    token, other = token_for(nurse), token_for(nurse)
    nurse.set_password("a new long passphrase")
    nurse.save()
    assert calls_with(token) == 401
    assert calls_with(other) == 401
    assert not AuthToken.objects.filter(user=nurse).exists()


def test_deactivation_revokes_the_token(nurse: Any) -> None:
    token = token_for(nurse)
    nurse.is_active = False
    nurse.save()
    assert not AuthToken.objects.filter(user=nurse).exists()
    assert calls_with(token) == 401


def test_saving_a_user_for_another_reason_keeps_the_token(nurse: Any) -> None:
    token = token_for(nurse)
    nurse.first_name = "Jo"
    nurse.save()
    assert calls_with(token) == 200


def test_sign_in_events_are_logged(admin_staff: Any) -> None:
    from axes.models import AccessFailureLog, AccessLog

    client = Client()
    sign_in(client, "/login/", "wrong-guess")
    sign_in(client, "/login/", PASSWORD)
    assert AccessFailureLog.objects.filter(username="lead").count() == 1
    assert AccessLog.objects.filter(username="lead").count() == 1


def test_a_token_issued_by_the_api_is_audited_as_a_sign_in_without_opening_a_session(nurse: Any) -> None:
    from patients.models import StaffEvent, StaffEventKind

    assert nurse.last_login is None
    response = APIClient().post(
        "/api/auth/token/", {"username": nurse.username, "password": PASSWORD}, REMOTE_ADDR="127.0.0.9"
    )
    assert response.status_code == 200
    event = StaffEvent.objects.get(kind=StaffEventKind.SIGNED_IN, subject=nurse)
    assert (event.username, event.ip_address) == (nurse.username, "127.0.0.9")
    nurse.refresh_from_db()
    assert nurse.last_login is not None  # the staff page's "last sign-in"
    assert "sessionid" not in response.cookies


def test_the_test_clients_login_still_works(nurse: Any) -> None:
    # authenticate() without a request (Client.login, management commands) is not an error: there is no
    # address to lock out, and ModelBackend checks the password.
    client = Client()
    assert client.login(username="nurse", password=PASSWORD)
    assert not client.login(username="nurse", password="wrong")
