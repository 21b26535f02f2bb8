"""Read functions over regimens' rows that other apps share (HackSoft "selectors")."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.utils import timezone as djtz

from regimens.models import DoseStatus, ScheduledDose
from tracker import events
from tracker.clock import local_date
from tracker.errors import SafetyWarning


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


def dose_administration_warnings(
    *, dose: ScheduledDose, route: str | None = None, administered_at: datetime | None = None
) -> list[SafetyWarning]:
    """The point-of-care warnings (RULES §4 S-2, S-10, S-11, S-12) that recording `dose` as given by `route`
    (default: the planned route) at `administered_at` (default: now) raises. The dose API shows them before
    the injection (§10 V-12) and dose_record_administration requires them acknowledged: one computation."""
    warnings: list[SafetyWarning] = events.collect(
        "dose.administering",
        dose=dose,
        route=route or dose.route,
        administered_at=administered_at or djtz.now(),
    )
    return warnings


def dose_pending_warnings(dose: ScheduledDose) -> list[SafetyWarning]:
    """§10 V-12: for a planned dose, the warnings giving it now by its planned route would raise; none for
    a dose already recorded (given, not given, cancelled)."""
    if dose.status != DoseStatus.PLANNED:
        return []
    return dose_administration_warnings(dose=dose)
