"""Pages in a real Chromium (Debian's /usr/bin/chromium, driven by Playwright)."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from patients.models import Role
from regimens.models import Protocol
from regimens.services import regimen_start
from tests.browser.conftest import SHOTS, sign_in
from tests.factories import PatientFactory, staff_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_shows_the_api_docs_without_reaching_the_internet(browser: Any, live_server: Any, clinic: Any) -> None:
    # The docs are for signed-in users (issue 12).
    page = sign_in(browser, live_server, staff_user(clinic, Role.NURSE, username="docs-reader"))
    # Nothing may come from outside this server: clinic networks often block CDNs.
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(live_server.url) else outside.append(r.url))

    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector("text=/api/doses/{id}/administer/", timeout=15000)

    assert outside == []
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "api-docs.png"))


def test_it_lets_a_superuser_find_a_patients_regimen_in_the_admin_and_sends_clinic_staff_to_the_web_app(
    browser: Any, live_server: Any, builtin_protocols: None, clinic: Any
) -> None:
    """The Django admin is the superusers' tool (tracker/admin_site.py): a clinic admin, even with is_staff
    and every permission, is refused at its sign-in form with a pointer to the web app."""
    clinic_lead = staff_user(clinic, Role.ADMIN, username="lead")
    clinic_lead.is_staff = True
    clinic_lead.save(update_fields=["is_staff"])
    from django.contrib.auth.models import Permission

    clinic_lead.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["patients", "regimens"]))
    refused = browser.new_page()
    refused.goto(f"{live_server.url}/admin/login/")
    refused.fill("#id_username", "lead")
    refused.fill("#id_password", "pw-for-tests")
    refused.click("input[type=submit]")
    assert "Clinic staff sign in to the web app at /login/" in refused.locator(".errornote").inner_text()
    refused.goto(f"{live_server.url}/admin/patients/patient/?q=RVH424242")
    assert "/admin/login/" in refused.url  # not signed in to the admin
    refused.close()

    admin = staff_user(clinic, Role.ADMIN, username="helen")
    admin.is_staff = True
    admin.is_superuser = True
    admin.save(update_fields=["is_staff", "is_superuser"])
    patient = PatientFactory(clinic=clinic, mrn="RVH424242", family_name="Okafor")
    regimen_start(
        patient=patient, protocol=Protocol.objects.get(code="ileal-resection"), start_date=timezone.localdate()
    )

    page = browser.new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "helen")
    page.fill("#id_password", "pw-for-tests")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/patients/patient/?q=RVH424242")

    assert page.locator("#result_list tbody tr").count() == 1
    with page.expect_navigation():
        page.click("text=Okafor")
    assert "RVH424242" in page.content()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "admin-patient.png"), full_page=True)


def test_it_draws_a_patients_hemoglobin_rising_into_its_reference_band(
    browser: Any, live_server: Any, builtin_protocols: None, clinic: Any
) -> None:
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from patients.models import LabResult

    # The admin is the superusers' tool (tracker/admin_site.py).
    admin = staff_user(clinic, Role.ADMIN, username="helen")
    admin.is_staff = True
    admin.is_superuser = True
    admin.save(update_fields=["is_staff", "is_superuser"])
    patient = PatientFactory(clinic=clinic, mrn="RVH515151", family_name="Nowak", sex="female")
    start = datetime(2027, 1, 4, 9, tzinfo=UTC)
    for day, value, interpretation in [(0, "82", "low"), (14, "101", "low"), (28, "118", "low"), (56, "131", "normal")]:
        LabResult.objects.create(
            patient=patient,
            analyte="hemoglobin",
            loinc="718-7",
            value_as_entered=value,
            unit_as_entered="g/L",
            value_canonical=Decimal(value),
            unit_canonical="g/L",
            interpretation=interpretation,
            collected_at=start + timedelta(days=day),
        )

    page = browser.new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "helen")
    page.fill("#id_password", "pw-for-tests")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/patients/patient/{patient.pk}/change/")
    page.click("text=Charts of every analyte")

    chart = page.locator("#trend-hemoglobin svg")
    assert chart.is_visible()
    assert chart.locator("circle.point").count() == 4
    assert chart.locator("rect.band").bounding_box()["height"] > 10  # the band is drawn, not a hairline
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "admin-lab-trends.png"), full_page=True)
