"""The regimen card's dose and recheck tables on the patient page (regimens.pages.DoseRow and RecheckRow): each row
says when, what, its status and who recorded what, as a nurse reads it, in the clinic's time zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client

from regimens.models import DoseStatus, RecheckStatus, ScheduledDose
from tests.conftest import page_text
from tests.factories import LabRecheckFactory
from tests.timeline import day, noon, start_treatment

pytestmark = pytest.mark.django_db


def row(body: str, element_id: str) -> str:
    """The HTML of the table row with that id."""
    found = re.search(rf'<tr class="nhsuk-table__row" id="{element_id}">(.*?)</tr>', body, re.S)
    assert found, element_id
    return found.group(1)


def cells(html: str) -> list[str]:
    return [" ".join(page_text(cell).split()) for cell in re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)]


def test_each_dose_row_says_when_what_and_who(clinician: Any, nurse: Any, patient: Any, clock: Any) -> None:
    regimen = start_treatment(patient)  # the first dose given at 10:00 UTC on 4 Jan 2027
    given, not_given, in_error, at_home = ScheduledDose.objects.filter(regimen=regimen).order_by("due_date")[:4]
    ScheduledDose.objects.filter(pk=given.pk).update(administered_by=nurse, lot_number="HX2291", site="left deltoid")
    ScheduledDose.objects.filter(pk=not_given.pk).update(
        status=DoseStatus.NOT_GIVEN, not_given_on=day(2), not_given_reason="Patient unwell", administered_by=nurse
    )
    ScheduledDose.objects.filter(pk=in_error.pk).update(
        status=DoseStatus.ENTERED_IN_ERROR, error_recorded_at=datetime(2027, 7, 1, 9, 5, tzinfo=UTC),
        error_recorded_by=clinician, error_reason="recorded on the wrong patient",
    )  # fmt: skip
    ScheduledDose.objects.filter(pk=at_home.pk).update(self_administered=True)
    clock.move_to(noon(day(8)))
    client = Client()
    client.force_login(clinician)
    body = client.get(f"/patients/{patient.pk}/").content.decode()

    first = row(body, f"dose-{given.pk}")
    assert cells(first)[0] == "4 Jan 2027"
    assert cells(first)[2] == f"{given.dose_mcg} mcg intramuscular"
    assert cells(first)[3] == "Given"
    assert "nhsuk-tag--green" in first
    assert cells(first)[4] == "4 Jan 2027 10:00 · nurse · lot HX2291 · left deltoid"
    assert cells(first)[5] == "Entered in error (4 Jan 2027)"  # a clinician may correct it

    second = row(body, f"dose-{not_given.pk}")
    assert cells(second)[3] == "Not given" and "nhsuk-tag--orange" in second
    assert cells(second)[4] == "6 Jan 2027 · nurse: Patient unwell"

    third = row(body, f"dose-{in_error.pk}")
    assert f"<s>{cells(third)[0]}</s>" in third  # struck through (RULES §10 V-14)
    assert cells(third)[3] == "Entered in error" and "nhsuk-tag--red" in third
    # 09:05 UTC on 1 July is 10:05 in the clinic's zone (Europe/London, summer time).
    assert cells(third)[4] == "1 Jul 2027 10:05 · clinician: recorded on the wrong patient"
    assert cells(third)[5] == ""  # not again

    home = row(body, f"dose-{at_home.pk}")
    assert cells(home)[2].endswith("mcg intramuscular (at home)")
    assert cells(home)[3] == "Planned" and "nhsuk-tag--blue" in home
    assert cells(home)[4] == "" and cells(home)[5] == ""


def test_each_recheck_row_says_its_window_tests_status_and_who_closed_it(
    clinician: Any, patient: Any, clock: Any
) -> None:
    regimen = start_treatment(patient)
    done = LabRecheckFactory(
        regimen=regimen, rule="L-6", day=20, status=RecheckStatus.DONE, close_note="done at the GP",
        closed_by=clinician, analytes=["hemoglobin", "mcv"], description="",
    )  # fmt: skip
    due = LabRecheckFactory(regimen=regimen, rule="L-7", day=60, status=RecheckStatus.DUE, description="Full count")
    clock.move_to(noon(day(8)))
    client = Client()
    client.force_login(clinician)
    body = client.get(f"/patients/{patient.pk}/").content.decode()

    closed = row(body, f"recheck-{done.pk}")
    assert cells(closed)[:4] == [
        "24 Jan 2027", "21 Jan – 27 Jan 2027", "hemoglobin, mcv (L-6)", "Done done at the GP · clinician"
    ]  # fmt: skip
    assert "nhsuk-tag--green" in closed and cells(closed)[4] == ""

    open_one = row(body, f"recheck-{due.pk}")
    assert cells(open_one)[2] == "Full count (L-7)"
    assert cells(open_one)[3] == "Due" and "nhsuk-tag--blue" in open_one
    assert cells(open_one)[4] == "Mark as done (L-7, 5 Mar 2027) Cancel (L-7, 5 Mar 2027)"
