"""A clinic admin's journey in a real Chromium: the dashboard and the list behind a figure, inviting a
nurse who sets a password and signs in, deactivating them, the audit log and its CSV; every page passes
the accessibility check."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from patients.models import Role
from regimens.models import DoseStatus
from tests.browser.conftest import assert_accessible, shot, sign_in
from tests.factories import (
    AlertFactory,
    LabResultFactory,
    PatientFactory,
    RegimenFactory,
    ScheduledDoseFactory,
    staff_user,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_clinic_admin_runs_the_clinic(browser: Any, live_server: Any, clinic: Any, mailoutbox: Any) -> None:
    today = timezone.localdate()
    regimen = RegimenFactory(patient=PatientFactory(clinic=clinic, mrn="RVH000042"), start_date=today)
    for offset in (-20, -3, 2, 9):
        ScheduledDoseFactory(regimen=regimen, due_date=today + timedelta(days=offset))
    AlertFactory(patient=regimen.patient)
    # Time to normalization: Hb below the range before the first dose 30 days ago, normal 21 days after it.
    treated = RegimenFactory(patient=PatientFactory(clinic=clinic, mrn="RVH000077"), start_date=today - timedelta(30))
    first_dose = timezone.now() - timedelta(days=30)
    ScheduledDoseFactory(
        regimen=treated, due_date=today - timedelta(30), status=DoseStatus.GIVEN, administered_at=first_dose
    )
    before = first_dose - timedelta(days=1)
    LabResultFactory(patient=treated.patient, value_as_entered="96", interpretation="low", collected_at=before)
    LabResultFactory(patient=treated.patient, collected_at=first_dose + timedelta(days=21))
    admin = staff_user(clinic, Role.ADMIN, username="ada")

    page = sign_in(browser, live_server, admin)
    page.goto(f"{live_server.url}/dashboard/")
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    assert page.locator('[data-figure="overdue"]').inner_text() == "2"
    assert page.locator('[data-figure="open_alerts"]').inner_text() == "1"
    assert page.locator("svg.app-chart").count() == 5
    assert page.locator('[data-figure="A-H4-median"]').inner_text() == "21"
    assert_accessible(page)
    shot(page, "clinic-admin-dashboard")

    # The time to normalization's list: the patient and their days.
    with page.expect_navigation():
        page.get_by_role("link", name="Hemoglobin", exact=True).click()
    expect(page.get_by_role("heading", name="Hemoglobin: time to normalization")).to_be_visible()
    row = page.locator("tbody tr")
    assert row.count() == 1 and "RVH000077" in row.inner_text() and "21" in row.inner_text()
    assert_accessible(page)
    shot(page, "clinic-admin-normalization")
    page.goto(f"{live_server.url}/dashboard/")

    # "Overdue doses" leads to the list behind the figure: the same two doses.
    with page.expect_navigation():
        page.get_by_role("link", name="Overdue doses").click()
    assert "overdue=true" in page.url
    # The worklist (regimens/worklist_pages.py): one row per regimen, its first overdue dose and the other one.
    listed = page.locator("main").inner_text()
    assert "Doses overdue (1)" in listed and "RVH000042" in listed and "and 1 more dose due" in listed

    # Invite a nurse.
    page.goto(f"{live_server.url}/staff/")
    assert_accessible(page)
    page.get_by_label("Email address").fill("nia@example.org")
    page.get_by_label("First name").fill("Nia")
    page.get_by_label("Nurse").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Send the invitation").click()
    expect(page.get_by_text("nia@example.org was added")).to_be_visible()
    assert_accessible(page)
    shot(page, "clinic-admin-staff")

    # The nurse follows the link in the email, chooses a password and signs in.
    (email,) = mailoutbox
    link = re.search(r"/password-reset/\S+", email.body)
    assert link is not None
    nurse_page = browser.new_page()
    nurse_page.goto(f"{live_server.url}{link.group(0)}")
    nurse_page.get_by_label("New password", exact=True).fill("a-long-new-pass-42")
    nurse_page.get_by_label("New password confirmation").fill("a-long-new-pass-42")
    with nurse_page.expect_navigation():
        nurse_page.get_by_role("button", name="Save the password").click()
    nurse = type(admin).objects.get(username="nia@example.org")
    sign_in(browser, live_server, nurse, password="a-long-new-pass-42").close()

    # The admin sees the sign-in, then deactivates the nurse.
    page.goto(f"{live_server.url}/staff/")
    assert "Never" not in page.locator("tr", has_text="nia@example.org").inner_text()
    with page.expect_navigation():
        page.get_by_role("link", name="Nia").click()
    assert_accessible(page)
    with page.expect_navigation():
        page.get_by_role("button", name="Deactivate this account").click()
    expect(page.get_by_text("The account was deactivated")).to_be_visible()
    shot(page, "clinic-admin-staff-detail")

    # The audit log shows the invitation, the nurse's sign-in and the deactivation; it exports as CSV.
    page.goto(f"{live_server.url}/audit/")
    table = page.locator("table").inner_text()
    assert "Staff invited" in table and "Signed in" in table and "Staff deactivated" in table
    assert_accessible(page)
    shot(page, "clinic-admin-audit")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download these events as CSV").click()
    csv_text = open(download.value.path(), encoding="utf-8-sig").read()
    assert csv_text.startswith("When,Who,Kind,Action") and "staff_deactivated" in csv_text
