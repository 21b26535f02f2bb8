"""The pages pass their Content Security Policy in a real Chromium (issue 12): no script, style or other
resource refused on the sign-in page, the landing page, the admin or the API docs."""

from __future__ import annotations

from typing import Any

import pytest

from patients.models import Role
from tests.browser.conftest import sign_in
from tests.factories import staff_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def refusals(page: Any) -> list[str]:
    seen: list[str] = []
    page.on(
        "console",
        lambda message: seen.append(message.text) if "Content Security Policy" in message.text else None,
    )
    return seen


def test_the_pages_load_nothing_their_policy_refuses(browser: Any, live_server: Any, clinic: Any) -> None:
    lead = staff_user(clinic, Role.ADMIN, username="csp-lead")
    lead.is_staff = True
    lead.is_superuser = True
    lead.save()
    anonymous = browser.new_page()
    refused = refusals(anonymous)
    anonymous.goto(f"{live_server.url}/login/")
    anonymous.wait_for_load_state("networkidle")
    assert refused == [], refused

    page = sign_in(browser, live_server, lead)
    refused = refusals(page)
    for path in ["/", "/admin/", "/admin/patients/patient/", "/admin/regimens/protocol/", "/api/docs/"]:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        assert refused == [], (path, refused)
    page.wait_for_selector("text=/api/doses/{id}/administer/", timeout=15000)
