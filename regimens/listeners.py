"""Regimens listen to what patients announce (tracker/events.py)."""

from __future__ import annotations

from patients.models import Clinic
from regimens.models import Regimen, RegimenStatus
from regimens.services.planning import replan_regimens
from tracker import events


@events.listen("clinic.calendar_changed")
def replan_clinic(*, clinic: Clinic) -> None:
    """A clinic's calendar changed (inside its transaction): re-plan the planned doses of its active regimens."""
    ids = Regimen.objects.filter(patient__clinic=clinic, status=RegimenStatus.ACTIVE).values_list("pk", flat=True)
    replan_regimens(list(ids))
