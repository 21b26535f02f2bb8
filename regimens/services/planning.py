"""Planning: the translation between rows and the pure engine (regimens/schedule.py).

Rows (protocol, regimen, doses, decisions, clinic calendar) become the engine's frozen inputs;
the plan it returns is synced back into rows: recorded doses never change; planned doses keep
their row (and id) per slot (phase, sequence) and only move their date; slots that leave the
plan are cancelled, never silently deleted. The write services (regimens, doses, clinics)
build on this module; it imports none of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone as djtz
from simple_history.models import HistoricalRecords

from patients.models import Clinic, ClosedDate, Patient, validate_timezone
from regimens import schedule
from regimens.models import (
    DecisionKind,
    DoseStatus,
    LabRecheck,
    Protocol,
    ProtocolPhase,
    RecheckStatus,
    Regimen,
    RegimenStatus,
    Replan,
    ScheduledDose,
)
from tracker import bulk, events
from tracker.clock import local_date, patient_today
from tracker.errors import ConflictError, ServiceError


def _cobalt(name: str) -> int:
    return int(settings.COBALT[name])


# --- Translation between rows and the engine ---------------------------------------------


@dataclass(frozen=True)
class ProtocolPlanData:
    spec: schedule.ProtocolSpec
    limits: dict[str, schedule.PhaseLimits]
    phases: tuple[ProtocolPhase, ...]


# What a regimen keeps of its protocol (RULES §1.1: every number stays editable per patient;
# an admin's later edit of the protocol must not silently change treatment already under way).
PHASE_FIELDS = tuple(f.name for f in ProtocolPhase._meta.concrete_fields if f.name not in ("id", "protocol"))
STEP_FIELDS = ("rule", "day", "window_before", "window_after", "analytes", "note")


def protocol_snapshot(protocol: Protocol) -> dict[str, Any]:
    """The protocol as plain data (uses prefetched phases and steps when present)."""
    return {
        "code": protocol.code,
        "phases": [
            {name: getattr(p, name) for name in PHASE_FIELDS}
            for p in sorted(protocol.phases.all(), key=lambda p: p.order)
        ],
        "recheck_steps": [{name: getattr(s, name) for name in STEP_FIELDS} for s in protocol.recheck_steps.all()],
    }


def protocol_plan_data(protocol: Protocol) -> ProtocolPlanData:
    """The engine's view of a protocol as it is now."""
    return plan_data_from_snapshot(protocol_snapshot(protocol))


def regimen_plan_data(regimen: Regimen) -> ProtocolPlanData:
    """The engine's view of the protocol as it was when `regimen` started."""
    if not regimen.protocol_snapshot:  # a regimen stored before snapshots existed
        return protocol_plan_data(regimen.protocol)
    return plan_data_from_snapshot(regimen.protocol_snapshot)


def plan_data_from_snapshot(snapshot: dict[str, Any]) -> ProtocolPlanData:
    # Unsaved model instances: callers read phase attributes and display names from them.
    phases = tuple(ProtocolPhase(**values) for values in snapshot["phases"])
    specs = tuple(
        schedule.PhaseSpec(
            key=p.key,
            name=p.name,
            drug=p.drug,
            dose_mcg=p.dose_mcg,
            dose_unit=p.dose_unit,
            route=p.route,
            spacing=p.spacing,
            spacing_value=p.spacing_value,
            end_condition=p.end_condition,
            end_value=p.end_value,
            start_gate=p.start_gate,
            review_every_days=p.review_every_days,
            self_administered=p.self_administered,
        )
        for p in phases
    )
    steps = tuple(
        schedule.RecheckStepSpec(
            rule=s["rule"],
            day=s["day"],
            analytes=tuple(s["analytes"]),
            window_before=s["window_before"],
            window_after=s["window_after"],
            note=s["note"],
        )
        for s in snapshot["recheck_steps"]
    )
    limits = {
        p.key: schedule.PhaseLimits(
            dose_mcg=(p.dose_min_mcg, p.dose_max_mcg),
            spacing_value=(p.spacing_min, p.spacing_max),
            count=(p.end_min, p.end_max),
        )
        for p in phases
    }
    return ProtocolPlanData(schedule.ProtocolSpec(snapshot["code"], specs, steps), limits, phases)


def clinic_calendar(clinic: Clinic | None) -> schedule.ClinicCalendar:
    if clinic is None:
        return schedule.ClinicCalendar()
    return schedule.ClinicCalendar(
        open_weekdays=frozenset(clinic.open_weekdays), closed_dates=clinic.closed_date_set()
    )


def _engine_call(func: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return func(*args, **kwargs)
    except schedule.ScheduleError as exc:
        raise ServiceError(exc.field, exc.message) from exc


def _parse_enrolment(options: dict[str, Any], data: ProtocolPlanData, today: date) -> schedule.Enrolment | None:
    enrol = options.get("enrol")
    if enrol is None:
        return None
    if not isinstance(enrol, dict):
        raise ServiceError("options.enrol", "must be an object with phase, last_dose_date and doses_given")
    unknown = set(enrol) - {"phase", "last_dose_date", "doses_given"}
    if unknown:
        raise ServiceError(f"options.enrol.{sorted(unknown)[0]}", "unknown field")
    keys = [p.key for p in data.phases]
    if enrol.get("phase") not in keys:
        raise ServiceError("options.enrol.phase", f"must be one of the protocol's phases: {', '.join(keys)}")
    index = keys.index(enrol["phase"])
    try:
        last = date.fromisoformat(str(enrol.get("last_dose_date")))
    except ValueError as exc:
        raise ServiceError("options.enrol.last_dose_date", "must be a date in YYYY-MM-DD format") from exc
    if last > today:
        raise ServiceError("options.enrol.last_dose_date", "the last dose given elsewhere cannot be in the future")
    given = enrol.get("doses_given", 0)
    if not isinstance(given, int) or isinstance(given, bool) or given < 0:
        raise ServiceError("options.enrol.doses_given", "must be a whole number, 0 or more")
    phase = data.phases[index]
    if phase.end_condition == "fixed_count" and phase.end_value is not None and given >= phase.end_value:
        raise ServiceError(
            "options.enrol.doses_given",
            f"the {phase.key} phase has {phase.end_value} doses; enrol in the next phase instead",
        )
    return schedule.Enrolment(phase_index=index, last_dose_date=last, doses_given_in_phase=given)


def require_protocol_of(protocol: Protocol, clinic_id: int) -> None:
    """A clinic's own protocol copy is used for that clinic's patients only (issue 12); shared ones by every clinic.
    (Callers offer only the user's clinics' protocols, so another clinic's copy is already "unknown" to them.)"""
    if protocol.clinic_id is not None and protocol.clinic_id != clinic_id:
        raise ServiceError(
            "protocol", f"'{protocol.code}' is another clinic's own protocol; choose one of this clinic's"
        )


def validate_start_date(start_date: date, today: date) -> None:
    limit = _cobalt("MAX_START_DAYS_AHEAD")
    if start_date > today + timedelta(days=limit):
        raise ServiceError("start_date", f"is more than {limit} days in the future")
    if start_date < today - timedelta(days=limit):
        raise ServiceError(
            "start_date",
            f"is more than {limit} days in the past; to move an existing patient in, use options.enrol",
        )


def _horizons() -> schedule.Horizons:
    return schedule.Horizons(
        lifelong_months=_cobalt("HORIZON_LIFELONG_MONTHS"),
        clinician_ended_days=_cobalt("HORIZON_CLINICIAN_ENDED_DAYS"),
    )


def recheck_times() -> schedule.RecheckTimes:
    """The [P] timepoints of the lab-recheck plan (RULES §2 L-4, L-4b, L-5, L-6, L-12) from the settings
    (settings.COBALT RECHECK_*, tracker/settings/cobalt_rechecks.py; checked at start-up, cobalt.E005)."""
    cobalt = settings.COBALT
    first, last = (int(day) for day in cobalt["RECHECK_L4_FIRST_WINDOW"])
    return schedule.RecheckTimes(
        l4_first_window=(first, last),
        l4_at_days=tuple(int(day) for day in cobalt["RECHECK_L4_AT_DAYS"]),
        l4_every_days=_cobalt("RECHECK_L4_EVERY_DAYS"),
        l4_plus_minus_days=_cobalt("RECHECK_L4_PLUS_MINUS_DAYS"),
        l4b_every_days=_cobalt("RECHECK_L4B_EVERY_DAYS"),
        l4b_plus_minus_days=_cobalt("RECHECK_L4B_PLUS_MINUS_DAYS"),
        l5_at_days=tuple(int(day) for day in cobalt["RECHECK_L5_AT_DAYS"]),
        l5_every_days=_cobalt("RECHECK_L5_EVERY_DAYS"),
        l5_plus_minus_days=_cobalt("RECHECK_L5_PLUS_MINUS_DAYS"),
        l6_at_days=tuple(int(day) for day in cobalt["RECHECK_L6_AT_DAYS"]),
        l6_plus_minus_days=_cobalt("RECHECK_L6_PLUS_MINUS_DAYS"),
        l12_every_years=_cobalt("RECHECK_L12_EVERY_YEARS"),
        l12_plus_minus_days=_cobalt("RECHECK_L12_PLUS_MINUS_DAYS"),
    )


def resolve_spec(data: ProtocolPlanData, options: dict[str, Any]) -> schedule.ProtocolSpec:
    """The protocol with the regimen's options applied, within the override bounds of the settings."""
    spec: schedule.ProtocolSpec = _engine_call(
        schedule.apply_options,
        data.spec,
        options,
        data.limits,
        max_factor=_cobalt("OVERRIDE_MAX_FACTOR"),
        min_reason_length=_cobalt("OVERRIDE_REASON_MIN_LENGTH"),
    )
    return spec


LabContextFunction = Callable[[Patient, "date | None"], schedule.LabContext]


def _lab_context(patient: Patient, t0: date | None) -> schedule.LabContext:
    """The lab flags the recheck plan follows (RULES §2), from whichever app reads lab results."""
    context: schedule.LabContext = events.answer("lab_context", schedule.LabContext(), patient=patient, t0=t0)
    return context


def lab_inputs(t0: date | None, labs: schedule.LabContext) -> dict[str, Any]:
    """What a recheck plan reads of the lab results and facts: T0 and the LabContext flags, as JSON (stored on
    the regimen by every re-plan, Regimen.planned_lab_inputs; equal inputs plan the same rechecks)."""
    flags = {k: v.isoformat() if isinstance(v, date) else v for k, v in asdict(labs).items()}
    return {"t0": t0.isoformat() if t0 else None, **flags}


def build_plan(
    *,
    data: ProtocolPlanData,
    options: dict[str, Any],
    start_date: date,
    today: date,
    calendar: schedule.ClinicCalendar,
    records: tuple[schedule.DoseRecord, ...] = (),
    decisions: tuple[schedule.Decision, ...] = (),
    patient: Patient | None = None,
    held: tuple[schedule.HeldDose, ...] = (),
    lab_context: LabContextFunction | None = None,
) -> schedule.Plan:
    spec = resolve_spec(data, options)
    inp = schedule.PlanInput(
        protocol=spec,
        start_date=start_date,
        today=today,
        calendar=calendar,
        records=records,
        decisions=decisions,
        held=held,
        enrolment=_parse_enrolment(options, data, today),
        horizons=_horizons(),
        recheck_times=recheck_times(),
    )
    plan: schedule.Plan = _engine_call(schedule.plan, inp)
    if patient is not None:
        # The recheck plan depends on the baseline results before T0, known only once T0 is.
        labs = (lab_context or _lab_context)(patient, plan.t0)
        if labs != inp.labs:
            plan = _engine_call(schedule.plan, schedule.PlanInput(**{**inp.__dict__, "labs": labs}))
    return plan


def _records(regimen: Regimen, doses: Iterable[ScheduledDose]) -> tuple[schedule.DoseRecord, ...]:
    out = []
    for dose in doses:
        if dose.status == DoseStatus.GIVEN and dose.administered_at is not None:
            on = local_date(dose.administered_at, regimen.patient.timezone)
            out.append(schedule.DoseRecord(dose.phase_index, dose.sequence, schedule.GIVEN, on, dose.due_date))
        elif dose.status == DoseStatus.NOT_GIVEN:
            out.append(
                schedule.DoseRecord(
                    dose.phase_index,
                    dose.sequence,
                    schedule.NOT_GIVEN,
                    dose.not_given_on or dose.due_date,
                    dose.due_date,
                    dose.not_given_reason,
                )
            )
    return tuple(out)


def _decisions(regimen: Regimen) -> tuple[schedule.Decision, ...]:
    return tuple(
        schedule.Decision(d.phase_index, d.kind, d.decided_on)
        for d in regimen.decisions.all()
        if d.kind in (DecisionKind.END_PHASE, DecisionKind.CONFIRM_GATE, DecisionKind.INTERVAL_SHORTENED)
    )


def regimen_queryset() -> Any:
    return Regimen.objects.select_related("patient__clinic", "protocol").prefetch_related(
        Prefetch("protocol__phases", queryset=ProtocolPhase.objects.order_by("order")),
        "protocol__recheck_steps",
        "decisions",
    )


DOSE_PLAN_FIELDS = ("due_date", "drug", "dose_mcg", "dose_unit", "route", "phase", "self_administered")
RECHECK_PLAN_FIELDS = ("status", "rule", "due_date", "window_start", "window_end", "analytes", "description")
PROGRESS_FIELDS = ("current_phase", "extend_on", "awaiting_gate", "status")
# Written with the progress, but not audited (Regimen.history excludes it): derived from results and facts.
LAB_INPUTS_FIELDS = ("planned_lab_inputs",)


@dataclass
class PlanWrites:
    """The row changes of one or many re-plans, written together by `flush` in a number of statements
    bounded by the number of rows / tracker.bulk.BATCH_SIZE (never one statement per regimen or row)."""

    dose_creates: list[ScheduledDose] = field(default_factory=list)
    dose_updates: list[ScheduledDose] = field(default_factory=list)
    dose_cancels: list[int] = field(default_factory=list)
    recheck_creates: list[LabRecheck] = field(default_factory=list)
    recheck_updates: list[LabRecheck] = field(default_factory=list)
    recheck_cancels: list[int] = field(default_factory=list)
    regimens: list[Regimen] = field(default_factory=list)
    # Regimens whose planned_lab_inputs alone changed (no history row).
    lab_inputs: list[Regimen] = field(default_factory=list)
    # Issue 12: one audit row per re-plan that moved or cancelled planned doses, with its cause.
    replans: list[Replan] = field(default_factory=list)
    # The audit batch of these Replan rows: one per re-plan call (replan_regimens passes its own to every
    # transaction it runs), so a calendar change is one event in the audit log.
    batch: uuid.UUID = field(default_factory=uuid.uuid4)

    def flush(self) -> None:
        Replan.objects.bulk_create(self.replans, batch_size=bulk.BATCH_SIZE)
        for ids in bulk.batches(self.dose_cancels, bulk.BATCH_SIZE):
            ScheduledDose.objects.filter(id__in=ids).update(status=DoseStatus.CANCELLED)
        # Moves before creates: a created slot never collides with a row that is still moving.
        bulk.update_rows(ScheduledDose, self.dose_updates, DOSE_PLAN_FIELDS)
        ScheduledDose.objects.bulk_create(self.dose_creates, batch_size=bulk.BATCH_SIZE)
        LabRecheck.objects.bulk_create(self.recheck_creates, batch_size=bulk.BATCH_SIZE)
        bulk.update_rows(LabRecheck, self.recheck_updates, RECHECK_PLAN_FIELDS)
        for ids in bulk.batches(self.recheck_cancels, bulk.BATCH_SIZE):
            LabRecheck.objects.filter(id__in=ids).update(status=RecheckStatus.CANCELLED)
        if self.lab_inputs:
            bulk.update_rows(Regimen, self.lab_inputs, LAB_INPUTS_FIELDS)
        if self.regimens:
            bulk.update_rows(Regimen, self.regimens, PROGRESS_FIELDS + LAB_INPUTS_FIELDS)
            # The audit trail of the regimens whose progress changed, as `save` would have written it.
            Regimen.history.bulk_history_create(self.regimens, batch_size=bulk.BATCH_SIZE, update=True)


def sync_plan(
    regimen: Regimen,
    plan: schedule.Plan,
    existing: list[ScheduledDose] | None = None,
    *,
    new: bool = False,
    rechecks: list[LabRecheck] | None = None,
    writes: PlanWrites | None = None,
    cause: str = "re-plan",
) -> None:
    """Write the plan's planned doses and rechecks to rows (see the module docstring). A `new`
    regimen has no rows yet and was created with its progress fields already set.

    With `writes`, the changes are only collected there (the caller flushes many regimens at once;
    the regimen's progress is written only when it changed); without, they are written now. A re-plan
    that moves or cancels planned doses is audited as one Replan row naming `cause` (issue 12)."""
    if existing is None:
        existing = list(regimen.doses.filter(status=DoseStatus.PLANNED))
    out = writes if writes is not None else PlanWrites()
    live = {(d.phase_index, d.sequence): d for d in existing if d.status == DoseStatus.PLANNED}
    moved: list[dict[str, Any]] = []
    created_before = len(out.dose_creates)
    for planned in plan.planned:
        values = {
            "due_date": planned.due_date,
            "drug": planned.drug,
            "dose_mcg": planned.dose_mcg,
            "dose_unit": planned.dose_unit,
            "route": planned.route,
            "phase": planned.phase,
            "self_administered": planned.self_administered,
        }
        row = live.pop((planned.phase_index, planned.sequence), None)
        if row is None:
            out.dose_creates.append(
                ScheduledDose(
                    regimen=regimen,
                    patient_id=regimen.patient_id,
                    clinic_id=regimen.patient.clinic_id,
                    phase_index=planned.phase_index,
                    sequence=planned.sequence,
                    **values,
                )
            )
        else:
            was = row.due_date
            if _assign(row, values):
                out.dose_updates.append(row)
                if row.due_date != was:
                    moved.append({"dose": row.pk, "from": was.isoformat(), "to": row.due_date.isoformat()})
    out.dose_cancels.extend(d.id for d in live.values())
    if not new and (moved or live):
        out.replans.append(
            Replan(
                regimen=regimen,
                patient_id=regimen.patient_id,
                cause=cause[:200],
                user=recorded_by(current_user()),
                moved=moved,
                cancelled=sorted(d.id for d in live.values()),
                added=len(out.dose_creates) - created_before,
                batch=out.batch,
            )
        )

    if new:
        current: dict[str, LabRecheck] = {}
    else:
        current = {r.key: r for r in (rechecks if rechecks is not None else regimen.lab_rechecks.all())}
    wanted = set()
    for planned_recheck in plan.rechecks:
        wanted.add(planned_recheck.key)
        values = {
            "rule": planned_recheck.rule,
            "due_date": planned_recheck.due_date,
            "window_start": planned_recheck.window_start,
            "window_end": planned_recheck.window_end,
            "analytes": list(planned_recheck.analytes),
            "description": planned_recheck.description,
        }
        recheck = current.get(planned_recheck.key)
        if recheck is None:
            out.recheck_creates.append(
                LabRecheck(patient_id=regimen.patient_id, regimen=regimen, key=planned_recheck.key, **values)
            )
        elif recheck.status != RecheckStatus.DONE and not recheck.close_note:
            # RULES §10 V-10: a recheck a clinician closed by hand (it has a close note) stays closed.
            revived = recheck.status == RecheckStatus.CANCELLED
            if revived:
                recheck.status = RecheckStatus.DUE
            if _assign(recheck, values) or revived:
                out.recheck_updates.append(recheck)
    # Keys starting "task:" are monitoring tasks (monitoring/evaluation.py, RULES S-15), not the engine's plan.
    out.recheck_cancels.extend(
        r.id
        for key, r in current.items()
        if key not in wanted and r.status == RecheckStatus.DUE and not key.startswith("task:")
    )

    if new:  # created with its progress fields already set
        if writes is None:
            out.flush()
        return
    # The regimen row is written (with its history row) only when the plan changed its progress, and without a
    # history row when only its lab inputs changed: a dose given on its day usually changes neither (issue 16).
    progress = [getattr(regimen, name) for name in PROGRESS_FIELDS]
    inputs = regimen.planned_lab_inputs
    update = apply_progress(regimen, plan)
    moved_on = [getattr(regimen, name) for name in PROGRESS_FIELDS] != progress
    inputs_changed = regimen.planned_lab_inputs != inputs
    if writes is None:
        out.flush()
        if moved_on or inputs_changed:
            regimen.save(update_fields=update)
    elif moved_on:
        out.regimens.append(regimen)
    elif inputs_changed:
        out.lab_inputs.append(regimen)


def apply_progress(regimen: Regimen, plan: schedule.Plan) -> list[str]:
    """Set the regimen's progress fields from `plan`; returns the names of the fields."""
    regimen.current_phase = plan.current_phase
    regimen.extend_on = plan.extend_on
    # "Waiting for a clinician" once the phase before the gate has nothing left to give: while
    # its doses are still planned the regimen is simply in progress (the engine already stops
    # planning at the gate; a clinician may still confirm early, regimen_confirm_gate).
    regimen.awaiting_gate = plan.awaiting_gate is not None and not any(
        d.phase_index < plan.awaiting_gate for d in plan.planned
    )
    regimen.planned_lab_inputs = lab_inputs(plan.t0, plan.labs)
    update = ["current_phase", "extend_on", "awaiting_gate", "planned_lab_inputs"]
    if plan.complete and regimen.status == RegimenStatus.ACTIVE:
        regimen.status = RegimenStatus.COMPLETED
        update.append("status")
    return update


def _assign(row: Any, values: dict[str, Any]) -> bool:
    """Set `values` on `row`; True when any of them changed (the row then needs saving)."""
    if all(getattr(row, k) == v for k, v in values.items()):
        return False
    for k, v in values.items():
        setattr(row, k, v)
    return True


def _held(doses: Iterable[ScheduledDose], today: date) -> tuple[schedule.HeldDose, ...]:
    """Planned doses due before `today` (the patient's today): RULES §10 V-11, they keep their due date."""
    return tuple(
        schedule.HeldDose(d.phase_index, d.sequence, d.due_date)
        for d in doses
        if d.status == DoseStatus.PLANNED and d.due_date < today
    )


def _regimen_plan(
    regimen: Regimen, doses: list[ScheduledDose], today: date, lab_context: LabContextFunction | None = None
) -> schedule.Plan:
    """The plan of `regimen` from its own protocol copy, calendar, decisions and `doses` (not cancelled); the lab
    flags from `lab_context` when the caller has read them already (else asked of the app that reads results)."""
    return build_plan(
        data=regimen_plan_data(regimen),
        options=regimen.options,
        start_date=regimen.start_date,
        today=today,
        calendar=clinic_calendar(regimen.patient.clinic),
        records=_records(regimen, doses),
        decisions=_decisions(regimen),
        patient=regimen.patient,
        held=_held(doses, today),
        lab_context=lab_context,
    )


def regimen_plan(regimen: Regimen, today: date | None = None) -> schedule.Plan:
    """The current plan of a regimen, computed but not stored (for review prompts and previews)."""
    doses = list(regimen.doses.exclude(status=DoseStatus.CANCELLED))
    return _regimen_plan(regimen, doses, today or patient_today(regimen.patient))


def replan(regimen: Regimen, today: date | None = None, cause: str = "re-plan") -> schedule.Plan:
    """Re-plan `regimen` (which must be locked by the caller's transaction) and sync rows; `cause` is kept on
    the audit row of a re-plan that moves or cancels doses."""
    doses = list(regimen.doses.exclude(status=DoseStatus.CANCELLED))
    plan = _regimen_plan(regimen, doses, today or patient_today(regimen.patient))
    sync_plan(regimen, plan, [d for d in doses if d.status == DoseStatus.PLANNED], cause=cause)
    return plan


def replan_when(
    regimen: Regimen,
    today: date,
    changed: Callable[[schedule.Plan, list[LabRecheck]], bool],
    cause: str = "re-plan",
    lab_context: LabContextFunction | None = None,
) -> bool:
    """Compute the plan of `regimen` (locked by the caller's transaction) once and re-plan with it only when
    `changed(plan, rechecks)` says the rows must change (issue 16); otherwise store only the plan's lab inputs
    (no history row). The same plan decides and is written. True when it re-planned."""
    doses = list(regimen.doses.exclude(status=DoseStatus.CANCELLED))
    plan = _regimen_plan(regimen, doses, today, lab_context)
    rechecks = list(regimen.lab_rechecks.all())
    if changed(plan, rechecks):
        planned = [d for d in doses if d.status == DoseStatus.PLANNED]
        sync_plan(regimen, plan, planned, rechecks=rechecks, cause=cause)
        return True
    inputs = lab_inputs(plan.t0, plan.labs)
    if inputs != regimen.planned_lab_inputs:
        regimen.planned_lab_inputs = inputs
        Regimen.objects.filter(pk=regimen.pk).update(planned_lab_inputs=inputs)
    return False


def current_user() -> Any:
    """The user of the request being served (django-simple-history's middleware keeps it), else None."""
    request = getattr(HistoricalRecords.context, "request", None)
    return getattr(request, "user", None)


def replan_batch_size() -> int:
    return int(settings.COBALT.get("REPLAN_BATCH_SIZE", 200))


def replan_regimens(
    regimen_ids: Iterable[int],
    *,
    today: Callable[[Regimen], date] | None = None,
    due: Callable[[Regimen, date], bool] | None = None,
    batch_size: int | None = None,
    cause: str = "re-plan",
    audit_batch: uuid.UUID | None = None,
) -> int:
    """Re-plan many regimens (a calendar change, the horizons sweep) in batches; how many were re-planned.

    Each batch is one transaction (a savepoint inside the caller's) that locks its regimens in id order
    and reads everything the engine needs in a fixed number of queries (regimens with their patient,
    clinic and protocol, decisions, doses, rechecks, closed dates, the lab flags); the rows are then
    written with set-based statements (PlanWrites). The queries grow with the number of batches, never
    with the number of regimens or doses. `today(regimen)` is the day to plan from (default: the patient's
    today); `due(regimen, today)` skips a regimen whose re-plan is no longer needed once it is locked.
    """
    ids = sorted(set(regimen_ids))
    size = batch_size or replan_batch_size()
    done = 0
    # One audit event for the whole call, however many transactions it takes (a job passes its own for all its calls).
    audit_batch = audit_batch or uuid.uuid4()
    for batch in bulk.batches(ids, size):
        with transaction.atomic():
            done += _replan_batch(batch, today, due, cause, audit_batch)
    return done


def _replan_batch(
    ids: Sequence[int],
    today: Callable[[Regimen], date] | None,
    due: Callable[[Regimen, date], bool] | None,
    cause: str = "re-plan",
    audit_batch: uuid.UUID | None = None,
) -> int:
    regimens = list(
        regimen_queryset()
        .select_for_update(of=("self",))
        .filter(pk__in=ids, status=RegimenStatus.ACTIVE)
        .order_by("pk")
    )
    if not regimens:
        return 0
    # One query for the closed dates of every clinic in the batch (clinic_calendar would read them per regimen).
    clinics = {r.patient.clinic_id: r.patient.clinic for r in regimens if r.patient.clinic_id is not None}
    closed: dict[int, set[date]] = {pk: set() for pk in clinics}
    for clinic_id, day in ClosedDate.objects.filter(clinic_id__in=clinics).values_list("clinic_id", "date"):
        closed[clinic_id].add(day)
    calendars = {
        pk: schedule.ClinicCalendar(open_weekdays=frozenset(c.open_weekdays), closed_dates=frozenset(closed[pk]))
        for pk, c in clinics.items()
    }
    doses: dict[int, list[ScheduledDose]] = {r.pk: [] for r in regimens}
    for dose in ScheduledDose.objects.filter(regimen_id__in=doses).exclude(status=DoseStatus.CANCELLED):
        doses[dose.regimen_id].append(dose)
    rechecks: dict[int, list[LabRecheck]] = {r.pk: [] for r in regimens}
    for recheck in LabRecheck.objects.filter(regimen_id__in=rechecks):
        rechecks[recheck.regimen_id].append(recheck)
    loader = events.answer("lab_context_loader", None, patients=[r.patient for r in regimens])
    labs: LabContextFunction = loader or (lambda patient, t0: schedule.LabContext())

    writes = PlanWrites(batch=audit_batch) if audit_batch is not None else PlanWrites()
    done = 0
    for regimen in regimens:
        day = today(regimen) if today is not None else patient_today(regimen.patient)
        if due is not None and not due(regimen, day):
            continue
        mine = doses[regimen.pk]
        plan = build_plan(
            data=regimen_plan_data(regimen),
            options=regimen.options,
            start_date=regimen.start_date,
            today=day,
            calendar=calendars.get(regimen.patient.clinic_id) or schedule.ClinicCalendar(),
            records=_records(regimen, mine),
            decisions=_decisions(regimen),
            patient=regimen.patient,
            held=_held(mine, day),
            lab_context=labs,
        )
        sync_plan(
            regimen,
            plan,
            [d for d in mine if d.status == DoseStatus.PLANNED],
            rechecks=rechecks[regimen.pk],
            writes=writes,
            cause=cause,
        )
        done += 1
    writes.flush()
    return done


def schedule_preview(
    *,
    protocol: Protocol,
    start_date: date,
    timezone: str | None = None,
    options: dict[str, Any] | None = None,
    clinic: Clinic | None = None,
    today: date | None = None,
) -> schedule.Plan:
    """The plan a regimen would get, stored nowhere."""
    if clinic is not None:
        require_protocol_of(protocol, clinic.pk)
    zone = timezone or (clinic.timezone if clinic else "UTC")
    try:
        validate_timezone(zone)
    except Exception as exc:
        raise ServiceError("timezone", f"'{zone}' is not an IANA time zone (for example Europe/London)") from exc
    today = today or local_date(djtz.now(), zone)
    validate_start_date(start_date, today)
    return build_plan(
        data=protocol_plan_data(protocol),
        options=options or {},
        start_date=start_date,
        today=today,
        calendar=clinic_calendar(clinic),
    )


# --- Locks and guards shared by the write services --------------------------------------------


def lock_regimen_id(regimen_id: int) -> Regimen:
    """Re-read the regimen under a row lock: re-plans of one regimen happen one at a time."""
    locked: Regimen = regimen_queryset().select_for_update(of=("self",)).get(pk=regimen_id)
    return locked


def lock_regimen(regimen: Regimen) -> Regimen:
    return lock_regimen_id(regimen.pk)


def lock_regimen_to_plan(regimen_id: int) -> Regimen:
    """lock_regimen_id for a caller that may plan the regimen (regimen_replan_if_changed) with its patient and clinic:
    its decisions, protocol, and the protocol's phases and recheck steps are read by the plan itself when it is made
    (_decisions; regimen_plan_data, for a regimen stored without a protocol snapshot), so a caller that makes none
    reads none of them (issue 16)."""
    locked: Regimen = (
        Regimen.objects.select_related("patient__clinic").select_for_update(of=("self",)).get(pk=regimen_id)
    )
    return locked


def require_active(regimen: Regimen) -> None:
    if regimen.status != RegimenStatus.ACTIVE:
        raise ConflictError("regimen", f"the regimen is {regimen.get_status_display().lower()}")


def recorded_by(user: Any) -> Any:
    """The user to store as the author of a write; None for an anonymous or system caller."""
    return user if getattr(user, "is_authenticated", False) else None
