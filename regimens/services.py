"""Write services for regimens (HackSoft style: keyword-only, typed, atomic).

Implementation in progress: signatures are the contract for the API layer.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from patients.models import Clinic, Patient
from regimens.models import Protocol, Regimen, RegimenDecision, ScheduledDose


def regimen_start(
    *,
    patient: Patient,
    protocol: Protocol,
    start_date: date,
    options: dict[str, Any] | None = None,
    acknowledge: list[str] | None = None,
    user: Any = None,
    today: date | None = None,
) -> Regimen:
    raise NotImplementedError


def dose_record_administration(
    *,
    dose: ScheduledDose,
    administered_at: datetime,
    lot_number: str = "",
    expiry_date: date | None = None,
    site: str = "",
    route: str | None = None,
    acknowledge: list[str] | None = None,
    user: Any = None,
) -> ScheduledDose:
    raise NotImplementedError


def dose_record_not_given(*, dose: ScheduledDose, reason: str, on: date | None = None, user: Any = None) -> ScheduledDose:
    raise NotImplementedError


def regimen_end_phase(
    *, regimen: Regimen, ended_on: date | None = None, note: str = "", user: Any = None
) -> Regimen:
    raise NotImplementedError


def regimen_confirm_gate(*, regimen: Regimen, confirmed_on: date | None = None, note: str = "", user: Any = None) -> Regimen:
    raise NotImplementedError


def regimen_record_review(*, regimen: Regimen, outcome: str, note: str = "", user: Any = None) -> RegimenDecision:
    raise NotImplementedError


def regimen_stop(*, regimen: Regimen, reason: str, acknowledge: list[str] | None = None, user: Any = None) -> Regimen:
    raise NotImplementedError


def clinic_update_calendar(
    *, clinic: Clinic, open_weekdays: list[int] | None = None, closed_dates: list[date] | None = None, user: Any = None
) -> Clinic:
    raise NotImplementedError


def schedule_preview(
    *,
    protocol: Protocol,
    start_date: date,
    timezone: str | None = None,
    options: dict[str, Any] | None = None,
    clinic: Clinic | None = None,
    today: date | None = None,
) -> Any:  # regimens.schedule.Plan
    """The plan a regimen would get, stored nowhere."""
    raise NotImplementedError


def regimen_replan(*, regimen: Regimen, today: date | None = None) -> Regimen:
    """Re-plan from what happened so far (also after new lab results change the recheck plan)."""
    raise NotImplementedError


def regimens_extend_horizons(*, at: datetime) -> dict[str, int]:
    raise NotImplementedError
