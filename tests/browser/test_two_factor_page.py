"""The second sign-in step in Chromium: set up the authenticator app, confirm a code, land on the site; the
page is accessible and passes its CSP."""

from __future__ import annotations

import re
from base64 import b32decode
from typing import Any

import pytest
from django_otp.oath import totp
from playwright.sync_api import expect

from patients.models import Role
from tests.browser.conftest import PASSWORD, assert_accessible, shot
from tests.factories import staff_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_clinician_sets_up_the_second_factor(browser: Any, live_server: Any, clinic: Any, settings: Any) -> None:
    settings.COBALT = {**settings.COBALT, "REQUIRE_SECOND_FACTOR": True}
    staff_user(clinic, Role.CLINICIAN, username="dr-otp")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill("dr-otp")
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/login/two-factor/.*"))
    expect(page.get_by_role("heading", name="Set up your authenticator app")).to_be_visible()
    assert_accessible(page)
    shot(page, "two-factor-setup")
    secret = page.locator(".app-secret").inner_text()
    page.get_by_label("Code from your authenticator app").fill(f"{totp(b32decode(secret), digits=6):06d}")
    with page.expect_navigation():
        page.get_by_role("button", name="Continue").click()
    assert "/login/" not in page.url, page.url
    assert refused == []
