"""The patient pages in a real Chromium: a clinician finds a patient, starts a regimen (after a preview)
and prints the injection card; an alert is acknowledged in place on the patient page; a recheck drawn elsewhere is
marked as done and a gate confirmed. Every page passes the accessibility check."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from patients.models import Role
from regimens.models import DoseStatus, Protocol, Regimen, ScheduledDose
from regimens.services import dose_record_administration, regimen_start
from tests.browser.conftest import assert_accessible, shot, sign_in
from tests.factories import AlertFactory, LabResultFactory, PatientFactFactory, PatientFactory, staff_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def history(patient: Any) -> None:
    """Haemoglobin results over the last weeks, a fact, so the page has something to draw."""
    now = timezone.now()
    for days, value in ((-30, 92), (-16, 101), (-9, 112), (-2, 124)):
        LabResultFactory(
            patient=patient,
            collected_at=now + timedelta(days=days),
            value_as_entered=str(value),
            value_canonical=Decimal(value),
            interpretation="low" if value < 115 else "normal",
        )
    PatientFactFactory(patient=patient)


def test_a_clinician_starts_a_regimen_and_prints_the_injection_card(
    browser: Any, live_server: Any, clinic: Any, builtin_protocols: None
) -> None:
    clinic.phone, clinic.address = "020 7946 0000", "Riverside Hospital, Outpatients B\n1 River Lane, London E1 1AA"
    clinic.save(update_fields=["phone", "address"])
    clinician = staff_user(clinic, Role.CLINICIAN, username="dr-okafor")
    patient = PatientFactory(clinic=clinic, given_name="Ada", family_name="Lovelace", mrn="RH-1815")
    history(patient)
    page = sign_in(browser, live_server, clinician)

    page.goto(f"{live_server.url}/patients/")
    page.get_by_label("Name or MRN").fill("lovelace")
    page.get_by_role("button", name="Search").click()
    assert_accessible(page)
    shot(page, "patient-search")
    page.get_by_role("link", name="Lovelace, Ada").click()
    expect(page.get_by_role("heading", name="Regimens and rechecks")).to_be_visible()
    assert_accessible(page)

    page.get_by_role("link", name="Start a regimen").click()
    standard = Protocol.objects.get(code="hydroxo-uk-standard")
    page.get_by_label("Protocol").select_option(value=str(standard.pk))
    page.get_by_role("button", name="Preview the schedule").click()
    expect(page.get_by_role("heading", name="Preview: nothing is stored yet")).to_be_visible()
    assert_accessible(page)
    shot(page, "regimen-start-preview")
    assert not Regimen.objects.filter(patient=patient).exists()

    page.get_by_role("button", name="Start the regimen").click()
    page.wait_for_url(f"**/patients/{patient.pk}/#regimens")
    expect(page.get_by_text("started; its doses are planned")).to_be_visible()
    regimen = Regimen.objects.get(patient=patient)
    assert regimen.created_by == clinician

    first = ScheduledDose.objects.filter(regimen=regimen, status=DoseStatus.PLANNED).order_by("due_date").first()
    dose_record_administration(dose=first, user=clinician, administered_at=timezone.now(), lot_number="HX2291")
    AlertFactory(patient=patient, message="Haemoglobin recheck due in 7 days.")
    page.reload()
    expect(page.get_by_role("cell", name="Given").first).to_be_visible()
    expect(page.locator("svg .band").first).to_be_visible()  # the reference band shaded
    assert_accessible(page)
    shot(page, "patient")

    page.get_by_role("link", name="Injection card (print)").click()
    expect(page.get_by_role("heading", name="Your appointment card")).to_be_visible()
    assert_accessible(page)
    page.emulate_media(media="print")
    expect(page.locator("header.nhsuk-header")).to_be_hidden()  # only the card is printed
    expect(page.get_by_role("button", name="Print the card")).to_be_hidden()
    expect(page.get_by_text("Injection at the clinic").first).to_be_visible()
    expect(page.get_by_text("020 7946 0000")).to_be_visible()
    shot(page, "injection-card-print")


def test_an_alert_is_acknowledged_in_place_on_the_patient_page(
    browser: Any, live_server: Any, clinic: Any, builtin_protocols: None
) -> None:
    clinician = staff_user(clinic, Role.CLINICIAN, username="dr-okafor")
    patient = PatientFactory(clinic=clinic, given_name="Grace", family_name="Hopper")
    alert = AlertFactory(
        patient=patient, severity="critical", kind="platelets_critical", rule_id="A-P3",
        message="Platelets 38 x10^9/L after treatment started.", action_text="Same-day haematology review.",
    )
    page = sign_in(browser, live_server, clinician)
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    card = page.locator(f"#alert-{alert.pk}")
    url = page.url

    card.get_by_role("button", name="Acknowledge").click()
    card = page.locator(f"#alert-{alert.pk}")
    card.get_by_text("a critical alert needs a note saying what was done").first.wait_for()
    card.get_by_label("What was done").fill("Admitted for same-day review")
    card.get_by_role("button", name="Acknowledge").click()
    page.locator(f"#alert-{alert.pk}").get_by_text("Admitted for same-day review").wait_for()
    assert page.url == url  # in place: no page load
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by, alert.acknowledgement_note) == (
        "acknowledged", clinician, "Admitted for same-day review"
    )
    assert_accessible(page)
    shot(page, "patient-alert-acknowledged")


def test_a_clinician_stops_a_regimen_after_reading_its_warning(
    browser: Any, live_server: Any, clinic: Any, builtin_protocols: None
) -> None:
    clinician = staff_user(clinic, Role.CLINICIAN, username="dr-okafor")
    patient = PatientFactory(clinic=clinic, given_name="Alan", family_name="Turing")  # pernicious anaemia
    standard = Protocol.objects.get(code="hydroxo-uk-standard")
    regimen_start(patient=patient, protocol=standard, start_date=timezone.localdate())
    page = sign_in(browser, live_server, clinician)
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.get_by_role("link", name="Stop the regimen").click()
    page.get_by_label("Why is the regimen stopped?").fill("Moved to another area")
    page.get_by_role("button", name="Stop the regimen").click()
    # S-5: lifelong therapy for an irreversible cause; the warning is listed to acknowledge.
    expect(page.get_by_role("alert").get_by_text("There is a problem")).to_be_visible()
    assert_accessible(page)
    shot(page, "regimen-stop-warning")
    page.get_by_role("group", name="I have read these warnings").get_by_role("checkbox").first.check()
    page.get_by_role("button", name="Stop the regimen").click()
    page.wait_for_url(f"**/patients/{patient.pk}/#regimens")
    expect(page.get_by_text("Regimen stopped").first).to_be_visible()
    assert Regimen.objects.get(patient=patient).status == "stopped"


def test_a_clinician_closes_a_recheck_drawn_elsewhere_and_confirms_a_gate(
    browser: Any, live_server: Any, clinic: Any, builtin_protocols: None
) -> None:
    # RULES §10 V-10 and V-9 on the web: a recheck marked as done from its row, a gate confirmed from the card.
    clinician = staff_user(clinic, Role.CLINICIAN, username="dr-mensah")
    patient = PatientFactory(clinic=clinic, given_name="Grace", family_name="Hopper")
    label = Protocol.objects.get(code="cyano-us-label")
    started = timezone.localdate() - timedelta(days=14)
    regimen = regimen_start(patient=patient, protocol=label, start_date=started)
    for dose in regimen.doses.filter(phase="daily", status=DoseStatus.PLANNED).order_by("sequence"):
        dose_record_administration(dose=dose, administered_at=timezone.now() - timedelta(days=7))
    regimen.refresh_from_db()
    assert regimen.awaiting_gate is True
    recheck = regimen.lab_rechecks.filter(status__in=["due", "overdue"]).order_by("due_date").first()
    assert recheck is not None

    page = sign_in(browser, live_server, clinician)
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.locator(f'a[href="/rechecks/{recheck.pk}/done/"]').click()
    page.get_by_role("button", name="Mark the lab recheck as done").click()  # empty: its field says why
    expect(page.get_by_role("alert").get_by_text("There is a problem")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Where and when was it drawn?").fill("Drawn at the GP surgery on Monday")
    page.get_by_role("button", name="Mark the lab recheck as done").click()
    page.wait_for_url(f"**/patients/{patient.pk}/#regimens")
    expect(page.get_by_text("Lab recheck marked as done.").first).to_be_visible()
    recheck.refresh_from_db()
    assert (recheck.status, recheck.closed_by) == ("done", clinician)

    page.get_by_role("link", name="Confirm the next phase").click()
    expect(page.get_by_text("Clinical improvement and a reticulocyte response observed")).to_be_visible()
    assert_accessible(page)
    shot(page, "regimen-confirm-gate")
    page.get_by_label("Note").fill("Reticulocytes up on day 6")
    page.get_by_role("button", name="Confirm the next phase").click()
    page.wait_for_url(f"**/patients/{patient.pk}/#regimens")
    expect(page.get_by_text("Next phase confirmed").first).to_be_visible()
    assert_accessible(page)
    shot(page, "patient-page-after-gate")
    regimen.refresh_from_db()
    assert regimen.awaiting_gate is False
