"""A clinic admin makes the clinic's own copy of a shared protocol and changes a phase within its range, in a real
Chromium (issue 12); every page passes the accessibility check, the error summary included."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from patients.models import Role
from regimens.models import Protocol
from tests.browser.conftest import assert_accessible, shot, sign_in
from tests.factories import staff_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_clinic_admin_copies_and_localises_a_protocol(
    browser: Any, live_server: Any, builtin_protocols: None, clinic: Any
) -> None:
    page = sign_in(browser, live_server, staff_user(clinic, Role.ADMIN, username="ada"))
    page.goto(f"{live_server.url}/staff/protocols/")
    expect(page.get_by_role("heading", name="Protocols", level=1)).to_be_visible()
    assert_accessible(page)

    shared = Protocol.objects.get(code="hydroxo-uk-standard")
    with page.expect_navigation():
        page.locator("tr", has_text=shared.code).get_by_role("button", name=f"Make a copy for {clinic.name}").click()
    assert f"{shared.name} was copied for {clinic.name}" in page.locator("main").inner_text()
    assert_accessible(page)

    with page.expect_navigation():
        page.locator('a[href$="/phases/maintenance/"]', has_text="Change this phase").click()
    page.get_by_label("Spacing number").fill("14")
    with page.expect_navigation():
        page.get_by_role("button", name="Save the phase").click()
    summary = page.locator(".nhsuk-error-summary")
    assert "must be within the phase's range: 8–13" in summary.inner_text()
    assert_accessible(page)
    shot(page, "clinic-admin-protocol-phase-error")

    page.get_by_label("Spacing number").fill("8")
    with page.expect_navigation():
        page.get_by_role("button", name="Save the phase").click()
    assert "The phase was changed" in page.locator("main").inner_text()
    copy = Protocol.objects.get(clinic=clinic)
    assert copy.phases.get(key="maintenance").spacing_value == 8
    assert shared.phases.get(key="maintenance").spacing_value == 12
