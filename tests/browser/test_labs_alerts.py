"""Lab entry, the CSV import and the alerts page in a real Chromium: a clinician enters a falling platelet
count and acknowledges the critical alert it opens (RULES A-P3), in place on /alerts/; a nurse taking the bloods
of a pregnant patient after nitrous oxide reads which tests to request above the entry form (RULES S-14, §10
V-15); a nurse imports a small CSV file and reads the report of every row. Every page passes the accessibility
check."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from notifications.models import Alert, AlertStatus
from patients.models import FactKind, LabResult, Role
from tests.browser.conftest import assert_accessible, shot, sign_in
from tests.factories import LabResultFactory, PatientFactFactory, PatientFactory, staff_user
from tests.timeline import T0, day, noon, start_treatment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_clinician_enters_a_falling_platelet_count_and_acknowledges_the_alert_it_opens(
    browser: Any, live_server: Any, builtin_protocols: None, clinic: Any, clock: Any
) -> None:
    # Given a patient with a low baseline platelet count, on treatment since T0, and it is day 5
    patient = PatientFactory(clinic=clinic, given_name="Ada", family_name="Okafor", mrn="RVH424242")
    LabResultFactory(
        patient=patient,
        analyte="platelets",
        loinc="777-3",
        value_as_entered="90",
        unit_as_entered="10^9/L",
        unit_canonical="10^9/L",
        interpretation="low",
        collected_at=noon(T0) - timedelta(days=1),
    )
    start_treatment(patient)
    clock.move_to(noon(day(5)))
    clinician = staff_user(clinic, Role.CLINICIAN, username="dr-ben")
    page = sign_in(browser, live_server, clinician)

    # When she opens the lab entry form and types a value that is not a number
    page.goto(f"{live_server.url}/patients/{patient.pk}/labs/new/")
    expect(page.get_by_role("heading", name="Enter lab results")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Collected at").fill(f"{day(5).isoformat()}T09:00")
    page.get_by_label("Platelets", exact=True).fill("fifteen")
    with page.expect_navigation():
        page.get_by_role("button", name="Store results").click()

    # Then the error names the field, and nothing is stored
    summary = page.get_by_role("alert")
    expect(summary.get_by_text("There is a problem")).to_be_visible()
    expect(summary.get_by_role("link", name="Platelets value:")).to_be_visible()
    assert_accessible(page)
    shot(page, "lab-entry-error")
    assert LabResult.objects.filter(patient=patient).count() == 1

    # When she corrects it to 15 x10^9/L and stores it
    page.get_by_label("Platelets", exact=True).fill("15")
    assert page.get_by_label("Platelets unit").input_value() == "10^9/L"
    with page.expect_navigation():
        page.get_by_role("button", name="Store results").click()
    # Then she is back on the patient page (another branch builds it; its layout shows the message), told
    # what was stored and that it opened a critical platelets alert
    assert page.url == f"{live_server.url}/patients/{patient.pk}/"
    status = page.get_by_role("status").filter(has_text="Stored 1 result")
    assert "Platelets 15 10^9/L (critically low)" in status.inner_text()
    assert "It opened an alert: Platelets falling or very low (A-P3) (critical)." in status.inner_text()

    # And the alert is on the alerts page, with the patient's name leading to the patient's alerts
    page.goto(f"{live_server.url}/alerts/")
    alert = Alert.objects.get(patient=patient, kind="platelets_critical")
    card = page.locator(f"#alert-{alert.pk}")
    expect(card.get_by_text("Critical", exact=True)).to_be_visible()
    assert card.get_by_role("link", name="Okafor, Ada").get_attribute("href") == f"/patients/{patient.pk}/#alerts"
    assert_accessible(page)
    shot(page, "alerts")

    # When she acknowledges it without a note, the card says a note is needed, in place (no reload)
    page.evaluate("window.notReloaded = true")
    card.get_by_role("button", name="Acknowledge").click()
    card = page.locator(f"#alert-{alert.pk}")
    card.get_by_text("a critical alert needs a note saying what was done").wait_for()
    assert page.evaluate("window.notReloaded") is True
    assert_accessible(page)

    # And with a note, the alert is acknowledged in place
    card.get_by_label("What was done").fill("Admitted; haematology called")
    card.get_by_role("button", name="Acknowledge").click()
    page.locator(f"#alert-{alert.pk}").get_by_text("Acknowledged.", exact=True).wait_for()
    assert page.evaluate("window.notReloaded") is True
    assert_accessible(page)
    shot(page, "alerts-acknowledged")
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by, alert.acknowledgement_note) == (
        AlertStatus.ACKNOWLEDGED,
        clinician,
        "Admitted; haematology called",
    )


def test_a_nurse_reads_the_information_prompts_above_the_entry_form(
    browser: Any, live_server: Any, clinic: Any, clock: Any
) -> None:
    # Given a pregnant patient whose deficiency was caused by nitrous oxide
    patient = PatientFactory(clinic=clinic, given_name="Maya", family_name="Rahman", deficiency_cause="nitrous_oxide")
    PatientFactFactory(patient=patient, kind=FactKind.PREGNANCY, onset_date=T0 - timedelta(days=90))
    nurse = staff_user(clinic, Role.NURSE, username="nora")
    page = sign_in(browser, live_server, nurse)

    # When the nurse opens the lab entry form
    page.goto(f"{live_server.url}/patients/{patient.pk}/labs/new/")

    # Then, above the form, she reads which tests to request first (S-14), as on the patient page
    prompts = page.locator("#prompts")
    expect(prompts).to_be_visible()
    expect(prompts.get_by_text("Pregnancy: request active B12 as the initial test (NG239).")).to_be_visible()
    expect(prompts.get_by_text("Nitrous oxide use: request homocysteine or MMA as the initial test")).to_be_visible()
    expect(prompts.get_by_text("For people of Black ethnicity")).to_be_visible()
    assert "S-7" not in prompts.inner_text()
    above = page.evaluate(
        "document.querySelector('#prompts').compareDocumentPosition(document.querySelector('#id_collected_at'))"
    )
    assert above & 4  # Node.DOCUMENT_POSITION_FOLLOWING: the form comes after the prompts
    assert_accessible(page)
    shot(page, "lab-entry-prompts")

    # And the result she enters is stored as before
    page.get_by_label("Collected at").fill(f"{T0.isoformat()}T09:00")
    page.get_by_label("Active B12 (holotranscobalamin)", exact=True).fill("30")
    with page.expect_navigation():
        page.get_by_role("button", name="Store results").click()
    assert page.url == f"{live_server.url}/patients/{patient.pk}/"
    assert LabResult.objects.get(patient=patient).analyte == "b12_active"


def test_a_nurse_imports_a_small_csv_and_reads_the_report_of_every_row(
    browser: Any, live_server: Any, clinic: Any, clock: Any
) -> None:
    patient = PatientFactory(clinic=clinic, mrn="RVH000123")
    nurse = staff_user(clinic, Role.NURSE, username="nora")
    page = sign_in(browser, live_server, nurse)

    page.goto(f"{live_server.url}/labs/import/")
    sample = page.get_by_role("link", name="Download a sample CSV file")
    assert sample.get_attribute("href") == "/labs/import/sample.csv"
    assert_accessible(page)
    text = (
        "mrn,analyte,value,unit,collected_at\n"
        "RVH000123,hemoglobin,9.1,g/dL,2027-01-04T09:30:00+00:00\n"
        "RVH000123,777-3,62,10^9/L,2027-01-04\n"
        "RVH000123,mcv,112,furlongs,2027-01-04\n"
    )
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "results.csv", "mimeType": "text/csv", "buffer": text.encode()}]
    )
    with page.expect_navigation():
        page.get_by_role("button", name="Check and import").click()

    expect(page.get_by_text("Nothing was stored")).to_be_visible()
    rows = page.locator("table.nhsuk-table tbody tr")
    assert rows.count() == 3
    assert rows.nth(2).inner_text().split("\t")[:3] == ["4", "Refused", "unit"]
    assert_accessible(page)
    shot(page, "lab-import-report")
    assert not LabResult.objects.filter(patient=patient).exists()

    # Keeping the valid rows stores them
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "results.csv", "mimeType": "text/csv", "buffer": text.encode()}]
    )
    page.get_by_label("Store the valid rows even if other rows are refused").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Check and import").click()
    expect(page.get_by_text("2 results stored")).to_be_visible()
    assert LabResult.objects.filter(patient=patient).count() == 2
