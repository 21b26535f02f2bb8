"""Write services for regimens (HackSoft style: keyword-only, typed, each one atomic).

Every service that changes what happened (a dose given or not given, a clinician decision,
a calendar change) re-plans the regimen through the pure engine (regimens/schedule.py) and
syncs its output back into rows: recorded doses never change; planned doses keep their row
(and id) per slot (phase, sequence) and only move their date; slots that leave the plan
are cancelled, never silently deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch, Q
from django.utils import timezone as djtz

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
    RegimenDecision,
    RegimenStatus,
    ReviewOutcome,
    Route,
    ScheduledDose,
)
from tracker import events
from tracker.errors import ConflictError, ServiceError, require_acknowledged

# A recorded administration time may be this far ahead of the server clock (clock skew between
# the nurse's device and the server); anything later is "in the future" and refused.
CLOCK_SKEW = timedelta(minutes=5)
# A first dose may be given a little before the planned start (the patient came in early); a
# date much earlier than that is a data-entry slip. Not a clinical number.
EARLY_FIRST_DOSE = timedelta(days=7)


def _cobalt(name: str) -> int:
    return int(settings.COBALT[name])


# --- Translation between rows and the engine ---------------------------------------------


@dataclass(frozen=True)
class ProtocolPlanData:
    spec: schedule.ProtocolSpec
    limits: dict[str, schedule.PhaseLimits]
    phases: tuple[ProtocolPhase, ...]


# What a regimen keeps of its protocol (RULES.md §1.1: every number stays editable per patient;
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


def patient_today(patient: Patient, at: datetime | None = None) -> date:
    """Today's date where the patient lives."""
    return schedule.local_date(at or djtz.now(), patient.timezone)


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


def _validate_start_date(start_date: date, today: date) -> None:
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


def _resolve_spec(data: ProtocolPlanData, options: dict[str, Any]) -> schedule.ProtocolSpec:
    spec: schedule.ProtocolSpec = _engine_call(schedule.apply_options, data.spec, options, data.limits)
    return spec


def _lab_context(patient: Patient, t0: date | None) -> schedule.LabContext:
    """The lab flags the recheck plan follows (RULES §2), from whichever app reads lab results."""
    context: schedule.LabContext = events.answer("lab_context", schedule.LabContext(), patient=patient, t0=t0)
    return context


def _plan(
    *,
    data: ProtocolPlanData,
    options: dict[str, Any],
    start_date: date,
    today: date,
    calendar: schedule.ClinicCalendar,
    records: tuple[schedule.DoseRecord, ...] = (),
    decisions: tuple[schedule.Decision, ...] = (),
    patient: Patient | None = None,
) -> schedule.Plan:
    spec = _resolve_spec(data, options)
    inp = schedule.PlanInput(
        protocol=spec,
        start_date=start_date,
        today=today,
        calendar=calendar,
        records=records,
        decisions=decisions,
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
            on = schedule.local_date(dose.administered_at, regimen.patient.timezone)
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


def _regimen_queryset() -> Any:
    return Regimen.objects.select_related("patient__clinic", "protocol").prefetch_related(
        Prefetch("protocol__phases", queryset=ProtocolPhase.objects.order_by("order")),
        "protocol__recheck_steps",
        "decisions",
    )


def _sync(
    regimen: Regimen, plan: schedule.Plan, existing: list[ScheduledDose] | None = None, *, new: bool = False
) -> None:
    """Write the plan's planned doses and rechecks to rows (see the module docstring). A `new`
    regimen has no rows yet and was created with its progress fields already set."""
    if existing is None:
        existing = list(regimen.doses.filter(status=DoseStatus.PLANNED))
    live = {(d.phase_index, d.sequence): d for d in existing if d.status == DoseStatus.PLANNED}
    to_create: list[ScheduledDose] = []
    to_update: list[ScheduledDose] = []
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
        elif any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            to_update.append(row)
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
        elif recheck.status != RecheckStatus.DONE:
            revived = recheck.status == RecheckStatus.CANCELLED
            if revived or any(getattr(recheck, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(recheck, k, v)
                if revived:
                    recheck.status = RecheckStatus.DUE
                changed.append(recheck)
    if new_rechecks:
        LabRecheck.objects.bulk_create(new_rechecks)
    if changed:
        LabRecheck.objects.bulk_update(changed, ["status", *values])
    # Keys starting "task:" are monitoring tasks (patients/evaluation.py, RULES S-15), not the engine's plan.
    dropped = [
        r.id
        for key, r in rechecks.items()
        if key not in wanted and r.status == RecheckStatus.DUE and not key.startswith("task:")
    ]
    if dropped:
        LabRecheck.objects.filter(id__in=dropped).update(status=RecheckStatus.CANCELLED)

    if not new:
        regimen.save(update_fields=_apply_progress(regimen, plan))


def _apply_progress(regimen: Regimen, plan: schedule.Plan) -> list[str]:
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


def _replan(regimen: Regimen, today: date | None = None) -> schedule.Plan:
    """Re-plan `regimen` (which must be locked by the caller's transaction) and sync rows."""
    doses = list(regimen.doses.exclude(status=DoseStatus.CANCELLED))
    today = today or patient_today(regimen.patient)
    plan = _plan(
        data=regimen_plan_data(regimen),
        options=regimen.options,
        start_date=regimen.start_date,
        today=today,
        calendar=clinic_calendar(regimen.patient.clinic),
        records=_records(regimen, doses),
        decisions=_decisions(regimen),
        patient=regimen.patient,
    )
    _sync(regimen, plan, [d for d in doses if d.status == DoseStatus.PLANNED])
    return plan


def _lock(regimen: Regimen) -> Regimen:
    """Re-read the regimen under a row lock: re-plans of one regimen happen one at a time."""
    locked: Regimen = _regimen_queryset().select_for_update(of=("self",)).get(pk=regimen.pk)
    return locked


def _lock_by_id(regimen_id: int) -> Regimen:
    locked: Regimen = _regimen_queryset().select_for_update(of=("self",)).get(pk=regimen_id)
    return locked


def regimen_plan(regimen: Regimen, today: date | None = None) -> schedule.Plan:
    """The current plan of a regimen, computed but not stored (for review prompts and previews)."""
    doses = list(regimen.doses.exclude(status=DoseStatus.CANCELLED))
    return _plan(
        data=regimen_plan_data(regimen),
        options=regimen.options,
        start_date=regimen.start_date,
        today=today or patient_today(regimen.patient),
        calendar=clinic_calendar(regimen.patient.clinic),
        records=_records(regimen, doses),
        decisions=_decisions(regimen),
        patient=regimen.patient,
    )


# --- Services -------------------------------------------------------------------------------


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
    today = today or schedule.local_date(djtz.now(), zone)
    _validate_start_date(start_date, today)
    return _plan(
        data=protocol_plan_data(protocol),
        options=options or {},
        start_date=start_date,
        today=today,
        calendar=clinic_calendar(clinic),
    )


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
    """Start a regimen; its doses and rechecks are planned at once.

    `options` may set per-phase values ({"phases": {"maintenance": {"spacing_value": 10}}},
    with "override_reason" when outside the protocol's range) and enrol a patient already on
    treatment elsewhere ({"enrol": {"phase": "maintenance", "last_dose_date": "2026-10-01"}}).
    """
    options = dict(options or {})
    if not protocol.active:
        raise ServiceError("protocol", f"protocol '{protocol.code}' is retired")
    today = today or patient_today(patient)
    _validate_start_date(start_date, today)
    with transaction.atomic():
        # Lock the patient so two concurrent starts cannot both pass the one-active check.
        Patient.objects.select_for_update().filter(pk=patient.pk).first()
        active = Regimen.objects.filter(patient=patient, status=RegimenStatus.ACTIVE).first()
        if active is not None:
            raise ServiceError(
                "patient", f"already has an active regimen ({active.protocol.code}, #{active.pk}); stop it first"
            )
        snapshot = protocol_snapshot(protocol)
        data = plan_data_from_snapshot(snapshot)
        plan = _plan(
            data=data,
            options=options,
            start_date=start_date,
            today=today,
            calendar=clinic_calendar(patient.clinic),
            patient=patient,
        )
        acknowledged = require_acknowledged(
            events.collect("regimen.starting", patient=patient, protocol=protocol), acknowledge
        )
        regimen = Regimen(
            patient=patient,
            protocol=protocol,
            start_date=start_date,
            options=options,
            protocol_snapshot=snapshot,
            override_reason=str(options.get("override_reason") or ""),
            acknowledged_warnings=acknowledged,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        # One INSERT (and one history row) with the progress already known, not INSERT + UPDATE.
        _apply_progress(regimen, plan)
        regimen.save()
        _sync(regimen, plan, [], new=True)
        events.announce("regimen.started", regimen=regimen, acknowledged=acknowledged)
    return regimen


def _administration_fingerprint(dose: ScheduledDose) -> tuple[Any, ...]:
    return (dose.administered_at, dose.lot_number, dose.expiry_date, dose.site, dose.given_route)


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
    """Record a dose as given and re-plan the later doses from its actual date.

    A repeat of the same request returns the dose unchanged; a conflicting one is a 409.
    """
    if djtz.is_naive(administered_at):
        raise ServiceError("administered_at", "must include a time zone offset, e.g. 2027-01-04T10:30:00+00:00")
    if administered_at > djtz.now() + CLOCK_SKEW:
        raise ServiceError("administered_at", "cannot be in the future")
    if route is not None and route not in Route.values:
        raise ServiceError("route", f"'{route}' is not a route; use one of {', '.join(Route.values)}")
    with transaction.atomic():
        # Regimen first, then the dose: the order every re-plan locks in, so two writers on one
        # regimen queue up instead of deadlocking.
        regimen = _lock_by_id(dose.regimen_id)
        dose = ScheduledDose.objects.select_for_update().get(pk=dose.pk)
        given_route = route or dose.route
        request = (administered_at, lot_number, expiry_date, site, given_route)
        if dose.status == DoseStatus.GIVEN:
            if _administration_fingerprint(dose) == request:
                return dose
            raise ConflictError(
                "status", f"this dose was already recorded as given at {dose.administered_at:%Y-%m-%d %H:%M %Z}"
            )
        if dose.status != DoseStatus.PLANNED:
            raise ConflictError("status", f"a dose that is {dose.get_status_display().lower()} cannot be given")
        if regimen.status != RegimenStatus.ACTIVE:
            raise ConflictError("regimen", f"the regimen is {regimen.get_status_display().lower()}")
        earlier = (
            regimen.doses.filter(status=DoseStatus.PLANNED)
            .filter(Q(phase_index__lt=dose.phase_index) | Q(phase_index=dose.phase_index, sequence__lt=dose.sequence))
            .order_by("phase_index", "sequence")
            .first()
        )
        if earlier is not None:
            # Each dose is measured from the one before it as given (RULES.md "Scheduling
            # semantics"): giving a later slot first would leave an earlier one planned after it.
            raise ConflictError(
                "dose",
                f"{earlier.phase} dose {earlier.sequence} (due {earlier.due_date}) is still planned; "
                "record it as given or not given first",
            )
        given_on = schedule.local_date(administered_at, regimen.patient.timezone)
        earliest = regimen.start_date - EARLY_FIRST_DOSE
        if given_on < earliest and not regimen.options.get("enrol"):
            raise ServiceError(
                "administered_at", f"is more than a week before the regimen starts ({regimen.start_date})"
            )
        if expiry_date is not None and expiry_date < given_on:
            raise ServiceError("expiry_date", f"the product had expired on {expiry_date} before it was given")
        acknowledged = require_acknowledged(
            events.collect("dose.administering", dose=dose, route=given_route, administered_at=administered_at),
            acknowledge,
        )
        dose.status = DoseStatus.GIVEN
        dose.administered_at = administered_at
        dose.lot_number = lot_number
        dose.expiry_date = expiry_date
        dose.site = site
        dose.given_route = given_route
        dose.recorded_at = djtz.now()
        dose.administered_by = user if getattr(user, "is_authenticated", False) else None
        dose.acknowledged_warnings = acknowledged
        dose.save(
            update_fields=[
                "status",
                "administered_at",
                "lot_number",
                "expiry_date",
                "site",
                "given_route",
                "recorded_at",
                "administered_by",
                "acknowledged_warnings",
            ]
        )
        events.announce("dose.recorded", dose=dose, acknowledged=acknowledged)
        _replan(regimen)
        # The first dose sets T0: the monitoring rules (S-9 potassium, S-6, S-13) run once this commits.
        events.announce_on_commit("patient.changed", patient_id=regimen.patient_id)
    return dose


def dose_record_not_given(
    *, dose: ScheduledDose, reason: str, on: date | None = None, user: Any = None
) -> ScheduledDose:
    """Record that a planned dose was not given (did not attend, refused, held). It stays visible
    with its reason and a replacement is planned (RULES.md "Scheduling semantics")."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("reason", "say why the dose was not given (e.g. did not attend, refused, held)")
    with transaction.atomic():
        # Regimen first, then the dose: the order every re-plan locks in, so two writers on one
        # regimen queue up instead of deadlocking.
        regimen = _lock_by_id(dose.regimen_id)
        dose = ScheduledDose.objects.select_for_update().get(pk=dose.pk)
        today = patient_today(regimen.patient)
        # Recorded ahead (the patient phoned to cancel): it is missed on its due date, and the
        # replacement goes after that day, not after today.
        latest = max(today, dose.due_date)
        on = on or latest
        if dose.status == DoseStatus.NOT_GIVEN:
            if dose.not_given_reason == reason and dose.not_given_on == on:
                return dose
            raise ConflictError("status", "this dose was already recorded as not given")
        if dose.status != DoseStatus.PLANNED:
            raise ConflictError("status", f"a dose that is {dose.get_status_display().lower()} cannot be not given")
        if regimen.status != RegimenStatus.ACTIVE:
            raise ConflictError("regimen", f"the regimen is {regimen.get_status_display().lower()}")
        if on > latest:
            raise ServiceError("on", "cannot be later than today or the dose's due date")
        dose.status = DoseStatus.NOT_GIVEN
        dose.not_given_reason = reason[:200]
        dose.not_given_on = on
        dose.recorded_at = djtz.now()
        dose.administered_by = user if getattr(user, "is_authenticated", False) else None
        dose.save(update_fields=["status", "not_given_reason", "not_given_on", "recorded_at", "administered_by"])
        events.announce("dose.recorded", dose=dose, acknowledged=[])
        _replan(regimen, today)
    return dose


def _open_phase(regimen: Regimen) -> ProtocolPhase:
    phases = regimen_plan_data(regimen).phases
    return phases[min(regimen.current_phase, len(phases) - 1)]


def _require_active(regimen: Regimen) -> None:
    if regimen.status != RegimenStatus.ACTIVE:
        raise ConflictError("regimen", f"the regimen is {regimen.get_status_display().lower()}")


def regimen_end_phase(
    *,
    regimen: Regimen,
    ended_on: date | None = None,
    note: str = "",
    acknowledge: list[str] | None = None,
    user: Any = None,
) -> Regimen:
    """A clinician ends the open-ended phase in progress ("no further improvement", R-UK-2).
    The next phase is planned from the last dose given; ending the last phase completes the
    regimen (with the S-5 warning when lifelong therapy is indicated)."""
    with transaction.atomic():
        regimen = _lock(regimen)
        _require_active(regimen)
        phase = _open_phase(regimen)
        if phase.end_condition not in schedule.OPEN_ENDED:
            raise ConflictError(
                "phase", f"the {phase.key} phase ends by itself ({phase.get_end_condition_display().lower()})"
            )
        today = patient_today(regimen.patient)
        ended_on = ended_on or today
        if ended_on > today:
            raise ServiceError("ended_on", "cannot be in the future")
        last_given = (
            regimen.doses.filter(phase_index=phase.order, status=DoseStatus.GIVEN)
            .order_by("-administered_at")
            .values_list("administered_at", flat=True)
            .first()
        )
        if last_given is not None and ended_on < schedule.local_date(last_given, regimen.patient.timezone):
            raise ServiceError("ended_on", "is before the last dose given in this phase")
        is_last = phase.order == len(regimen_plan_data(regimen).phases) - 1
        acknowledged: list[str] = []
        if is_last:
            acknowledged = require_acknowledged(events.collect("regimen.stopping", regimen=regimen), acknowledge)
        RegimenDecision.objects.create(
            regimen=regimen,
            phase_index=phase.order,
            kind=DecisionKind.END_PHASE,
            outcome=ReviewOutcome.PLATEAU_REACHED,
            decided_on=ended_on,
            decided_by=user if getattr(user, "is_authenticated", False) else None,
            note=note,
        )
        regimen = _lock(regimen)  # re-read the decisions
        _replan(regimen, today)
        if is_last and acknowledged:
            regimen.acknowledged_warnings = sorted({*regimen.acknowledged_warnings, *acknowledged})
            regimen.save(update_fields=["acknowledged_warnings"])
            events.announce("regimen.stopped", regimen=regimen, acknowledged=acknowledged)
    return regimen


def regimen_confirm_gate(
    *, regimen: Regimen, confirmed_on: date | None = None, note: str = "", user: Any = None
) -> Regimen:
    """A clinician confirms the condition that opens the next phase (R-US-1: reticulocyte
    response seen); that phase is then planned."""
    with transaction.atomic():
        regimen = _lock(regimen)
        _require_active(regimen)
        today = patient_today(regimen.patient)
        plan = regimen_plan(regimen, today)
        if plan.awaiting_gate is None:
            raise ConflictError("regimen", "no phase of this regimen is waiting for a clinician's confirmation")
        confirmed_on = confirmed_on or today
        if confirmed_on > today:
            raise ServiceError("confirmed_on", "cannot be in the future")
        RegimenDecision.objects.create(
            regimen=regimen,
            phase_index=plan.awaiting_gate,
            kind=DecisionKind.CONFIRM_GATE,
            decided_on=confirmed_on,
            decided_by=user if getattr(user, "is_authenticated", False) else None,
            note=note,
        )
        regimen = _lock(regimen)
        _replan(regimen, today)
    return regimen


def regimen_record_review(*, regimen: Regimen, outcome: str, note: str = "", user: Any = None) -> RegimenDecision:
    """Record a §1.3 review of the open-ended phase. `plateau_reached` ends the phase (and so
    plans maintenance); `worsening` raises a HIGH alert through the monitoring hook."""
    if outcome not in ReviewOutcome.values:
        raise ServiceError("outcome", f"must be one of {', '.join(ReviewOutcome.values)}")
    with transaction.atomic():
        regimen = _lock(regimen)
        _require_active(regimen)
        phase = _open_phase(regimen)
        if phase.end_condition not in schedule.OPEN_ENDED:
            raise ConflictError("phase", f"the {phase.key} phase is not open-ended; there is nothing to review")
        today = patient_today(regimen.patient)
        decision = RegimenDecision.objects.create(
            regimen=regimen,
            phase_index=phase.order,
            kind=DecisionKind.REVIEW,
            outcome=outcome,
            decided_on=today,
            decided_by=user if getattr(user, "is_authenticated", False) else None,
            note=note,
        )
        events.announce("regimen.reviewed", regimen=regimen, outcome=outcome)
        if outcome == ReviewOutcome.PLATEAU_REACHED:
            # §1.3: plateau_reached creates maintenance, first dose after the last loading dose.
            regimen_end_phase(regimen=regimen, ended_on=today, note=note or "Plateau reached at review", user=user)
    return decision


def regimen_stop(
    *, regimen: Regimen, reason: str, acknowledge: list[str] | None = None, user: Any = None
) -> Regimen:
    """Stop a regimen: planned doses and due rechecks are cancelled. Stopping lifelong therapy
    for an irreversible cause needs the S-5 warning acknowledged."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("reason", "say why the regimen is stopped")
    with transaction.atomic():
        regimen = _lock(regimen)
        _require_active(regimen)
        acknowledged = require_acknowledged(events.collect("regimen.stopping", regimen=regimen), acknowledge)
        regimen.status = RegimenStatus.STOPPED
        regimen.stopped_at = djtz.now()
        regimen.stopped_by = user if getattr(user, "is_authenticated", False) else None
        regimen.stop_reason = reason
        regimen.acknowledged_warnings = sorted({*regimen.acknowledged_warnings, *acknowledged})
        regimen.extend_on = None
        regimen.save(
            update_fields=["status", "stopped_at", "stopped_by", "stop_reason", "acknowledged_warnings", "extend_on"]
        )
        regimen.doses.filter(status=DoseStatus.PLANNED).update(status=DoseStatus.CANCELLED)
        regimen.lab_rechecks.filter(status__in=[RecheckStatus.DUE, RecheckStatus.OVERDUE]).update(
            status=RecheckStatus.CANCELLED
        )
        events.announce("regimen.stopped", regimen=regimen, acknowledged=acknowledged)
    return regimen


def regimen_replan(*, regimen: Regimen, today: date | None = None) -> Regimen:
    """Re-plan from what happened so far (also after new lab results change the recheck plan)."""
    with transaction.atomic():
        regimen = _lock(regimen)
        if regimen.status == RegimenStatus.ACTIVE:
            _replan(regimen, today)
    return regimen


def clinic_update_calendar(
    *,
    clinic: Clinic,
    open_weekdays: list[int] | None = None,
    closed_dates: list[date] | None = None,
    user: Any = None,
) -> Clinic:
    """Change the clinic's open weekdays and/or closed dates (the full list), and re-plan the
    planned doses of its patients' active regimens."""
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
        for regimen in _regimen_queryset().filter(patient__clinic=clinic, status=RegimenStatus.ACTIVE):
            _replan(_lock(regimen))
    return clinic


def regimens_extend_horizons(*, at: datetime) -> dict[str, int]:
    """Extend the rolling horizons of the regimens that need it as of `at` (periodic task).

    Idempotent: a re-planned regimen's extend_on moves past `at`, so a second run for the same
    instant finds nothing to do.
    """
    # extend_on is a local date; a day of slack covers every time zone's "today".
    candidates = Regimen.objects.filter(
        status=RegimenStatus.ACTIVE, extend_on__lte=(at + timedelta(days=1)).date()
    ).values_list("id", flat=True)
    extended = 0
    for regimen_id in list(candidates):
        with transaction.atomic():
            regimen = _regimen_queryset().select_for_update(of=("self",)).get(pk=regimen_id)
            today = patient_today(regimen.patient, at)
            if regimen.status != RegimenStatus.ACTIVE or regimen.extend_on is None or regimen.extend_on > today:
                continue
            _replan(regimen, today)
            extended += 1
    return {"extended": extended}
