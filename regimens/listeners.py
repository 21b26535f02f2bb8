"""Regimens listen to what patients announce (tracker/events.py)."""

from __future__ import annotations

from patients.models import Clinic
from regimens.models import RegimenStatus
from regimens.services.planning import lock_regimen, regimen_queryset, replan
from tracker import events


@events.listen("clinic.calendar_changed")
def replan_clinic(*, clinic: Clinic) -> None:
    """A clinic's calendar changed (inside its transaction): re-plan the planned doses of its active regimens."""
    for regimen in regimen_queryset().filter(patient__clinic=clinic, status=RegimenStatus.ACTIVE):
        replan(lock_regimen(regimen), cause=f"clinic calendar changed ({clinic.name})")
