"""Recording a dose given on its due day skips the re-plan when the plan cannot change (issue 16: "re-plans only
when what the plan depends on changed"; regimens/services/doses.py `given_as_planned`).

Each built-in protocol is walked dose by dose for fifteen months (past the lifelong horizons' first extension),
every dose given on its day, or every third one a day late; after each, a full re-plan is computed and must find
nothing to write: no dose or recheck to create, move or cancel, no progress or lab input to change. The stored plan
is then what the engine says, whichever path the recording took.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
import time_machine

from patients.models import Patient
from regimens.models import DoseStatus, Protocol, Regimen, RegimenStatus, ScheduledDose
from regimens.protocol_data import PROTOCOLS
from regimens.selectors import dose_administration_warnings
from regimens.services import dose_record_administration, regimen_start, regimens_extend_horizons
from regimens.services import doses as dose_services
from regimens.services.planning import PlanWrites, _regimen_plan, lock_regimen_to_plan, sync_plan
from tests.factories import LabResultFactory, PatientFactory
from tracker.clock import patient_today
from tracker.errors import WarningsNotAcknowledged

START = date(2027, 1, 4)
UNTIL = START + timedelta(days=455)  # fifteen months: the lifelong horizons (12 months) extend at least once
OVERRIDE = "decided with the haematologist after review"
MAX_DOSES = 60  # the daily oral protocols: two months of doses is enough to cross their phases' ends


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(datetime(2027, 1, 4, 9, tzinfo=UTC), tick=False) as traveller:
        yield traveller


def first_planned(regimen: Regimen) -> ScheduledDose | None:
    return regimen.doses.filter(status=DoseStatus.PLANNED).order_by("phase_index", "sequence").first()


def pending_writes(regimen_id: int) -> PlanWrites:
    """What a full re-plan of the regimen now would write (collected, not written)."""
    regimen = lock_regimen_to_plan(regimen_id)
    doses = list(regimen.doses.exclude(status=DoseStatus.CANCELLED))
    plan = _regimen_plan(regimen, doses, patient_today(regimen.patient))
    writes = PlanWrites()
    sync_plan(regimen, plan, [d for d in doses if d.status == DoseStatus.PLANNED], writes=writes)
    return writes


def nothing_to_write(writes: PlanWrites) -> dict[str, Any]:
    """The non-empty parts of `writes` (an empty dict: nothing to write)."""
    parts = {
        "dose_creates": [(d.phase_index, d.sequence, d.due_date) for d in writes.dose_creates],
        "dose_updates": [(d.phase_index, d.sequence, d.due_date) for d in writes.dose_updates],
        "dose_cancels": writes.dose_cancels,
        "recheck_creates": [r.key for r in writes.recheck_creates],
        "recheck_updates": [r.key for r in writes.recheck_updates],
        "recheck_cancels": writes.recheck_cancels,
        "regimens": writes.regimens,
        "lab_inputs": writes.lab_inputs,
    }
    return {name: value for name, value in parts.items() if value}


def give(dose: ScheduledDose, on: date, clock: Any, sweep: bool = True) -> None:
    """Give `dose` at 10:00 on `on` (the clinic's zone is UTC here), acknowledging whatever warnings it raises,
    after that morning's horizons sweep (beat runs it daily; `sweep=False`: it did not run)."""
    morning = datetime(on.year, on.month, on.day, 6, tzinfo=UTC)
    clock.move_to(morning)
    if sweep:
        regimens_extend_horizons(at=morning)
    when = morning + timedelta(hours=4)
    clock.move_to(when + timedelta(hours=1))
    warnings = dose_administration_warnings(dose=dose, administered_at=when)
    dose_record_administration(
        dose=dose,
        administered_at=when,
        acknowledge=[w.code for w in warnings],
        override_reason=OVERRIDE if warnings else "",
    )


def walk(patient: Patient, code: str, clock: Any, late_every: int = 0, sweep: bool = True) -> tuple[list[str], int]:
    """Give the doses of a new regimen of `code` in order until UNTIL; after each, a full re-plan must find nothing
    to write. Returns (the phase of each dose given, re-plans the recording ran)."""
    protocol = Protocol.objects.get(code=code)
    try:
        regimen = regimen_start(patient=patient, protocol=protocol, start_date=START)
    except WarningsNotAcknowledged as refused:  # e.g. oral first line (R-ORAL-1): a clinician's reasoned choice
        regimen = regimen_start(
            patient=patient,
            protocol=protocol,
            start_date=START,
            acknowledge=[w.code for w in refused.warnings],
            override_reason=OVERRIDE,
        )
    given = 0
    phases: list[str] = []
    with mock.patch.object(dose_services, "replan", wraps=dose_services.replan) as replan:
        while given < MAX_DOSES:
            dose = first_planned(regimen)
            if dose is None or dose.due_date > UNTIL:
                break
            late = late_every and given % late_every == late_every - 1
            give(dose, dose.due_date + timedelta(days=1 if late else 0), clock, sweep)
            given += 1
            phases.append(dose.phase)
            left = nothing_to_write(pending_writes(regimen.pk))
            assert left == {}, f"{code}: after dose {dose.phase} {dose.sequence} (due {dose.due_date}): {left}"
            regimen.refresh_from_db()
            if regimen.status != RegimenStatus.ACTIVE:
                break
        return phases, replan.call_count


@pytest.mark.parametrize("code", [p["code"] for p in PROTOCOLS])
def test_doses_given_on_their_day_leave_the_plan_a_full_replan_would_write(
    patient: Patient, clock: Any, code: str
) -> None:
    phases, replans = walk(patient, code, clock)

    assert len(phases) >= 2
    # With the horizons swept each morning, only a phase's last dose needs the re-plan (it ends the phase).
    assert replans <= len(set(phases)), f"{code}: {replans} re-plans for the {len(phases)} doses given on their day"


@pytest.mark.parametrize("code", ["hydroxo-uk-standard", "cyano-1000-weekly", "oral-high-dose"])
def test_with_low_baseline_counts_the_rechecks_a_full_replan_plans_are_kept_too(
    clinic: Any, clock: Any, code: str
) -> None:
    # Low platelets and hemoglobin before T0: L-4's weekly platelet counts (extended as the horizon moves) and L-6.
    patient = PatientFactory(clinic=clinic)
    collected = datetime(2027, 1, 3, 9, tzinfo=UTC)
    LabResultFactory(patient=patient, collected_at=collected, value_as_entered="95", value_canonical=Decimal(95))
    LabResultFactory(
        patient=patient, collected_at=collected, platelets=True, value_as_entered="120", value_canonical=Decimal(120)
    )

    phases, replans = walk(patient, code, clock)

    assert len(phases) >= 2
    assert replans <= len(set(phases))


@pytest.mark.parametrize("code", ["hydroxo-uk-standard", "cyano-1000-weekly", "hydroxo-uk-neuro"])
def test_a_dose_given_a_day_late_re_plans_the_later_doses(patient: Patient, clock: Any, code: str) -> None:
    phases, replans = walk(patient, code, clock, late_every=3)

    # Every late dose re-plans (and the walk's check found the later doses moved as a full re-plan would move them).
    assert replans >= len(phases) // 3


def test_without_the_horizons_sweep_a_dose_on_its_day_past_extend_on_re_plans_and_extends_the_horizon(
    patient: Patient, clock: Any
) -> None:
    # Maintenance every 3 months, planned 12 months ahead: each maintenance dose's day is past the extend_on the
    # last re-plan set, so the recording re-plans (and the walk's check finds the horizon extended as it should).
    phases, replans = walk(patient, "hydroxo-uk-standard", clock, sweep=False)

    maintenance = phases.count("maintenance")
    assert maintenance >= 4
    assert replans >= maintenance
