"""The patient page's regimen section and its action pages (regimens/pages.py), for what only the API did before:

- RULES §10 V-10: a clinician closes a lab recheck by hand from its row: "Mark as done" (drawn elsewhere, with a
  note) or "Cancel" (with a reason), through the services POST /api/lab-rechecks/{id}/complete|cancel/ call;
- RULES §10 V-9, R-US-1: a clinician confirms the gate of the next phase ("Confirm the next phase"), through the
  service of POST /api/regimens/{id}/confirm-gate/;
- RULES §1.3 rule 4: the prompt of the phase in progress ("urgent specialist advice ...") on the regimen's card;
- RULES §10 V-12: the S-2 low-platelet warning on a planned IM dose in the patient page's dose table and in the
  calendar's day view, from the worklist's selector (regimens.selectors.doses_pending_warnings).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from patients.models import DeficiencyCause
from regimens.models import (
    DecisionKind,
    DoseStatus,
    LabRecheck,
    RecheckStatus,
    Regimen,
    RegimenDecision,
    ScheduledDose,
)
from regimens.protocol_data import NEURO_PROMPT
from regimens.services import dose_record_administration
from tests.conftest import page_text
from tests.factories import LabResultFactory, PatientFactory
from tests.timeline import day, noon, start_treatment

pytestmark = pytest.mark.django_db


def web(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response: Any) -> str:
    return response.content.decode()


def recheck_of(regimen: Regimen, key: str = "L-6@14") -> LabRecheck:
    return LabRecheck.objects.get(regimen=regimen, key=key)


def row(body: str, element_id: str) -> str:
    """The table row `<tr ... id="element_id">` of the page, to its end."""
    match = re.search(rf'(?s)<tr class="nhsuk-table__row" id="{element_id}">.*?</tr>', body)
    assert match, f"no row {element_id}"
    return match.group(0)


# --- RULES §10 V-10: close a recheck by hand -----------------------------------------------------------------


def test_a_clinician_marks_a_recheck_done_from_its_row(clinician: Any, patient: Any, clock: Any) -> None:
    regimen = start_treatment(patient)
    recheck = recheck_of(regimen)
    client = web(clinician)
    page = text(client.get(f"/patients/{patient.pk}/"))
    recheck_row = row(page, f"recheck-{recheck.pk}")
    assert f'href="/rechecks/{recheck.pk}/done/"' in recheck_row
    assert f'href="/rechecks/{recheck.pk}/cancel/"' in recheck_row

    form = client.get(f"/rechecks/{recheck.pk}/done/")
    assert form.status_code == 200
    assert "Where and when was it drawn?" in text(form) and f"/patients/{patient.pk}/labs/new/" in text(form)

    response = client.post(f"/rechecks/{recheck.pk}/done/", {"note": "Drawn at the GP surgery on 18 January"})

    assert response.status_code == 302 and response["Location"] == f"/patients/{patient.pk}/#regimens"
    recheck.refresh_from_db()
    assert (recheck.status, recheck.close_note, recheck.closed_by) == (
        RecheckStatus.DONE,
        "Drawn at the GP surgery on 18 January",
        clinician,
    )
    assert recheck.completed_at is not None
    after = text(client.get(response["Location"]))
    assert "Lab recheck marked as done." in after
    closed_row = row(after, f"recheck-{recheck.pk}")
    assert "Drawn at the GP surgery on 18 January" in closed_row and "/done/" not in closed_row  # no action left


def test_a_clinician_cancels_a_recheck_with_a_reason(clinician: Any, patient: Any, clock: Any) -> None:
    regimen = start_treatment(patient)
    recheck = recheck_of(regimen)
    client = web(clinician)

    response = client.post(f"/rechecks/{recheck.pk}/cancel/", {"reason": "Admitted; the ward takes the bloods"})

    assert response.status_code == 302
    recheck.refresh_from_db()
    assert (recheck.status, recheck.close_note, recheck.closed_by, recheck.completed_at) == (
        RecheckStatus.CANCELLED,
        "Admitted; the ward takes the bloods",
        clinician,
        None,
    )
    assert "Lab recheck cancelled." in text(client.get(response["Location"]))


@pytest.mark.parametrize(
    ("action", "field", "value", "message"),
    [
        ("done", "note", "", "This field is required."),
        ("done", "note", "   ", "This field is required."),
        ("done", "note", "x" * 501, "at most 500 characters"),
        ("cancel", "reason", "", "This field is required."),
    ],
)
def test_bad_input_shows_the_form_again_with_the_field_error_and_writes_nothing(
    clinician: Any, patient: Any, clock: Any, action: str, field: str, value: str, message: str
) -> None:
    regimen = start_treatment(patient)
    recheck = recheck_of(regimen)

    response = web(clinician).post(f"/rechecks/{recheck.pk}/{action}/", {field: value})

    assert response.status_code == 200
    assert response.context["form"].errors.keys() == {field}
    body = text(response)
    assert "There is a problem" in body and f'href="#id_{field}"' in body and message in body
    recheck.refresh_from_db()
    assert (recheck.status, recheck.close_note, recheck.closed_by) == (RecheckStatus.DUE, "", None)


def test_a_recheck_already_closed_is_refused_with_the_services_reason(clinician: Any, patient: Any, clock: Any) -> None:
    regimen = start_treatment(patient)
    recheck = recheck_of(regimen)
    client = web(clinician)
    assert client.post(f"/rechecks/{recheck.pk}/done/", {"note": "Drawn at the GP"}).status_code == 302

    refused = client.post(f"/rechecks/{recheck.pk}/cancel/", {"reason": "Not needed"})

    assert refused.status_code == 200 and "the recheck is already done" in text(refused)
    recheck.refresh_from_db()
    assert (recheck.status, recheck.close_note) == (RecheckStatus.DONE, "Drawn at the GP")


def test_a_nurse_sees_no_recheck_action_and_gets_403(nurse: Any, patient: Any, clock: Any) -> None:
    regimen = start_treatment(patient)
    recheck = recheck_of(regimen)
    client = web(nurse)

    assert "/rechecks/" not in text(client.get(f"/patients/{patient.pk}/"))
    assert client.get(f"/rechecks/{recheck.pk}/done/").status_code == 403
    assert client.post(f"/rechecks/{recheck.pk}/done/", {"note": "Drawn at the GP"}).status_code == 403
    assert client.post(f"/rechecks/{recheck.pk}/cancel/", {"reason": "Not needed"}).status_code == 403
    recheck.refresh_from_db()
    assert (recheck.status, recheck.close_note) == (RecheckStatus.DUE, "")


def test_another_clinics_recheck_is_a_404(clinician: Any, other_patient: Any, clock: Any) -> None:
    recheck = recheck_of(start_treatment(other_patient))
    client = web(clinician)
    assert client.get(f"/rechecks/{recheck.pk}/done/").status_code == 404
    assert client.post(f"/rechecks/{recheck.pk}/cancel/", {"reason": "Not needed"}).status_code == 404


# --- RULES §10 V-9, R-US-1: confirm the gate of the next phase ------------------------------------------------


def waiting_at_the_gate(patient: Any, clock: Any) -> Regimen:
    """cyano-us-label with its seven daily doses given: waiting for a clinician to confirm the next phase."""
    regimen = start_treatment(patient, "cyano-us-label")
    daily = list(regimen.doses.filter(phase="daily", status=DoseStatus.PLANNED).order_by("sequence"))
    clock.move_to(noon(daily[-1].due_date))  # the clinic's days: the seventh dose may fall after day 6
    for dose in daily:
        dose_record_administration(dose=dose, administered_at=datetime.combine(dose.due_date, time(10), tzinfo=UTC))
    regimen.refresh_from_db()
    assert regimen.awaiting_gate is True
    return regimen


def test_a_clinician_confirms_the_gate_and_the_next_phase_is_planned(clinician: Any, patient: Any, clock: Any) -> None:
    regimen = waiting_at_the_gate(patient, clock)
    today = regimen.doses.filter(phase="daily").latest("due_date").due_date
    client = web(clinician)
    page = text(client.get(f"/patients/{patient.pk}/"))
    assert "waiting for a clinician to confirm the next phase" in page
    assert f'href="/regimens/{regimen.pk}/confirm-gate/"' in page and "Confirm the next phase" in page

    form = page_text(text(client.get(f"/regimens/{regimen.pk}/confirm-gate/")))
    assert "Alternate days" in form and "Clinical improvement and a reticulocyte response observed" in form

    # A date in the future is refused on its field, and nothing is written.
    refused = client.post(f"/regimens/{regimen.pk}/confirm-gate/", {"confirmed_on": day(60).isoformat()})
    assert refused.status_code == 200 and refused.context["form"].errors.keys() == {"confirmed_on"}
    assert "cannot be in the future" in text(refused)
    assert not RegimenDecision.objects.filter(regimen=regimen).exists()

    response = client.post(f"/regimens/{regimen.pk}/confirm-gate/", {"note": "Reticulocytes up on day 6"})

    assert response.status_code == 302 and response["Location"] == f"/patients/{patient.pk}/#regimens"
    decision = RegimenDecision.objects.get(regimen=regimen)
    assert (decision.kind, decision.note, decision.decided_by, decision.decided_on) == (
        DecisionKind.CONFIRM_GATE,
        "Reticulocytes up on day 6",
        clinician,
        today,
    )
    regimen.refresh_from_db()
    assert regimen.awaiting_gate is False
    assert regimen.doses.filter(phase="alternate", status=DoseStatus.PLANNED).count() == 7  # as the API plans them
    after = text(client.get(response["Location"]))
    assert "Next phase confirmed" in after and "Confirm the next phase" not in after


def test_no_gate_button_when_nobody_is_waiting_and_the_service_refuses_one(
    clinician: Any, patient: Any, clock: Any
) -> None:
    regimen = start_treatment(patient)
    client = web(clinician)
    assert "confirm-gate" not in text(client.get(f"/patients/{patient.pk}/"))

    refused = client.post(f"/regimens/{regimen.pk}/confirm-gate/", {})

    assert refused.status_code == 200 and "no phase of this regimen is waiting" in text(refused)
    assert not RegimenDecision.objects.filter(regimen=regimen).exists()


def test_a_nurse_sees_no_gate_button_and_gets_403(nurse: Any, patient: Any, clock: Any) -> None:
    regimen = waiting_at_the_gate(patient, clock)
    client = web(nurse)
    page = text(client.get(f"/patients/{patient.pk}/"))
    assert "waiting for a clinician to confirm the next phase" in page and "confirm-gate" not in page
    assert client.get(f"/regimens/{regimen.pk}/confirm-gate/").status_code == 403
    assert client.post(f"/regimens/{regimen.pk}/confirm-gate/", {"note": "x"}).status_code == 403
    regimen.refresh_from_db()
    assert regimen.awaiting_gate is True and not regimen.decisions.exists()


# --- RULES §1.3 rule 4: the phase's prompt on the card --------------------------------------------------------


def test_the_card_shows_the_prompt_of_the_phase_in_progress(nurse: Any, patient: Any, clock: Any) -> None:
    start_treatment(patient, "hydroxo-uk-neuro")
    body = page_text(text(web(nurse).get(f"/patients/{patient.pk}/")))
    assert "For this phase:" in body and NEURO_PROMPT in body


def test_no_prompt_when_the_phase_has_none(nurse: Any, patient: Any, clock: Any) -> None:
    start_treatment(patient)
    body = page_text(text(web(nurse).get(f"/patients/{patient.pk}/")))
    assert "For this phase:" not in body and NEURO_PROMPT not in body


# --- RULES §10 V-12: S-2 on a planned IM dose wherever a nurse sees it ----------------------------------------


def low_platelets(patient: Any) -> None:
    LabResultFactory(
        patient=patient,
        platelets=True,
        value_as_entered="45",
        value_canonical=Decimal("45"),
        collected_at=noon(day(1)),
    )


def oral_patient(clinic: Any) -> Any:
    patient = PatientFactory(clinic=clinic, deficiency_cause=DeficiencyCause.DIET, family_name="Oralworth")
    start_treatment(patient, "diet-oral")
    low_platelets(patient)
    return patient


def first_planned(patient: Any) -> ScheduledDose:
    dose = ScheduledDose.objects.filter(patient=patient, status=DoseStatus.PLANNED).order_by("due_date", "id").first()
    assert dose is not None
    return dose


def test_the_dose_table_shows_s2_on_planned_im_doses_not_on_oral_ones(nurse: Any, clinic: Any, clock: Any) -> None:
    injected = PatientFactory(clinic=clinic)
    start_treatment(injected)
    low_platelets(injected)
    oral = oral_patient(clinic)
    clock.move_to(noon(day(2)))
    client = web(nurse)

    body = text(client.get(f"/patients/{injected.pk}/"))
    planned = ScheduledDose.objects.filter(patient=injected, status=DoseStatus.PLANNED).order_by("due_date", "id")
    for dose in planned[:8]:  # the planned doses the table shows
        assert dose.route == "IM"
        assert "S-2" in row(body, f"dose-{dose.pk}") and "IM injection" in row(body, f"dose-{dose.pk}")
    given = ScheduledDose.objects.get(patient=injected, status=DoseStatus.GIVEN)
    assert "S-2" not in row(body, f"dose-{given.pk}")  # recorded: nothing to warn of

    oral_body = text(client.get(f"/patients/{oral.pk}/"))
    dose = first_planned(oral)
    assert dose.route != "IM"
    assert "S-2" not in row(oral_body, f"dose-{dose.pk}") and "app-dose-warning" not in oral_body


def test_the_calendar_day_shows_s2_on_a_planned_im_dose_not_on_an_oral_one(nurse: Any, clinic: Any, clock: Any) -> None:
    injected = PatientFactory(clinic=clinic, family_name="Injectford")
    start_treatment(injected)
    low_platelets(injected)
    oral = oral_patient(clinic)
    clock.move_to(noon(day(2)))
    im_dose = first_planned(injected)
    oral_dose = ScheduledDose.objects.get(patient=oral, status=DoseStatus.PLANNED, due_date=im_dose.due_date)

    # Doses taken at home are listed with ?home=1.
    body = text(web(nurse).get(f"/calendar/?view=day&date={im_dose.due_date.isoformat()}&home=1"))

    rows = re.findall(r'(?s)<tr class="nhsuk-table__row">.*?</tr>', body)
    im_row = next(r for r in rows if "Injectford" in r)
    oral_row = next(r for r in rows if "Oralworth" in r)
    assert "S-2" in im_row and "IM injection" in im_row
    assert oral_dose.route != "IM" and "S-2" not in oral_row and "None" in oral_row
