"""Write services for regimens (HackSoft style: keyword-only, typed, each one atomic).

Every service that changes what happened (a dose given or not given, a clinician decision,
a calendar change) re-plans the regimen through the pure engine (regimens/schedule.py) and
syncs its output back into rows (planning.py). The services live by the object they write:
regimens.py, doses.py, rechecks.py, protocols.py (a clinic's own protocol copies); a clinic calendar change
(patients/services.py) re-plans through regimens/listeners.py. This package re-exports their public names,
so callers import from `regimens.services`.
"""

from __future__ import annotations

from regimens.services.doses import (
    EARLY_FIRST_DOSE,
    dose_mark_entered_in_error,
    dose_record_administration,
    dose_record_not_given,
    dose_set_appointment_time,
)
from regimens.services.planning import (
    PHASE_FIELDS,
    STEP_FIELDS,
    ProtocolPlanData,
    clinic_calendar,
    lab_inputs,
    plan_data_from_snapshot,
    protocol_plan_data,
    protocol_snapshot,
    regimen_plan,
    regimen_plan_data,
    schedule_preview,
)
from regimens.services.protocols import (
    LOCAL_PHASE_FIELDS,
    protocol_copy,
    protocol_phase_update,
    protocol_retire,
)
from regimens.services.rechecks import recheck_cancel, recheck_complete
from regimens.services.regimens import (
    PhaseInterval,
    phase_in_progress,
    regimen_confirm_gate,
    regimen_end_phase,
    regimen_interval,
    regimen_record_review,
    regimen_replan,
    regimen_replan_if_changed,
    regimen_shorten_interval,
    regimen_start,
    regimen_stop,
    regimens_extend_horizons,
)

__all__ = [
    "EARLY_FIRST_DOSE",
    "LOCAL_PHASE_FIELDS",
    "PHASE_FIELDS",
    "STEP_FIELDS",
    "PhaseInterval",
    "ProtocolPlanData",
    "clinic_calendar",
    "dose_mark_entered_in_error",
    "dose_record_administration",
    "dose_record_not_given",
    "dose_set_appointment_time",
    "lab_inputs",
    "phase_in_progress",
    "plan_data_from_snapshot",
    "protocol_copy",
    "protocol_phase_update",
    "protocol_plan_data",
    "protocol_retire",
    "protocol_snapshot",
    "recheck_cancel",
    "recheck_complete",
    "regimen_confirm_gate",
    "regimen_end_phase",
    "regimen_interval",
    "regimen_plan",
    "regimen_plan_data",
    "regimen_record_review",
    "regimen_replan",
    "regimen_replan_if_changed",
    "regimen_shorten_interval",
    "regimen_start",
    "regimen_stop",
    "regimens_extend_horizons",
    "schedule_preview",
]
