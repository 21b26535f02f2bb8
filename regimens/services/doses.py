"""Write services on a scheduled dose: record it as given or as not given, or mark such a record
entered in error (RULES §10 V-14).

Each re-plans the later doses from what happened, unless it cannot change them (a dose given on its due day:
`given_as_planned`).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone as djtz
from rest_framework.exceptions import PermissionDenied

from patients.models import Patient
from regimens.models import DoseStatus, Regimen, RegimenStatus, Route, ScheduledDose
from regimens.selectors import dose_administration_warnings
from regimens.services.planning import recorded_by, replan, require_active
from tracker import events
from tracker.bulk import locked_row
from tracker.clock import CLOCK_SKEW, local_date, patient_today
from tracker.errors import ConflictError, ServiceError, require_acknowledged, require_override_reason

# A first dose may be given a little before the planned start (the patient came in early); a
# date much earlier than that is a data-entry slip. Not a clinical number.
EARLY_FIRST_DOSE = timedelta(days=7)


def _lock(dose: ScheduledDose) -> tuple[Regimen, ScheduledDose]:
    """Lock the dose's regimen, then the dose: the order every re-plan locks in, so two writers
    on one regimen queue up instead of deadlocking. The regimen row alone (a re-plan reads its decisions, and its
    protocol if it has no snapshot, as it is made), with its patient as read with the dose; the dose as `_lock_dose`
    reads it."""
    regimen = locked_row(Regimen, dose.regimen_id)
    if ScheduledDose.patient.is_cached(dose):
        regimen.patient = dose.patient  # as the API read it with the dose (its time zone, its clinic id)
    else:
        regimen.patient = Patient.objects.select_related("clinic").get(pk=regimen.patient_id)
    locked = _lock_dose(dose.pk)
    locked.patient = regimen.patient  # the same row
    return regimen, locked


# The dose row, locked, and whether another dose of its regimen is still planned in an earlier slot (`earlier_planned`:
# then it cannot be given yet) or later in its phase (`later_in_phase`: giving it leaves the phase unfinished). Written
# out, not built with the ORM: the ORM took three times as long to build the statement as PostgreSQL to run it, on the
# path of every dose recorded (issue 16). Runs on PostgreSQL and SQLite (which has no row locks: `make run`'s default).
_LOCK_DOSE = """
SELECT d.*,
    EXISTS (
        SELECT 1 FROM {table} o
        WHERE o.regimen_id = d.regimen_id AND o.status = %s AND o.id <> d.id
            AND (o.phase_index < d.phase_index OR (o.phase_index = d.phase_index AND o.sequence < d.sequence))
    ) AS earlier_planned,
    EXISTS (
        SELECT 1 FROM {table} o
        WHERE o.regimen_id = d.regimen_id AND o.status = %s AND o.phase_index = d.phase_index
            AND o.sequence > d.sequence
    ) AS later_in_phase
FROM {table} d
WHERE d.id = %s{lock}
"""


def _lock_dose(pk: int) -> ScheduledDose:
    lock = " FOR UPDATE OF d" if connection.features.has_select_for_update_of else ""
    sql = _LOCK_DOSE.format(table=ScheduledDose._meta.db_table, lock=lock)
    found = list(ScheduledDose.objects.raw(sql, [DoseStatus.PLANNED, DoseStatus.PLANNED, pk]))
    if not found:
        raise ScheduledDose.DoesNotExist(f"dose {pk} no longer exists")
    locked = found[0]
    locked.earlier_planned = bool(locked.earlier_planned)  # type: ignore[attr-defined]
    locked.later_in_phase = bool(locked.later_in_phase)  # type: ignore[attr-defined]
    return locked


def _administration_fingerprint(dose: ScheduledDose) -> tuple[Any, ...]:
    return (dose.administered_at, dose.lot_number, dose.expiry_date, dose.site, dose.given_route)


def given_as_planned(regimen: Regimen, dose: ScheduledDose, given_on: date, *, later_in_phase: bool) -> bool:
    """True when recording `dose` (the regimen's first planned dose) as given on `given_on` leaves the regimen's
    plan as it is, so that no re-plan is needed (issue 16: re-plan only when what the plan depends on changed).

    The engine (regimens/schedule.py `plan`) plans each later dose from this one as given, or as planned while it
    is not: given on its due date, the same day either way, so every later dose, the clinic-week counts, T0 (the
    first dose as given, else as planned) and the rechecks planned from it are the same. Its phase is unfinished
    before and after while a later dose of it is still planned (`later_in_phase`), so the regimen's progress (its
    current phase, a gate it waits at, its completion) stays too. And until `extend_on` the horizons add no dose
    or recheck: a re-plan on a later day than the last one plans the same rows. Anything else re-plans.
    tests/regimens/test_dose_given_as_planned.py re-plans fully after each dose of every built-in protocol
    given on its day and checks that nothing would change."""
    today = patient_today(regimen.patient)
    return given_on == dose.due_date and later_in_phase and (regimen.extend_on is None or today < regimen.extend_on)


def dose_record_administration(
    *,
    dose: ScheduledDose,
    administered_at: datetime,
    lot_number: str = "",
    expiry_date: date | None = None,
    site: str = "",
    route: str | None = None,
    acknowledge: list[str] | None = None,
    override_reason: str = "",
    user: Any = None,
) -> ScheduledDose:
    """Record a dose as given and re-plan the later doses from its actual date.

    Safety warnings must be acknowledged; the hard stops (S-10, S-11) also need `override_reason`, kept
    in the evidence of the alert the override opens (a dose has no field for it).
    A repeat of the same request returns the dose unchanged; a conflicting one is a 409.
    """
    if djtz.is_naive(administered_at):
        raise ServiceError("administered_at", "must include a time zone offset, e.g. 2027-01-04T10:30:00+00:00")
    if administered_at > djtz.now() + CLOCK_SKEW:
        raise ServiceError("administered_at", "cannot be in the future")
    if route is not None and route not in Route.values:
        raise ServiceError("route", f"'{route}' is not a route; use one of {', '.join(Route.values)}")
    with transaction.atomic():
        regimen, dose = _lock(dose)
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
        require_active(regimen)
        if dose.earlier_planned:  # type: ignore[attr-defined]
            # Each dose is measured from the one before it as given (RULES "Scheduling
            # semantics"): giving a later slot first would leave an earlier one planned after it.
            earlier = (
                regimen.doses.filter(status=DoseStatus.PLANNED)
                .filter(
                    Q(phase_index__lt=dose.phase_index) | Q(phase_index=dose.phase_index, sequence__lt=dose.sequence)
                )
                .order_by("phase_index", "sequence")
                .first()
            )
            assert earlier is not None
            raise ConflictError(
                "dose",
                f"{earlier.phase} dose {earlier.sequence} (due {earlier.due_date}) is still planned; "
                "record it as given or not given first",
            )
        given_on = local_date(administered_at, regimen.patient.timezone)
        earliest = regimen.start_date - EARLY_FIRST_DOSE
        if given_on < earliest and not regimen.options.get("enrol"):
            raise ServiceError(
                "administered_at", f"is more than a week before the regimen starts ({regimen.start_date})"
            )
        if expiry_date is not None and expiry_date < given_on:
            raise ServiceError("expiry_date", f"the product had expired on {expiry_date} before it was given")
        warnings = dose_administration_warnings(dose=dose, route=given_route, administered_at=administered_at)
        acknowledged = require_acknowledged(warnings, acknowledge)
        reason = require_override_reason(warnings, acknowledged, override_reason)
        dose.status = DoseStatus.GIVEN
        dose.administered_at = administered_at
        dose.lot_number = lot_number
        dose.expiry_date = expiry_date
        dose.site = site
        dose.given_route = given_route
        dose.recorded_at = djtz.now()
        dose.administered_by = recorded_by(user)
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
        events.announce("dose.recorded", dose=dose, acknowledged=acknowledged, override_reason=reason)
        later_in_phase: bool = dose.later_in_phase  # type: ignore[attr-defined]
        if not given_as_planned(regimen, dose, given_on, later_in_phase=later_in_phase):
            replan(regimen, cause=f"dose {dose.pk} recorded as given")
        # The first dose sets T0: the monitoring rules (S-9 potassium, S-6, S-13) run once this commits.
        events.announce_on_commit("patient.changed", patient_id=regimen.patient_id)
    return dose


def dose_record_not_given(
    *, dose: ScheduledDose, reason: str, on: date | None = None, user: Any = None
) -> ScheduledDose:
    """Record that a planned dose was not given (did not attend, refused, held). It stays visible
    with its reason and a replacement is planned (RULES "Scheduling semantics")."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("reason", "say why the dose was not given (e.g. did not attend, refused, held)")
    with transaction.atomic():
        regimen, dose = _lock(dose)
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
        require_active(regimen)
        if on > latest:
            raise ServiceError("on", "cannot be later than today or the dose's due date")
        dose.status = DoseStatus.NOT_GIVEN
        dose.not_given_reason = reason[:200]
        dose.not_given_on = on
        dose.recorded_at = djtz.now()
        dose.administered_by = recorded_by(user)
        dose.save(update_fields=["status", "not_given_reason", "not_given_on", "recorded_at", "administered_by"])
        events.announce("dose.recorded", dose=dose, acknowledged=[])
        replan(regimen, today, cause=f"dose {dose.pk} recorded as not given")
    return dose


def dose_mark_entered_in_error(
    *, dose: ScheduledDose, reason: str, user: Any = None, clinician: bool = False
) -> ScheduledDose:
    """RULES §10 V-14: mark a dose recorded as given or not given as entered in error.

    A clinician may always; the nurse who recorded it only within ENTERED_IN_ERROR_RECORDER_DAYS [P] of
    recording it. The row is kept (with who, when and why) and no longer counts: the engine plans its slot
    again as if the record never happened (planning._records reads given and not-given rows only, and the
    live-slot constraint covers planned and given rows only), the later doses are re-planned, and the
    monitoring rules run again for the patient (T0, S-4, S-6 and S-9 read the doses given).
    """
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("reason", "say why the record is wrong (e.g. recorded on the wrong patient)")
    with transaction.atomic():
        regimen, dose = _lock(dose)
        if dose.status == DoseStatus.ENTERED_IN_ERROR:
            if dose.error_reason == reason[:500]:
                return dose
            raise ConflictError("status", "this dose record was already marked entered in error")
        if dose.status not in (DoseStatus.GIVEN, DoseStatus.NOT_GIVEN):
            raise ConflictError(
                "status",
                f"only a dose recorded as given or not given can be entered in error; this one is "
                f"{dose.get_status_display().lower()}",
            )
        if not clinician:
            days = int(settings.COBALT["ENTERED_IN_ERROR_RECORDER_DAYS"])
            author = getattr(user, "pk", None)
            if author is None or dose.administered_by_id != author:
                raise PermissionDenied(
                    "Only a clinician or the nurse who recorded this dose may mark it entered in error."
                )
            if dose.recorded_at is None or djtz.now() - dose.recorded_at > timedelta(days=days):
                raise PermissionDenied(
                    f"This dose was recorded more than {days} days ago: only a clinician may mark it entered in error."
                )
        dose.status = DoseStatus.ENTERED_IN_ERROR
        dose.error_reason = reason[:500]
        dose.error_recorded_at = djtz.now()
        dose.error_recorded_by = recorded_by(user)
        dose.save(update_fields=["status", "error_reason", "error_recorded_at", "error_recorded_by"])
        if regimen.status == RegimenStatus.ACTIVE:
            # A stopped or completed regimen keeps its rows: the record is corrected, nothing is planned.
            replan(regimen, cause=f"dose {dose.pk} entered in error")
        events.announce_on_commit("patient.changed", patient_id=regimen.patient_id)
    return dose


def dose_set_appointment_time(*, dose: ScheduledDose, appointment_time: time | None, user: Any = None) -> ScheduledDose:
    """Give a planned clinic dose its appointment time (clinic-local), or None for the clinic's default (the
    start of its session). Within the clinic's session hours when it sets them. The change is in the dose's
    history; reminders written from now on and the patient's calendar show it."""
    with transaction.atomic():
        _regimen, dose = _lock(dose)
        if dose.status != DoseStatus.PLANNED:
            raise ConflictError("status", f"the dose is {dose.status}; only a planned dose has an appointment")
        if dose.self_administered:
            raise ServiceError("appointment_time", "this dose is taken at home: it has no appointment")
        clinic = dose.patient.clinic
        start, end = clinic.session_start, clinic.session_end
        if appointment_time is not None and start and end and not start <= appointment_time < end:
            raise ServiceError(
                "appointment_time", f"must be within the clinic's session, {start:%H:%M} to {end:%H:%M}"
            )
        dose.appointment_time = appointment_time
        if user is not None and getattr(user, "is_authenticated", False):
            dose._history_user = user  # type: ignore[attr-defined]
        dose.save(update_fields=["appointment_time"])
    return dose
