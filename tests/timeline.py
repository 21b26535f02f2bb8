"""A treatment timeline for tests: T0 (the first dose) and days counted from it, and a regimen that starts there."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

T0 = date(2027, 1, 4)


def day(n: int) -> date:
    return T0 + timedelta(days=n)


def noon(on: date) -> datetime:
    return datetime(on.year, on.month, on.day, 12, tzinfo=UTC)


def start_treatment(patient: Any, code: str = "hydroxo-uk-standard") -> Any:
    """Start `code` on T0 and give the first dose at 10:00 UTC on T0 (so T0 is the first dose date)."""
    import time_machine

    from regimens.models import Protocol, ScheduledDose
    from regimens.services import dose_record_administration, regimen_start

    with time_machine.travel(noon(T0), tick=False):
        regimen = regimen_start(patient=patient, protocol=Protocol.objects.get(code=code), start_date=T0)
        first = ScheduledDose.objects.filter(regimen=regimen).order_by("due_date").first()
        assert first is not None and first.due_date == T0
        dose_record_administration(dose=first, administered_at=datetime(2027, 1, 4, 10, tzinfo=UTC))
    return regimen
