"""Write services on a regimen: start it, record a clinician's decision, stop it, re-plan it.

Each one is atomic, locks the regimen row first and re-plans through regimens/services/planning.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
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
        RegimenDecision.objects.create(
            regimen=regimen,
            phase_index=phase.order,
            kind=DecisionKind.END_PHASE,
            outcome=ReviewOutcome.PLATEAU_REACHED,
            decided_on=ended_on,
            decided_by=recorded_by(user),
            note=note,
        )
        regimen = lock_regimen(regimen)  # re-read the decisions
        replan(regimen, today, cause=f"phase {phase.key} ended on {ended_on}")
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
        RegimenDecision.objects.create(
            regimen=regimen,
            phase_index=plan.awaiting_gate,
            kind=DecisionKind.CONFIRM_GATE,
            decided_on=confirmed_on,
            decided_by=recorded_by(user),
            note=note,
        )
        regimen = lock_regimen(regimen)
        replan(regimen, today, cause=f"gate confirmed on {confirmed_on}")
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
