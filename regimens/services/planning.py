"""Planning: the translation between rows and the pure engine (regimens/schedule.py).

Rows (protocol, regimen, doses, decisions, clinic calendar) become the engine's frozen inputs;
the plan it returns is synced back into rows: recorded doses never change; planned doses keep
their row (and id) per slot (phase, sequence) and only move their date; slots that leave the
plan are cancelled, never silently deleted. The write services (regimens, doses, clinics)
build on this module; it imports none of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Prefetch
from django.utils import timezone as djtz
from simple_history.models import HistoricalRecords

from patients.models import Clinic, Patient, validate_timezone
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
from tracker import events
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


def _lab_context(patient: Patient, t0: date | None) -> schedule.LabContext:
    """The lab flags the recheck plan follows (RULES §2), from whichever app reads lab results."""
    context: schedule.LabContext = events.answer("lab_context", schedule.LabContext(), patient=patient, t0=t0)
    return context


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
    )
    plan: schedule.Plan = _engine_call(schedule.plan, inp)
    if patient is not None:
        # The recheck plan depends on the baseline results before T0, known only once T0 is.
        labs = _lab_context(patient, plan.t0)
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
        if d.kind in (DecisionKind.END_PHASE, DecisionKind.CONFIRM_GATE)
    )


def regimen_queryset() -> Any:
    return Regimen.objects.select_related("patient__clinic", "protocol").prefetch_related(
        Prefetch("protocol__phases", queryset=ProtocolPhase.objects.order_by("order")),
        "protocol__recheck_steps",
        "decisions",
    )


def sync_plan(
    regimen: Regimen,
    plan: schedule.Plan,
    existing: list[ScheduledDose] | None = None,
    *,
    new: bool = False,
    cause: str = "re-plan",
) -> None:
    """Write the plan's planned doses and rechecks to rows (see the module docstring). A `new`
    regimen has no rows yet and was created with its progress fields already set. A re-plan that moves or
    cancels planned doses is audited as one Replan row naming `cause`."""
    if existing is None:
        existing = list(regimen.doses.filter(status=DoseStatus.PLANNED))
    live = {(d.phase_index, d.sequence): d for d in existing if d.status == DoseStatus.PLANNED}
    to_create: list[ScheduledDose] = []
    to_update: list[ScheduledDose] = []
    moved: list[dict[str, Any]] = []
    fields = ("due_date", "drug", "dose_mcg", "dose_unit", "route", "phase", "self_administered")
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
            to_create.append(
                ScheduledDose(
                    regimen=regimen,
                    patient_id=regimen.patient_id,
                    phase_index=planned.phase_index,
                    sequence=planned.sequence,
                    **values,
                )
            )
        else:
            before = row.due_date
            if _assign(row, values):
                to_update.append(row)
                if row.due_date != before:
                    moved.append({"dose": row.pk, "from": before.isoformat(), "to": row.due_date.isoformat()})
    if not new and (moved or live):
        Replan.objects.create(
            regimen=regimen,
            patient_id=regimen.patient_id,
            cause=cause[:200],
            user=recorded_by(current_user()),
            moved=moved,
            cancelled=sorted(d.id for d in live.values()),
            added=len(to_create),
        )
    if live:
        ScheduledDose.objects.filter(id__in=[d.id for d in live.values()]).update(status=DoseStatus.CANCELLED)
    if to_update:
        ScheduledDose.objects.bulk_update(to_update, fields)
    if to_create:
        ScheduledDose.objects.bulk_create(to_create)

    rechecks = {} if new else {r.key: r for r in regimen.lab_rechecks.all()}
    new_rechecks: list[LabRecheck] = []
    changed: list[LabRecheck] = []
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
        recheck = rechecks.get(planned_recheck.key)
        if recheck is None:
            new_rechecks.append(
                LabRecheck(patient_id=regimen.patient_id, regimen=regimen, key=planned_recheck.key, **values)
            )
        elif recheck.status != RecheckStatus.DONE and not recheck.close_note:
            # RULES §10 V-10: a recheck a clinician closed by hand (it has a close note) stays closed.
            revived = recheck.status == RecheckStatus.CANCELLED
            if revived:
                recheck.status = RecheckStatus.DUE
            if _assign(recheck, values) or revived:
                changed.append(recheck)
    if new_rechecks:
        LabRecheck.objects.bulk_create(new_rechecks)
    if changed:
        LabRecheck.objects.bulk_update(changed, ["status", *values])
    # Keys starting "task:" are monitoring tasks (monitoring/evaluation.py, RULES S-15), not the engine's plan.
    dropped = [
        r.id
        for key, r in rechecks.items()
        if key not in wanted and r.status == RecheckStatus.DUE and not key.startswith("task:")
    ]
    if dropped:
        LabRecheck.objects.filter(id__in=dropped).update(status=RecheckStatus.CANCELLED)

    if not new:
        regimen.save(update_fields=apply_progress(regimen, plan))


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
    update = ["current_phase", "extend_on", "awaiting_gate"]
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


def _regimen_plan(regimen: Regimen, doses: list[ScheduledDose], today: date) -> schedule.Plan:
    """The plan of `regimen` from its own protocol copy, calendar, decisions and `doses` (not cancelled)."""
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


def current_user() -> Any:
    """The user of the request being served (django-simple-history's middleware keeps it), else None."""
    request = getattr(HistoricalRecords.context, "request", None)
    return getattr(request, "user", None)


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


def require_active(regimen: Regimen) -> None:
    if regimen.status != RegimenStatus.ACTIVE:
        raise ConflictError("regimen", f"the regimen is {regimen.get_status_display().lower()}")


def recorded_by(user: Any) -> Any:
    """The user to store as the author of a write; None for an anonymous or system caller."""
    return user if getattr(user, "is_authenticated", False) else None
