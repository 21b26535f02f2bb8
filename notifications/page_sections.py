"""Notifications contributes the alerts and reminders sections of the patient page (tracker/events.py)."""

from __future__ import annotations

from typing import Any

from notifications import patient_sections
from tracker import events
from tracker.pages import PageSection


@events.listen("patient.page_sections")
def patient_page_sections(*, patient: Any, request: Any, record: Any) -> list[PageSection]:
    return patient_sections.patient_sections(patient=patient, request=request, record=record)
