"""RULES R-UK-4 in a real Chromium: a clinician shortens a patient's maintenance interval from the regimen card,
first below the protocol's range without a reason (refused on the field; the override reason is then asked for),
then with one. Every page passes the accessibility check."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from patients.models import Role
from regimens.models import DoseStatus, Protocol, ScheduledDose
from regimens.services import dose_record_administration, regimen_start
from tests.browser.conftest import assert_accessible, shot, sign_in
from tests.factories import PatientFactory, staff_user
from tracker.clock import patient_today

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def next_open(day: date) -> date:
    """The clinic's next open day on or after `day` (Monday to Friday)."""
    while day.weekday() > 4:
        day += timedelta(days=1)
    return day


def test_a_clinician_shortens_the_maintenance_interval_from_the_regimen_card(
    browser: Any, live_server: Any, clinic: Any, builtin_protocols: None
) -> None:
    clinician = staff_user(clinic, Role.CLINICIAN, username="dr-okafor")
    patient = PatientFactory(clinic=clinic, given_name="Ada", family_name="Lovelace", mrn="RH-1815")
    today = patient_today(patient)
    standard = Protocol.objects.get(code="hydroxo-uk-standard")
    regimen = regimen_start(patient=patient, protocol=standard, start_date=today - timedelta(days=40))
    for _ in range(6):  # the loading course, given on its days
        dose = ScheduledDose.objects.filter(regimen=regimen, phase="loading", status=DoseStatus.PLANNED)
        first = dose.order_by("sequence").first()
        assert first is not None
        at = datetime.combine(first.due_date, time(10), tzinfo=UTC)
        dose_record_administration(dose=first, administered_at=at, user=clinician)
        last_loading = first.due_date

    page = sign_in(browser, live_server, clinician)
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.get_by_role("link", name="Shorten the interval").click()
    expect(page.get_by_role("heading", name="Shorten the interval")).to_be_visible()
    expect(page.get_by_text("every 12 weeks", exact=True)).to_be_visible()
    expect(page.get_by_text("every 8 to 13 weeks")).to_be_visible()
    expect(page.get_by_label("Reason to go outside the protocol's range")).to_have_count(0)

    page.get_by_label("New interval, in weeks").fill("6")
    page.get_by_label("Why is the interval shortened?").fill("Fatigue and tingling back from week 5")
    page.get_by_role("button", name="Shorten the interval").click()
    expect(page.get_by_role("alert").get_by_text("There is a problem")).to_be_visible()
    expect(
        page.get_by_text("every 6 weeks is outside the protocol's range (every 8 to 13 weeks)").first
    ).to_be_visible()
    assert_accessible(page)
    shot(page, "regimen-shorten-interval")

    page.get_by_label("Reason to go outside the protocol's range").fill("Haematologist advised 6-weekly injections")
    page.get_by_role("button", name="Shorten the interval").click()
    page.wait_for_url(f"**/patients/{patient.pk}/#regimens")
    expected = next_open(max(last_loading + timedelta(weeks=6), today))
    message = f"Interval shortened to every 6 weeks. The next dose is planned on {expected:%-d %b %Y}."
    expect(page.get_by_text(message)).to_be_visible()
    expect(
        page.get_by_text("Interval shortened · dr-okafor · Maintenance: every 12 weeks → every 6 weeks")
    ).to_be_visible()
    assert_accessible(page)
    shot(page, "patient-page-interval-shortened")
    planned = ScheduledDose.objects.filter(regimen=regimen, phase="maintenance", status=DoseStatus.PLANNED)
    assert planned.order_by("sequence").values_list("due_date", flat=True)[0] == expected
