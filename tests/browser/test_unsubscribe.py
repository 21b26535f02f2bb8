"""The unsubscribe link of a patient email, in a real Chromium: it asks first, one button opts out, and both
pages pass the accessibility check."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from notifications.unsubscribe import unsubscribe_token
from tests.browser.conftest import assert_accessible, shot
from tests.factories import PatientFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_patient_opens_the_unsubscribe_link_and_stops_their_reminders(
    browser: Any, live_server: Any, clinic: Any
) -> None:
    jo = PatientFactory(clinic=clinic, given_name="Jo")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/unsubscribe/{unsubscribe_token(jo.pk)}")
    expect(page.get_by_role("heading", name="Stop reminders")).to_be_visible()
    assert_accessible(page)
    jo.refresh_from_db()
    assert jo.reminder_channel == "email"
    with page.expect_navigation():
        page.get_by_role("button", name="Stop my reminders").click()
    expect(page.get_by_role("heading", name="You will get no more reminders")).to_be_visible()
    assert_accessible(page)
    shot(page, "unsubscribed")
    jo.refresh_from_db()
    assert jo.reminder_channel == "none"
