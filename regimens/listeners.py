"""Regimens listen to what patients announce (tracker/events.py)."""

from __future__ import annotations

from typing import Any

from patients.models import Clinic
from regimens import pages
from regimens.models import RegimenStatus
from regimens.services.planning import lock_regimen, regimen_queryset, replan
from tracker import events
from tracker.pages import CardEntry, PageSection


@events.listen("clinic.calendar_changed")
def replan_clinic(*, clinic: Clinic) -> None:
    """A clinic's calendar changed (inside its transaction): re-plan the planned doses of its active regimens."""
    for regimen in regimen_queryset().filter(patient__clinic=clinic, status=RegimenStatus.ACTIVE):
        replan(lock_regimen(regimen), cause=f"clinic calendar changed ({clinic.name})")


@events.listen("patient.page_sections")
def patient_page_sections(*, patient: Any, request: Any) -> list[PageSection]:
    """The patient page's regimen timeline, rechecks and clinician actions (regimens/pages.py)."""
    return pages.patient_section(patient=patient, request=request)


@events.listen("patient.card_entries")
def patient_card_entries(*, patient: Any) -> list[CardEntry]:
    """The next clinic appointments and blood tests on the patient's injection card."""
    return pages.card_entries(patient=patient)
