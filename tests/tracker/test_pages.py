"""The web pages' shell: sign-in for every staff role, sign-out, password reset by email."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from patients.models import Role
from tests.browser.conftest import PASSWORD
from tests.factories import staff_user

pytestmark = pytest.mark.django_db


def sign_in(client: Client, username: str, password: str = PASSWORD) -> Any:
    return client.post("/login/", {"username": username, "password": password})


@pytest.mark.parametrize("role", [Role.NURSE, Role.CLINICIAN, Role.ADMIN])
def test_every_staff_role_signs_in_and_lands_on_the_worklist(clinic: Any, role: str) -> None:
    staff_user(clinic, role, username="sam")
    response = sign_in(Client(), "sam")
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_a_wrong_password_says_so_and_signs_nobody_in(clinic: Any) -> None:
    staff_user(clinic, Role.NURSE, username="sam")
    client = Client()
    response = sign_in(client, "sam", "not-the-password")
    assert response.status_code == 200
    body = response.content.decode()
    assert "There is a problem" in body
    assert "enter a correct username and password" in body
    assert "_auth_user_id" not in client.session


def test_a_page_that_needs_sign_in_sends_the_visitor_to_the_sign_in_page_and_back() -> None:
    response = Client().get("/password-reset/")
    assert response.status_code == 200  # open to everyone
    response = Client().get("/login/?next=/patients/")
    assert 'name="next" value="/patients/"' in response.content.decode()


def test_signing_out_ends_the_session(clinic: Any) -> None:
    staff_user(clinic, Role.NURSE, username="sam")
    client = Client()
    sign_in(client, "sam")
    response = client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session


def test_password_reset_mails_an_absolute_link_that_sets_a_new_password(clinic: Any, settings: Any) -> None:
    settings.COBALT = {**settings.COBALT, "SITE_URL": "https://cobalt.example.org/"}
    user = staff_user(clinic, Role.NURSE, username="sam")
    user.email = "sam@example.org"
    user.save(update_fields=["email"])
    client = Client()

    response = client.post("/password-reset/", {"email": "sam@example.org"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"https://cobalt\.example\.org(/password-reset/\S+/)", mail.outbox[0].body)
    assert link, mail.outbox[0].body

    page = client.get(link.group(1), follow=True)
    assert "Choose a new password" in page.content.decode()
    response = client.post(
        page.redirect_chain[-1][0], {"new_password1": "a-long-new-passphrase", "new_password2": "a-long-new-passphrase"}
    )
    assert response.status_code == 302
    assert sign_in(Client(), "sam", "a-long-new-passphrase")["Location"] == "/"


def test_an_unknown_address_gets_the_same_answer_and_no_mail() -> None:
    response = Client().post("/password-reset/", {"email": "nobody@example.org"})
    assert response.status_code == 302 and response["Location"] == "/password-reset/sent/"
    assert mail.outbox == []


def test_the_header_shows_the_users_clinic_and_their_roles_links(clinic: Any) -> None:
    staff_user(clinic, Role.NURSE, username="sam")
    client = Client()
    sign_in(client, "sam")
    body = client.get("/password-reset/").content.decode()
    assert clinic.name in body
    assert "Sign out" in body
    assert ">Staff<" not in body  # clinic admins only
