"""Write services on a regimen: start it, record a clinician's decision, stop it, re-plan it.

Each one is atomic, locks the regimen row first and re-plans through regimens/services/planning.py.
"""

from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone as djtz

from patients.models import DeficiencyCause, FactKind, Patient
from patients.selectors import oral_dose_check_cause
from regimens import schedule
from regimens.models import (
    ORAL_ROUTES,
    DecisionKind,
    DoseStatus,
    LabRecheck,
    Protocol,
    ProtocolPhase,
    RecheckStatus,
    Regimen,
    RegimenDecision,
    RegimenStatus,
    Replan,
    ReviewOutcome,
)
from regimens.services.planning import (
    LabContextFunction,
    ProtocolPlanData,
    apply_progress,
    build_plan,
    clinic_calendar,
    lock_regimen,
    lock_regimen_to_plan,
    plan_data_from_snapshot,
    protocol_snapshot,
    recorded_by,
    regimen_plan,
    regimen_plan_data,
    replan,
    replan_regimens,
    replan_when,
    require_active,
    require_protocol_of,
    resolve_spec,
    sync_plan,
    validate_start_date,
)
from tracker import events
from tracker.clock import local_date, patient_today
from tracker.errors import ConflictError, ServiceError, require_acknowledged, require_override_reason
from tracker.permissions import is_prescriber
from tracker.sweeps import in_shard


def regimen_start(
    *,
    patient: Patient,
    protocol: Protocol,
    start_date: date,
    options: dict[str, Any] | None = None,
    acknowledge: list[str] | None = None,
    override_reason: str = "",
    user: Any = None,
    today: date | None = None,
) -> Regimen:
    """Start a regimen; its doses and rechecks are planned at once.

    `options` may set per-phase values ({"phases": {"maintenance": {"spacing_value": 10}}},
    with "override_reason" when outside the protocol's range) and enrol a patient already on
    treatment elsewhere ({"enrol": {"phase": "maintenance", "last_dose_date": "2026-10-01"}}).
    Safety warnings must be acknowledged; the hard stops (S-5 at start, S-10, S-11, the oral
    first-line caution) also need `override_reason`, as does an oral dose below 1000 mcg a day when the
    cause is or may be malabsorption (R-ORAL-1, §10 V-6: `_check_oral_dose`).
    """
    options = dict(options or {})
    if not protocol.active:
        raise ServiceError("protocol", f"protocol '{protocol.code}' is retired")
    require_protocol_of(protocol, patient.clinic_id)
    today = today or patient_today(patient)
    validate_start_date(start_date, today)
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
        plan = build_plan(
            data=data,
            options=options,
            start_date=start_date,
            today=today,
            calendar=clinic_calendar(patient.clinic),
            patient=patient,
        )
        warnings = events.collect("regimen.starting", patient=patient, protocol=protocol)
        acknowledged = require_acknowledged(warnings, acknowledge)
        reason = require_override_reason(warnings, acknowledged, override_reason)
        options_reason = str(options.get("override_reason") or "").strip()
        spec = resolve_spec(data, options)
        _check_oral_dose(patient=patient, spec=spec, reason=reason or options_reason, today=today)
        regimen = Regimen(
            patient=patient,
            protocol=protocol,
            start_date=start_date,
            options=options,
            protocol_snapshot=snapshot,
            override_reason="; ".join(dict.fromkeys(r for r in (reason, options_reason) if r)),
            acknowledged_warnings=acknowledged,
            created_by=recorded_by(user),
        )
        # One INSERT (and one history row) with the progress already known, not INSERT + UPDATE.
        apply_progress(regimen, plan)
        regimen.save()
        sync_plan(regimen, plan, [], new=True)
        events.announce("regimen.started", regimen=regimen, acknowledged=acknowledged)
    return regimen


# RULES R-ORAL-1 (NG239: "at least 1 mg a day" when the cause is or may be malabsorption), §8 Q2, §10 V-6.
ORAL_MIN_MCG_PER_DAY = 1000


def _check_oral_dose(*, patient: Patient, spec: schedule.ProtocolSpec, reason: str, today: date) -> None:
    """RULES R-ORAL-1, §10 V-6: when the cause is or may be malabsorption (pernicious anaemia, autoimmune
    gastritis, IF antibody positive, and every other recorded cause but diet and nitrous oxide:
    patients.selectors.oral_dose_check_cause), an oral phase below 1000 mcg a day (as the protocol or `options`
    sets it) is refused without an override reason of at least OVERRIDE_REASON_MIN_LENGTH characters."""
    low = [p for p in spec.phases if p.route in ORAL_ROUTES and schedule.mean_daily_mcg(p) < ORAL_MIN_MCG_PER_DAY]
    minimum = max(1, int(settings.COBALT["OVERRIDE_REASON_MIN_LENGTH"]))
    if not low or len(reason) >= minimum:
        return
    cause = oral_dose_check_cause(patient, today)
    if cause is None:
        return
    phase = low[0]
    per_day = schedule.mean_daily_mcg(phase)
    if reason:
        raise ServiceError(
            "override_reason",
            f"say why {per_day:g} mcg a day by mouth (below {ORAL_MIN_MCG_PER_DAY}, RULES R-ORAL-1) is given in "
            f"at least {minimum} characters",
        )
    if cause == FactKind.IF_ANTIBODY_POSITIVE:
        label = "IF antibody positive"
    else:
        label = str(dict(DeficiencyCause.choices).get(cause, cause)).lower()
    raise ServiceError(
        f"options.phases.{phase.key}.dose_mcg",
        f"{per_day:g} mcg a day by mouth is below the {ORAL_MIN_MCG_PER_DAY} mcg a day needed when the cause is or "
        f"may be malabsorption (here: {label}; RULES R-ORAL-1, §10 V-6); set at least {ORAL_MIN_MCG_PER_DAY} or give "
        "override_reason",
    )


def _open_phase(regimen: Regimen) -> ProtocolPhase:
    phases = regimen_plan_data(regimen).phases
    return phases[min(regimen.current_phase, len(phases) - 1)]


def _loading_doses_given(regimen: Regimen, phase: ProtocolPhase) -> int | None:
    """Doses given in the neurological loading phase (R-UK-2), counting those given elsewhere before an
    enrolment into it; None when `phase` is not that phase (RULES §10 V-5 applies to it only)."""
    if not schedule.is_neuro_loading(
        end_condition=phase.end_condition,
        review_every_days=phase.review_every_days,
        self_administered=phase.self_administered,
    ):
        return None
    given = regimen.doses.filter(phase_index=phase.order, status=DoseStatus.GIVEN).count()
    enrol = regimen.options.get("enrol") if isinstance(regimen.options, dict) else None
    if isinstance(enrol, dict) and enrol.get("phase") == phase.key:
        given += int(enrol.get("doses_given") or 0)
    return given


def _require_loading_end_allowed(given: int | None, reason: str, *, field: str) -> None:
    """RULES §10 V-5: the neurological loading phase cannot end before one loading dose is given; before
    NEURO_LOADING_DOSES_WITHOUT_REASON doses it needs a reason (`field` names where the request gives it)."""
    if given is None:
        return
    if given < 1:
        raise ConflictError(
            "phase",
            "no loading dose has been given yet: the neurological loading phase cannot end before the first "
            "loading dose is recorded as given (§10 V-5)",
        )
    if given < schedule.NEURO_LOADING_DOSES_WITHOUT_REASON and not reason:
        raise ServiceError(
            field,
            f"only {given} of {schedule.NEURO_LOADING_DOSES_WITHOUT_REASON} loading doses given: say why the "
            "neurological loading phase ends this early (§10 V-5)",
        )


def _decide_and_replan(
    regimen: Regimen, phase_index: int, kind: str, decided_on: date, user: Any, note: str, today: date, *,
    cause: str, outcome: str = "",
) -> Regimen:  # fmt: skip
    """Record a clinician's decision on the regimen (inside the caller's transaction, the regimen locked), then
    re-read the regimen, whose plan reads its decisions and options, and re-plan it from `today`."""
    RegimenDecision.objects.create(
        regimen=regimen,
        phase_index=phase_index,
        kind=kind,
        outcome=outcome,
        decided_on=decided_on,
        decided_by=recorded_by(user),
        note=note,
    )
    regimen = lock_regimen(regimen)
    replan(regimen, today, cause=cause)
    return regimen


def regimen_end_phase(
    *,
    regimen: Regimen,
    ended_on: date | None = None,
    note: str = "",
    reason: str = "",
    acknowledge: list[str] | None = None,
    override_reason: str = "",
    user: Any = None,
) -> Regimen:
    """A clinician ends the open-ended phase in progress ("no further improvement", R-UK-2).
    The next phase is planned from the last dose given; ending the last phase completes the
    regimen (with the S-5 hard stop when lifelong therapy is indicated: acknowledged, with an
    `override_reason` kept on the decision's note and the alert). The neurological loading
    phase needs one dose given first and, before six, a `reason`, kept on the decision's note (§10 V-5)."""
    reason = (reason or "").strip()
    with transaction.atomic():
        regimen = lock_regimen(regimen)
        require_active(regimen)
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
        if last_given is not None and ended_on < local_date(last_given, regimen.patient.timezone):
            raise ServiceError("ended_on", "is before the last dose given in this phase")
        given = _loading_doses_given(regimen, phase)
        _require_loading_end_allowed(given, reason, field="reason")
        if reason:
            early = given is not None and given < schedule.NEURO_LOADING_DOSES_WITHOUT_REASON
            label = f"Ended after {given} loading dose{'s' if given != 1 else ''} (§10 V-5)" if early else "Reason"
            note = "\n".join(part for part in (note.strip(), f"{label}: {reason}") if part)
        is_last = phase.order == len(regimen_plan_data(regimen).phases) - 1
        acknowledged: list[str] = []
        override = ""
        if is_last:
            # RULES S-5, §10 V-13: ending the last phase stops lifelong therapy; a hard stop needs a reason.
            warnings = events.collect("regimen.stopping", regimen=regimen)
            acknowledged = require_acknowledged(warnings, acknowledge)
            override = require_override_reason(warnings, acknowledged, override_reason) if acknowledged else ""
        if override:
            note = "\n".join(part for part in (note, f"Override reason (S-5): {override}") if part)
        regimen = _decide_and_replan(
            regimen, phase.order, DecisionKind.END_PHASE, ended_on, user, note, today,
            cause=f"phase {phase.key} ended on {ended_on}", outcome=ReviewOutcome.PLATEAU_REACHED,
        )  # fmt: skip
        if is_last and acknowledged:
            regimen.acknowledged_warnings = sorted({*regimen.acknowledged_warnings, *acknowledged})
            regimen.save(update_fields=["acknowledged_warnings"])
            events.announce(
                "regimen.stopped",
                regimen=regimen,
                acknowledged=acknowledged,
                override_reason=override,
                by=recorded_by(user),
            )
    return regimen


def regimen_confirm_gate(
    *, regimen: Regimen, confirmed_on: date | None = None, note: str = "", user: Any = None
) -> Regimen:
    """A clinician confirms the condition that opens the next phase (R-US-1: reticulocyte
    response seen); that phase is then planned."""
    with transaction.atomic():
        regimen = lock_regimen(regimen)
        require_active(regimen)
        today = patient_today(regimen.patient)
        plan = regimen_plan(regimen, today)
        if plan.awaiting_gate is None:
            raise ConflictError("regimen", "no phase of this regimen is waiting for a clinician's confirmation")
        confirmed_on = confirmed_on or today
        if confirmed_on > today:
            raise ServiceError("confirmed_on", "cannot be in the future")
        regimen = _decide_and_replan(
            regimen, plan.awaiting_gate, DecisionKind.CONFIRM_GATE, confirmed_on, user, note, today,
            cause=f"gate confirmed on {confirmed_on}",
        )  # fmt: skip
    return regimen


def regimen_record_review(*, regimen: Regimen, outcome: str, note: str = "", user: Any = None) -> RegimenDecision:
    """Record a §1.3 review of the open-ended phase. `plateau_reached` ends the phase (and so
    plans maintenance; before six loading doses the note is the reason §10 V-5 asks for);
    `worsening` opens the HIGH `neuro_worsening` alert through the monitoring listener."""
    if outcome not in ReviewOutcome.values:
        raise ServiceError("outcome", f"must be one of {', '.join(ReviewOutcome.values)}")
    with transaction.atomic():
        regimen = lock_regimen(regimen)
        require_active(regimen)
        phase = _open_phase(regimen)
        if phase.end_condition not in schedule.OPEN_ENDED:
            raise ConflictError("phase", f"the {phase.key} phase is not open-ended; there is nothing to review")
        plateau = outcome == ReviewOutcome.PLATEAU_REACHED
        given = _loading_doses_given(regimen, phase) if plateau else None
        # §10 V-5: a plateau ends the phase, so the same limits apply; the review's note is the reason.
        _require_loading_end_allowed(given, note.strip(), field="note")
        today = patient_today(regimen.patient)
        decision = RegimenDecision.objects.create(
            regimen=regimen,
            phase_index=phase.order,
            kind=DecisionKind.REVIEW,
            outcome=outcome,
            decided_on=today,
            decided_by=recorded_by(user),
            note=note,
        )
        events.announce("regimen.reviewed", regimen=regimen, outcome=outcome, decision=decision)
        if plateau:
            # §1.3: plateau_reached creates maintenance, first dose after the last loading dose.
            early = given is not None and given < schedule.NEURO_LOADING_DOSES_WITHOUT_REASON
            regimen_end_phase(
                regimen=regimen,
                ended_on=today,
                note="Plateau reached at review" if early else (note or "Plateau reached at review"),
                reason=note if early else "",
                user=user,
            )
    return decision


# RULES R-UK-4: the spacings whose number a clinician can shorten (a smaller number, doses closer together).
# `times_per_week` is not one (fewer times a week is longer), nor daily and alternate days (no number).
SHORTENABLE_SPACINGS = {schedule.EVERY_N_DAYS: "day", schedule.EVERY_N_WEEKS: "week", schedule.MONTHLY: "month"}


@dataclass(frozen=True)
class PhaseInterval:
    """The interval of a regimen's phase in progress, as a clinician may shorten it (RULES R-UK-4): its current
    value (the regimen's `options` if set, else its protocol copy's) and the protocol's range allowed without a
    reason (`low`, `high`; both None: the protocol gives none, so any other value needs an override reason)."""

    phase_index: int
    phase_key: str
    phase_name: str
    spacing: str
    value: int
    low: int | None
    high: int | None
    data: ProtocolPlanData = field(repr=False, compare=False)

    def text(self, value: int | None = None) -> str:
        """'every 12 weeks', 'every month' (`value`, default the current one)."""
        return spacing_text(self.spacing, self.value if value is None else value)

    @property
    def unit(self) -> str:
        return f"{SHORTENABLE_SPACINGS[self.spacing]}s"

    def range_text(self) -> str:
        """The protocol's range allowed without a reason, e.g. 'every 8 to 13 weeks' (with no range, only its own
        value needs none: `resolve_spec`)."""
        if self.low is None and self.high is None:
            own = self.data.spec.phases[self.phase_index].spacing_value
            return f"none: only the protocol's own {self.text(own)}"
        low = self.low or 1
        if self.high is None:
            return f"{self.text(low)} or longer"
        if low == self.high:
            return self.text(low)
        return f"every {low} to {self.high} {self.unit}"

    def options_for(self, value: int, override_reason: str = "") -> dict[str, Any]:
        return {"phases": {self.phase_key: {"spacing_value": value}}, "override_reason": override_reason}

    def needs_override_reason(self, value: int) -> bool:
        """Whether a regimen's start would refuse `value` (a whole number from 1) without an override reason: it is
        outside the protocol's range (the same check, `resolve_spec`)."""
        try:
            resolve_spec(self.data, self.options_for(value))
        except ServiceError:
            return True
        return False


def spacing_text(spacing: str, value: int | None) -> str:
    """How often a phase's doses come, in words: 'daily', 'on alternate days', '3 times a week', 'every 12 weeks',
    'every month'."""
    if spacing in SHORTENABLE_SPACINGS:
        unit = SHORTENABLE_SPACINGS[spacing]
        return f"every {unit}" if value in (None, 1) else f"every {value} {unit}s"
    return {schedule.DAILY: "daily", schedule.ALTERNATE_DAYS: "on alternate days"}.get(
        spacing, f"{value} times a week"
    )


def _in_progress(regimen: Regimen) -> tuple[ProtocolPlanData, int, schedule.PhaseSpec]:
    """The regimen's protocol copy, the index of the phase in progress and that phase as this regimen plans it (its
    options applied, R-UK-4's shortening included): one resolve, from the row alone (no query)."""
    data = regimen_plan_data(regimen)
    index = min(regimen.current_phase, len(data.phases) - 1)
    return data, index, resolve_spec(data, regimen.options).phases[index]


def _interval(data: ProtocolPlanData, index: int, spec: schedule.PhaseSpec) -> PhaseInterval:
    """The phase's interval a clinician may shorten, or a ConflictError saying why it has none."""
    phase = data.phases[index]
    if spec.spacing not in SHORTENABLE_SPACINGS:
        given = spacing_text(spec.spacing, spec.spacing_value)
        raise ConflictError(
            "phase", f"the {phase.key} phase is given {given}: it has no interval in days, weeks or months to shorten"
        )
    low, high = data.limits[phase.key].spacing_value
    interval = PhaseInterval(index, phase.key, phase.name, spec.spacing, spec.spacing_value, low, high, data)
    if interval.value <= 1:
        raise ConflictError("phase", f"the {phase.key} phase is given {interval.text()}: it cannot be shorter")
    return interval


def regimen_interval(regimen: Regimen) -> PhaseInterval:
    """The interval of the phase in progress that a clinician may shorten (RULES R-UK-4), or a ConflictError
    saying why there is none: the regimen is not active, or its phase's spacing takes no number that can get
    smaller (daily, alternate days, N times a week, or already every 1 day / week / month)."""
    require_active(regimen)
    return _interval(*_in_progress(regimen))


def phase_in_progress(regimen: Regimen) -> tuple[str, PhaseInterval | None]:
    """For the regimen card of an active regimen: how often the phase in progress comes, in words
    (`spacing_text`), and its interval a clinician may shorten (None when there is none), from one resolve."""
    data, index, spec = _in_progress(regimen)
    try:
        interval: PhaseInterval | None = _interval(data, index, spec)
    except ServiceError:
        interval = None
    return spacing_text(spec.spacing, spec.spacing_value), interval


def _own_field(exc: ServiceError, key: str) -> ServiceError:
    """An error of the option check (`options.phases.<key>.spacing_value`, `options.override_reason`) under the
    name the request gives the field."""
    names = {f"options.phases.{key}.spacing_value": "spacing_value", "options.override_reason": "override_reason"}
    return ServiceError(names.get(exc.field, exc.field), exc.message)


def regimen_shorten_interval(
    *, regimen: Regimen, spacing_value: int, by: Any, reason: str = "", override_reason: str = ""
) -> Regimen:
    """RULES R-UK-4 (NG239): a prescriber shortens the interval of the phase in progress, at any time, on the
    running regimen (the same T0 and baseline, §10 V-1). `spacing_value` is the new number of days, weeks or months
    between doses: a whole number smaller than the current one; an equal or longer one is refused (no lengthening
    here). Outside the protocol's range it needs `override_reason`, as at the start (the same check and bounds:
    `resolve_spec`). The value goes into the regimen's `options`, so every later re-plan keeps it; the decision is
    recorded with who, when, the old and new interval and the reasons; the planned doses are re-planned at once:
    the next one is one new interval after the last dose of the phase (given, or the one before), on the day of the
    decision at the earliest, on an open clinic day. Doses recorded (given, not given, entered in error) and overdue
    ones (§10 V-11) keep their dates."""
    if not is_prescriber(by, regimen.patient.clinic_id):
        raise PermissionDenied("Only a clinician or clinic admin of this clinic may shorten a regimen's interval.")
    if not isinstance(spacing_value, int) or isinstance(spacing_value, bool):
        raise ServiceError("spacing_value", "must be a whole number")
    reason = (reason or "").strip()
    override_reason = (override_reason or "").strip()
    with transaction.atomic():
        regimen = lock_regimen(regimen)
        interval = regimen_interval(regimen)
        if spacing_value >= interval.value:
            raise ServiceError(
                "spacing_value",
                f"must be shorter than the current interval ({interval.text()}): the interval can only be shortened "
                f"here (RULES R-UK-4, no lengthening); give a whole number of {interval.unit} below {interval.value}",
            )
        if spacing_value < 1:
            raise ServiceError("spacing_value", "must be a whole number of at least 1")
        # The start's check of options and override bounds (`resolve_spec`), on this one value: first without a
        # reason (inside the range?), then with this request's reason.
        override = interval.needs_override_reason(spacing_value)
        if override and not override_reason:
            raise ServiceError(
                "override_reason",
                f"{interval.text(spacing_value)} is outside the protocol's range ({interval.range_text()}): say why "
                "this patient needs it (RULES §1.1: an override is recorded with its reason)",
            )
        try:
            resolve_spec(interval.data, interval.options_for(spacing_value, override_reason if override else ""))
        except ServiceError as exc:
            raise _own_field(exc, interval.phase_key) from exc
        options = deepcopy(regimen.options) if isinstance(regimen.options, dict) else {}
        phases = options.setdefault("phases", {})
        phases.setdefault(interval.phase_key, {})["spacing_value"] = spacing_value
        update = ["options"]
        if override:
            # Kept where every later re-plan checks the options, and with the regimen's other override reasons.
            options["override_reason"] = _joined(options.get("override_reason"), override_reason)
            regimen.override_reason = _joined(regimen.override_reason, override_reason)
            update.append("override_reason")
        regimen.options = options
        regimen.save(update_fields=update)
        note = [f"{interval.phase_name}: {interval.text()} → {interval.text(spacing_value)} (R-UK-4)"]
        if reason:
            note.append(f"Reason: {reason}")
        if override:
            note.append(f"Override reason (outside the protocol's range): {override_reason}")
        today = patient_today(regimen.patient)
        regimen = _decide_and_replan(
            regimen, interval.phase_index, DecisionKind.INTERVAL_SHORTENED, today, by, "\n".join(note), today,
            cause=f"interval of {interval.phase_key} shortened to {interval.text(spacing_value)} on {today}",
        )  # fmt: skip
    return regimen


def _joined(*reasons: Any) -> str:
    return "; ".join(dict.fromkeys(str(r).strip() for r in reasons if r and str(r).strip()))


def regimen_stop(*, regimen: Regimen, reason: str, acknowledge: list[str] | None = None, user: Any = None) -> Regimen:
    """Stop a regimen: planned doses and due rechecks are cancelled. Stopping lifelong therapy
    for an irreversible cause needs the S-5 warning acknowledged; the stop's `reason` is then the
    hard stop's override reason, held to the same minimum length."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("reason", "say why the regimen is stopped")
    with transaction.atomic():
        regimen = lock_regimen(regimen)
        require_active(regimen)
        warnings = events.collect("regimen.stopping", regimen=regimen)
        acknowledged = require_acknowledged(warnings, acknowledge)
        require_override_reason(warnings, acknowledged, reason, field="reason")
        regimen.status = RegimenStatus.STOPPED
        regimen.stopped_at = djtz.now()
        regimen.stopped_by = recorded_by(user)
        regimen.stop_reason = reason
        regimen.acknowledged_warnings = sorted({*regimen.acknowledged_warnings, *acknowledged})
        regimen.extend_on = None
        regimen.save(
            update_fields=["status", "stopped_at", "stopped_by", "stop_reason", "acknowledged_warnings", "extend_on"]
        )
        planned = regimen.doses.filter(status=DoseStatus.PLANNED)
        cancelled = sorted(planned.values_list("id", flat=True))
        if cancelled:
            Replan.objects.create(
                regimen=regimen,
                patient_id=regimen.patient_id,
                cause=f"regimen stopped: {reason}"[:200],
                user=recorded_by(user),
                cancelled=cancelled,
            )
        planned.update(status=DoseStatus.CANCELLED)
        regimen.lab_rechecks.filter(status__in=[RecheckStatus.DUE, RecheckStatus.OVERDUE]).update(
            status=RecheckStatus.CANCELLED
        )
        events.announce(
            "regimen.stopped", regimen=regimen, acknowledged=acknowledged, override_reason=reason, by=regimen.stopped_by
        )
    return regimen


def regimen_replan(*, regimen: Regimen, today: date | None = None) -> Regimen:
    """Re-plan from what happened so far (also after new lab results change the recheck plan)."""
    with transaction.atomic():
        regimen = lock_regimen(regimen)
        if regimen.status == RegimenStatus.ACTIVE:
            replan(regimen, today, cause="new clinical data (lab results or facts)")
    return regimen


def regimen_replan_if_changed(
    *,
    regimen: Regimen,
    today: date,
    changed: Callable[[schedule.Plan, list[LabRecheck]], bool],
    lab_context: LabContextFunction | None = None,
) -> bool:
    """Re-plan after new lab results or facts only when `changed(plan, rechecks)` (issue 16): the regimen is
    locked first, so its plan is computed once, to decide and to write. True when it re-planned. `lab_context`:
    the lab flags from results and facts the caller read in its transaction (the monitoring evaluation), instead
    of reading them again.

    Part of the caller's transaction when there is one (no savepoint: nothing here is retried on an error, which
    undoes the caller's work too), else its own."""
    with transaction.atomic(savepoint=False):
        regimen = lock_regimen_to_plan(regimen.pk)
        if regimen.status != RegimenStatus.ACTIVE:
            return False
        return replan_when(
            regimen, today, changed, cause="new clinical data (lab results or facts)", lab_context=lab_context
        )


def regimens_extend_horizons(*, at: datetime) -> dict[str, int]:
    """Extend the rolling horizons of the regimens that need it as of `at` (periodic task).

    Idempotent: a re-planned regimen's extend_on moves past `at`, so a second run for the same
    instant finds nothing to do.
    """
    # extend_on is a local date; a day of slack covers every time zone's "today".
    # The running sweep's shard of patients, if any (tracker/sweeps.py).
    candidates = in_shard(
        Regimen.objects.filter(status=RegimenStatus.ACTIVE, extend_on__lte=(at + timedelta(days=1)).date()),
        "patient_id",
    ).values_list("id", flat=True)
    # Batches of regimens re-planned together (planning.replan_regimens): a fixed number of queries
    # per batch, each batch its own transaction.
    extended = replan_regimens(
        list(candidates),
        today=lambda regimen: patient_today(regimen.patient, at),
        due=lambda regimen, today: regimen.extend_on is not None and regimen.extend_on <= today,
        cause="planning horizon extended",
    )
    return {"extended": extended}
