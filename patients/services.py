"""Write services for clinics (HackSoft style: keyword-only, typed, each one atomic)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db import transaction

from patients.models import Clinic, ClosedDate
from tracker import events
from tracker.errors import ServiceError


def clinic_update_calendar(
    *,
    clinic: Clinic,
    open_weekdays: list[int] | None = None,
    closed_dates: list[date] | None = None,
    user: Any = None,
) -> Clinic:
    """Change the clinic's open weekdays and/or closed dates (the full list). The change is announced
    ("clinic.calendar_changed") in the same transaction: regimens re-plans the planned doses of the
    clinic's active regimens (regimens/listeners.py), so the calendar and the doses change together."""
    if open_weekdays is not None:
        if (
            not isinstance(open_weekdays, list)
            or not open_weekdays
            or any(not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= 6 for d in open_weekdays)
        ):
            raise ServiceError("open_weekdays", "must be a non-empty list of numbers 0 (Monday) to 6 (Sunday)")
    with transaction.atomic():
        clinic = Clinic.objects.select_for_update().get(pk=clinic.pk)
        if open_weekdays is not None:
            clinic.open_weekdays = sorted(set(open_weekdays))
            clinic.save(update_fields=["open_weekdays"])
        if closed_dates is not None:
            wanted = set(closed_dates)
            current = clinic.closed_date_set()
            ClosedDate.objects.filter(clinic=clinic, date__in=current - wanted).delete()
            ClosedDate.objects.bulk_create([ClosedDate(clinic=clinic, date=d) for d in sorted(wanted - current)])
        events.announce("clinic.calendar_changed", clinic=clinic)
    return clinic
