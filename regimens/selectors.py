"""Read functions over regimens' rows that other apps share (HackSoft "selectors")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from django.utils import timezone as djtz

from regimens.models import DoseStatus, LabRecheck, RecheckStatus, Regimen, RegimenStatus, ScheduledDose
from tracker import events
from tracker.clock import local_date
from tracker.errors import SafetyWarning


def first_dose_at(patient: Any) -> datetime | None:
    """When the patient's first B12 dose recorded in Cobalt was given (any regimen), or None.

    About the patient, not a regimen: S-6(a) asks whether the patient has had any B12 at all. The response
    rules use the current regimen's T0 instead (`regimen_t0`, RULES §10 V-1)."""
    first: datetime | None = (
        ScheduledDose.objects.filter(patient=patient, status=DoseStatus.GIVEN, administered_at__isnull=False)
        .order_by("administered_at")
        .values_list("administered_at", flat=True)
        .first()
    )
    return first


def first_dose_date(patient: Any) -> date | None:
    """The local date of the patient's first B12 dose given in Cobalt, in any regimen (S-6)."""
    first = first_dose_at(patient)
    return None if first is None else local_date(first, patient.timezone)


def dose_administration_warnings(
    *, dose: ScheduledDose, route: str | None = None, administered_at: datetime | None = None
) -> list[SafetyWarning]:
    """The point-of-care warnings (RULES §4 S-2, S-10, S-11, S-12) that recording `dose` as given by `route`
    (default: the planned route) at `administered_at` (default: now) raises. The dose API shows them before
    the injection (§10 V-12) and dose_record_administration requires them acknowledged: one computation."""
    warnings: list[SafetyWarning] = events.collect(
        "dose.administering",
        dose=dose,
        route=route or dose.route,
        administered_at=administered_at or djtz.now(),
    )
    return warnings


def dose_pending_warnings(dose: ScheduledDose) -> list[SafetyWarning]:
    """§10 V-12: for a planned dose, the warnings giving it now by its planned route would raise; none for
    a dose already recorded (given, not given, cancelled)."""
    if dose.status != DoseStatus.PLANNED:
        return []
    return dose_administration_warnings(dose=dose)


def current_regimen(patient: Any) -> Regimen | None:
    """RULES §10 V-1: the regimen whose T0 and baseline the rules use: the patient's active regimen, else the
    latest one (by start date, then the later entry). A stopped or completed regimen stays current until
    another starts, so its windows still judge the results that follow it."""
    regimens = Regimen.objects.filter(patient=patient).order_by("-start_date", "-id")
    active = regimens.filter(status=RegimenStatus.ACTIVE).first()
    return active if active is not None else regimens.first()


def enrolled_at_maintenance(regimen: Regimen) -> bool:
    """RULES §10 V-1: the regimen was entered by enrolment (options.enrol: the patient was already treated
    elsewhere), so it has no response windows."""
    return isinstance(regimen.options, dict) and regimen.options.get("enrol") is not None


def regimen_t0(regimen: Regimen) -> date | None:
    """RULES §10 V-1 T0: the patient's local date of the first dose given in this regimen, or None before one.

    Doses entered in error, not given or cancelled do not count. For an enrolment at maintenance the patient
    was on treatment before Cobalt: T0 is the last dose given elsewhere (options.enrol.last_dose_date) when it
    is earlier, so "post-T0" (A-H5, A-P3) covers every result since enrolment and a B12 drawn at enrolment is
    not mistaken for a pre-treatment level (decision, docs/clinical-reference.md D-1).
    """
    first: datetime | None = (
        regimen.doses.filter(status=DoseStatus.GIVEN, administered_at__isnull=False)
        .order_by("administered_at")
        .values_list("administered_at", flat=True)
        .first()
    )
    t0 = None if first is None else local_date(first, regimen.patient.timezone)
    if enrolled_at_maintenance(regimen):
        try:
            elsewhere: date | None = date.fromisoformat(str(regimen.options["enrol"].get("last_dose_date")))
        except (AttributeError, ValueError):
            elsewhere = None  # validated at start (regimens/services/planning.py); never trusted blindly here
        if elsewhere is not None and (t0 is None or elsewhere < t0):
            t0 = elsewhere
    return t0


def current_t0(patient: Any) -> date | None:
    """T0 of the patient's current regimen (RULES §10 V-1), or None."""
    regimen = current_regimen(patient)
    return None if regimen is None else regimen_t0(regimen)


# --- A patient's appointments (their calendar feed and portal) ------------------------------------------


@dataclass(frozen=True)
class Appointment:
    """A visit to the clinic as the patient sees it: a clinic-given dose or a lab recheck, with nothing
    clinical about it. `uid` stays the same when the plan moves it (a planned dose keeps its row per slot),
    so calendar apps move the event instead of adding one."""

    uid: str  # no clinical word even here: "visit-<dose id>", "booking-<recheck id>"
    kind: str  # "dose" or "recheck"
    day: date  # the planned day; for a dose given, the day it was given
    status: str  # "planned", "attended" or "cancelled"
    window_start: date | None = None  # rechecks: book it within this window
    window_end: date | None = None
    time: time | None = None  # clinic-local; doses only, when the dose or the clinic's sessions set one


def appointment_time(dose_time: time | None, session_start: time | None) -> time | None:
    """A dose's appointment time: its own, else the start of the clinic's (first) session, else none."""
    return dose_time or session_start


_DOSE_STATUS: dict[str, str] = {
    DoseStatus.PLANNED: "planned",
    DoseStatus.GIVEN: "attended",
    DoseStatus.NOT_GIVEN: "cancelled",
    DoseStatus.CANCELLED: "cancelled",
    DoseStatus.ENTERED_IN_ERROR: "cancelled",
}
_RECHECK_STATUS: dict[str, str] = {
    RecheckStatus.DUE: "planned",
    RecheckStatus.OVERDUE: "planned",
    RecheckStatus.DONE: "attended",
    RecheckStatus.CANCELLED: "cancelled",
}


def patient_appointments(patient: Any, *, since: date) -> list[Appointment]:
    """The patient's clinic appointments from `since` on, in date order: clinic-given doses (doses taken at
    home are not appointments) and lab rechecks. A planned one of a regimen no longer active is cancelled.
    Two queries whatever the number of rows."""
    doses = ScheduledDose.objects.filter(patient=patient, self_administered=False, due_date__gte=since).values_list(
        "id", "due_date", "status", "administered_at", "regimen__status", "appointment_time"
    )
    rechecks = LabRecheck.objects.filter(patient=patient, due_date__gte=since).values_list(
        "id", "due_date", "status", "regimen__status", "window_start", "window_end"
    )
    out: list[Appointment] = []
    session_start = patient.clinic.session_start
    for pk, day, status, given_at, regimen_status, at_time in doses:
        shown = _DOSE_STATUS.get(status, "cancelled")
        if shown == "planned" and regimen_status != RegimenStatus.ACTIVE:
            shown = "cancelled"
        if shown == "attended" and given_at is not None:
            day = local_date(given_at, patient.timezone)
        when = appointment_time(at_time, session_start) if shown != "attended" else None
        out.append(Appointment(f"visit-{pk}", "dose", day, shown, time=when))
    for pk, day, status, regimen_status, start, end in rechecks:
        shown = _RECHECK_STATUS.get(status, "cancelled")
        if shown == "planned" and regimen_status != RegimenStatus.ACTIVE:
            shown = "cancelled"
        out.append(Appointment(f"booking-{pk}", "recheck", day, shown, start, end))
    out.sort(key=lambda a: (a.day, a.uid))
    return out
