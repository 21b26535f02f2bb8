"""Signing in, in a real Chromium: the page passes the accessibility check and nothing leaves the site."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from patients.models import Role
from tests.browser.conftest import assert_accessible, shot
from tests.factories import staff_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_nurse_signs_in_with_the_keyboard_and_every_request_stays_on_the_site(
    browser: Any, live_server: Any, clinic: Any
) -> None:
    staff_user(clinic, Role.NURSE, username="nora")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(live_server.url) else outside.append(r.url))

    page.goto(f"{live_server.url}/login/")
    assert_accessible(page)
    # The cursor starts in Username; Tab moves on to Password, then to the button.
    page.keyboard.type("nora")
    page.keyboard.press("Tab")
    page.keyboard.type("wrong")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_role("alert").get_by_text("There is a problem")).to_be_visible()
    assert_accessible(page)
    shot(page, "sign-in-error")

    page.get_by_label("Password").fill("pw-for-tests")
    page.keyboard.press("Tab")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == f"{live_server.url}/"
    assert outside == []
