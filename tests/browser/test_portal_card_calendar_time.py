"""In a real Chromium: a Spanish-speaking patient opens their portal and their printable card (both in Spanish,
both accessible, the card printable), and a nurse sets a dose's appointment time in place on the calendar's
day view."""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Any

import pytest
from django.core import mail
from playwright.sync_api import expect

from notifications.delivery import deliver_one
from notifications.models import Delivery
from notifications.portal_access import portal_request_link
from regimens.models import Protocol, ScheduledDose
from regimens.services import regimen_start
from tests.browser.conftest import assert_accessible, shot, sign_in
from tests.factories import PatientFactory
from tracker.clock import now, patient_today

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_spanish_speaking_patient_reads_their_portal_and_card_in_spanish(
    browser: Any, live_server: Any, clinic: Any, builtin_protocols: Any, settings: Any
) -> None:
    settings.COBALT = {**settings.COBALT, "SITE_URL": live_server.url}
    clinic.phone, clinic.address = "+44 20 7946 0000", "1 River Lane\nLondon E1 1AA"
    clinic.save(update_fields=["phone", "address"])
    ana = PatientFactory(clinic=clinic, given_name="Ana", email="ana@example.org", language="es")
    regimen_start(patient=ana, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=patient_today(ana))
    portal_request_link(contact="ana@example.org", at=now())
    for delivery in Delivery.objects.filter(purpose="portal_link", status="pending"):
        deliver_one(delivery.pk)
    link = re.search(r"(http\S+/me/sign-in/\S+)", mail.outbox[-1].body)
    assert link is not None

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(link.group(1))
    with page.expect_navigation():
        page.get_by_role("button", name="Continuar").click()
    expect(page.get_by_role("heading", name="Hola, Ana")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "es"
    assert_accessible(page)
    shot(page, "portal-home-es")

    page.get_by_role("link", name="Su tarjeta de citas, para imprimir o guardar en su teléfono").click()
    page.wait_for_url("**/me/card/")
    expect(page.get_by_role("heading", name="Su tarjeta de citas")).to_be_visible()
    expect(page.get_by_role("button", name="Imprimir mi tarjeta")).to_be_visible()
    expect(page.get_by_text("Inyección en la clínica").first).to_be_visible()
    assert_accessible(page)
    shot(page, "portal-card-es")
    page.emulate_media(media="print")
    expect(page.get_by_role("button", name="Imprimir mi tarjeta")).to_be_hidden()  # the card alone on paper
    expect(page.get_by_role("heading", name="Su tarjeta de citas")).to_be_visible()
    shot(page, "portal-card-es-print")


def test_a_nurse_sets_an_appointment_time_on_the_day_view(
    browser: Any, live_server: Any, clinic: Any, nurse: Any, builtin_protocols: Any
) -> None:
    clinic.session_start, clinic.session_end, clinic.slot_minutes = time(9), time(12, 30), 20
    clinic.save()
    patient = PatientFactory(clinic=clinic, given_name="Tola", family_name="Adeyemi")
    today = patient_today(patient)
    regimen_start(patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=today)
    dose = ScheduledDose.objects.filter(patient=patient, status="planned", due_date__gt=today).order_by("due_date")[0]
    assert dose.due_date <= today + timedelta(days=7)

    page = sign_in(browser, live_server, nurse)
    page.goto(f"{live_server.url}/calendar/?view=day&date={dose.due_date.isoformat()}")
    field = page.get_by_label("Time – Tola Adeyemi")
    assert field.input_value() == "09:00"  # the clinic's first session
    assert_accessible(page)

    field.fill("13:00")
    page.get_by_role("button", name="Set time – Tola Adeyemi").click()
    page.get_by_text("must be within the clinic's session, 09:00 to 12:30").wait_for()
    assert_accessible(page)

    page.get_by_label("Time – Tola Adeyemi").fill("10:20")
    page.get_by_role("button", name="Set time – Tola Adeyemi").click()
    page.get_by_role("status").get_by_text("Tola Adeyemi: appointment at 10:20.").wait_for()
    assert page.url.endswith(f"date={dose.due_date.isoformat()}")  # in place: no navigation
    dose.refresh_from_db()
    assert dose.appointment_time == time(10, 20)
    assert_accessible(page)
    shot(page, "calendar-day-appointment-time")
