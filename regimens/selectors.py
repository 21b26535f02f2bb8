"""Read functions over regimens' rows that other apps share (HackSoft "selectors")."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from regimens.models import DoseStatus, ScheduledDose
from tracker.clock import local_date


def first_dose_at(patient: Any) -> datetime | None:
    """When the patient's first B12 dose recorded in Cobalt was given (any regimen), or None."""
    first: datetime | None = (
        ScheduledDose.objects.filter(patient=patient, status=DoseStatus.GIVEN, administered_at__isnull=False)
        .order_by("administered_at")
        .values_list("administered_at", flat=True)
        .first()
    )
    return first


def first_dose_date(patient: Any) -> date | None:
    """T0 (RULES §2, docs/clinical-reference.md): the date of the first B12 dose given, in the patient's zone."""
    first = first_dose_at(patient)
    return None if first is None else local_date(first, patient.timezone)
