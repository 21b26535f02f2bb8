"""A patient's journey through the portal in a real Chromium: ask for a link, open it, change the reminder
channel, opt out, renew the calendar link, read the help; every page passes the accessibility check."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from playwright.sync_api import expect

from notifications.delivery import deliver_one
from notifications.models import Delivery
from regimens.models import Protocol
from regimens.services import regimen_start
from tests.browser.conftest import assert_accessible, shot
from tests.factories import PatientFactory
from tracker.clock import patient_today

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_patient_asks_for_a_link_and_manages_their_reminders(
    browser: Any, live_server: Any, clinic: Any, builtin_protocols: Any, settings: Any
) -> None:
    settings.COBALT = {**settings.COBALT, "SITE_URL": live_server.url}
    jo = PatientFactory(clinic=clinic, given_name="Jo", email="jo@example.org", phone="+447700900123")
    regimen_start(patient=jo, protocol=Protocol.objects.get(code="ileal-resection"), start_date=patient_today(jo))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(live_server.url) else outside.append(r.url))

    page.goto(f"{live_server.url}/me/")
    expect(page.get_by_role("heading", name="See your appointments")).to_be_visible()
    assert page.locator(".nhsuk-header__navigation").count() == 0  # no staff navigation
    assert_accessible(page)
    page.get_by_label("Email address or mobile phone number").fill("jo@example.org")
    with page.expect_navigation():
        page.get_by_role("button", name="Send me a link").click()
    expect(page.get_by_role("heading", name="Check your messages")).to_be_visible()
    assert_accessible(page)

    for delivery in Delivery.objects.filter(purpose="portal_link", status="pending"):
        deliver_one(delivery.pk)
    link = re.search(r"(http\S+/me/sign-in/\S+)", mail.outbox[-1].body)
    assert link is not None
    page.goto(link.group(1))
    assert_accessible(page)
    with page.expect_navigation():
        page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Hello Jo")).to_be_visible()
    first = jo.doses.filter(status="planned").order_by("due_date").first()
    assert first is not None
    shown = f"{first.due_date:%A} {first.due_date.day} {first.due_date:%B %Y}"
    expect(page.get_by_role("table").get_by_text(shown)).to_be_visible()
    assert_accessible(page)
    shot(page, "portal-home")

    page.get_by_label("By text message").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Save my choices").click()
    expect(page.get_by_text("Your reminder choices are saved.")).to_be_visible()
    jo.refresh_from_db()
    assert jo.reminder_channel == "sms"

    page.get_by_label("No reminders").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Save my choices").click()
    jo.refresh_from_db()
    assert jo.reminder_channel == "none"

    old = jo.ical_token
    with page.expect_navigation():
        page.get_by_role("button", name="Get a new calendar address").click()
    jo.refresh_from_db()
    assert jo.ical_token != old and jo.ical_token in page.content()
    assert_accessible(page)
    # The address to copy is a read-only field: on a phone it scrolls inside it, the page does not widen.
    address = page.get_by_label("Or copy this address into your calendar app")
    assert address.input_value().endswith(f"/ical/{jo.ical_token}.ics")
    page.set_viewport_size({"width": 360, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert_accessible(page)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("link", name="Help with reminders and your calendar").first.click()
    page.wait_for_url("**/me/help/")
    assert_accessible(page)
    shot(page, "portal-help")

    page.goto(f"{live_server.url}/me/")
    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Send me a link")).to_be_visible()
    assert outside == []
