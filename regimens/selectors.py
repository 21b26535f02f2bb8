"""Read functions over regimens' rows that other apps share (HackSoft "selectors")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone as djtz

from patients.models import Clinic, ClosedDate
from regimens.models import (
    ORAL_ROUTES,
    DoseStatus,
    LabRecheck,
    Protocol,
    ProtocolPhase,
    RecheckStatus,
    Regimen,
    RegimenStatus,
    ScheduledDose,
)
from tracker import clock, events
from tracker.clock import local_date
from tracker.errors import SafetyWarning
from tracker.permissions import staff_clinic_ids


def protocols_for_clinics(clinic_ids: Iterable[int]) -> QuerySet[Protocol]:
    """The protocols these clinics may see and choose: the shared ones and the clinics' own copies (issue 12).
    Another clinic's copy is not in it, so it is answered like a protocol that does not exist."""
    return Protocol.objects.filter(Q(clinic__isnull=True) | Q(clinic__in=list(clinic_ids))).prefetch_related(
        Prefetch("phases", queryset=ProtocolPhase.objects.order_by("order")), "recheck_steps"
    )


def protocols_for(user: Any) -> QuerySet[Protocol]:
    """The protocols `user` may see and choose: the shared ones and their clinics' own copies."""
    return protocols_for_clinics(staff_clinic_ids(user) if user is not None else [])


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
    *, dose: ScheduledDose, route: str | None = None, administered_at: datetime | None = None, data: Any = None
) -> list[SafetyWarning]:
    """The point-of-care warnings (RULES §4 S-2, S-10, S-11, S-12) that recording `dose` as given by `route`
    (default: the planned route) at `administered_at` (default: now) raises. The dose API shows them before
    the injection (§10 V-12) and dose_record_administration requires them acknowledged: one computation.
    `data`, when given, answers what the rules read (see dose_pending_warnings)."""
    warnings: list[SafetyWarning] = events.collect(
        "dose.administering",
        dose=dose,
        route=route or dose.route,
        administered_at=administered_at or djtz.now(),
        **({"data": data} if data is not None else {}),
    )
    return warnings


def dose_pending_warnings(dose: ScheduledDose, data: Any = None) -> list[SafetyWarning]:
    """§10 V-12: for a planned dose, the warnings giving it now by its planned route would raise; none for
    a dose already recorded (given, not given, cancelled). `data`: what the rules read, already loaded
    (monitoring.safety.AdministrationData; the patient page), else read here."""
    if dose.status != DoseStatus.PLANNED:
        return []
    return dose_administration_warnings(dose=dose, data=data)


def current_regimen(patient: Any) -> Regimen | None:
    """RULES §10 V-1: the regimen whose T0 and baseline the rules use: the patient's active regimen, else the
    latest one (by start date, then the later entry). A stopped or completed regimen stays current until
    another starts, so its windows still judge the results that follow it."""
    regimens = (
        Regimen.objects.filter(patient=patient)
        .annotate(first_given_at=Subquery(_first_given(OuterRef("pk"))))
        .order_by("-start_date", "-id")
    )
    active = regimens.filter(status=RegimenStatus.ACTIVE).first()
    return active if active is not None else regimens.first()


def current_among(regimens: Iterable[Regimen]) -> Regimen | None:
    """`current_regimen` chosen among the patient's regimens already read, ordered by start date then id, both
    descending (the patient page reads them once for its sections)."""
    ordered = list(regimens)
    active = next((r for r in ordered if r.status == RegimenStatus.ACTIVE), None)
    return active if active is not None else next(iter(ordered), None)


def next_planned_dose(regimen: Regimen) -> ScheduledDose | None:
    """The regimen's earliest planned dose (overdue or to come), None when nothing is planned."""
    planned: ScheduledDose | None = (
        regimen.doses.filter(status=DoseStatus.PLANNED).order_by("due_date", "phase_index", "sequence").first()
    )
    return planned


def _first_given(regimen: Any) -> QuerySet[ScheduledDose, Any]:
    """When the first dose of `regimen` counted for T0 was given (a queryset of at most one value): doses entered
    in error, not given or cancelled do not count."""
    return (
        ScheduledDose.objects.filter(regimen=regimen, status=DoseStatus.GIVEN, administered_at__isnull=False)
        .order_by("administered_at")
        .values_list("administered_at", flat=True)[:1]
    )


def enrolled_at_maintenance(regimen: Regimen) -> bool:
    """RULES §10 V-1: the regimen was entered by enrolment (options.enrol: the patient was already treated
    elsewhere), so it has no response windows."""
    return isinstance(regimen.options, dict) and regimen.options.get("enrol") is not None


def regimen_t0(regimen: Regimen, doses: Iterable[ScheduledDose] | None = None) -> date | None:
    """RULES §10 V-1 T0: the patient's local date of the first dose given in this regimen, or None before one.

    Doses entered in error, not given or cancelled do not count. For an enrolment at maintenance the patient
    was on treatment before Cobalt: T0 is the last dose given elsewhere (options.enrol.last_dose_date) when it
    is earlier, so "post-T0" (A-H5, A-P3) covers every result since enrolment and a B12 drawn at enrolment is
    not mistaken for a pre-treatment level (decision, docs/clinical-reference.md D-1).

    `doses`: the regimen's doses already read (the patient page), instead of a query.
    """
    first: datetime | None
    if doses is not None:
        given = [d.administered_at for d in doses if d.status == DoseStatus.GIVEN and d.administered_at is not None]
        first = min(given, default=None)
    elif hasattr(regimen, "first_given_at"):
        first = regimen.first_given_at  # read with the regimen by current_regimen
    else:
        first = _first_given(regimen.pk).first()
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


def doses_pending_warnings(doses: list[ScheduledDose], at: datetime | None = None) -> dict[int, list[SafetyWarning]]:
    """`dose_pending_warnings` of many planned doses at once (the worklist), by dose id: the same rules, read
    from a fixed number of queries however many doses (monitoring answers "doses.administering_many")."""
    planned = [d for d in doses if d.status == DoseStatus.PLANNED]
    found: dict[int, list[SafetyWarning]] = {d.pk: [] for d in doses}
    if not planned:
        return found
    for pk, warning in events.collect("doses.administering_many", doses=planned, at=at or djtz.now()):
        found[pk].append(warning)
    return found


# --- The nurse's worklist and the calendar (regimens/worklist_pages.py, their CSV exports) ------------------------


def is_home_dose(dose: ScheduledDose) -> bool:
    """A dose the patient takes at home (RULES §7.3 oral routes, or a self-administered phase): it is not
    the clinic's work, so the worklist and the calendar leave it out unless asked."""
    return dose.self_administered or dose.route in ORAL_ROUTES


def home_dose_q() -> Q:
    return Q(self_administered=True) | Q(route__in=sorted(ORAL_ROUTES))



def dose_amount(dose_mcg: int, dose_unit: str) -> int | float:
    """The dose in the unit shown to people (RULES §1.1: 1 mg = 1000 mcg)."""
    if dose_unit == "mg":
        amount = dose_mcg / 1000
        return int(amount) if amount.is_integer() else amount
    return dose_mcg

@dataclass(frozen=True)
class WorklistFilters:
    """What the nurse asked to see: one clinic (of theirs) or all, one route or all, home doses or not."""

    clinic: int | None = None
    route: str | None = None
    home: bool = False
    overdue: bool = False  # only the doses due before today


@dataclass
class WorklistDose:
    dose: ScheduledDose
    today: date  # in the patient's time zone
    warnings: list[SafetyWarning] = field(default_factory=list)
    more_due: int = 0  # the regimen's later doses also due today or overdue (given after this one)

    @property
    def days_overdue(self) -> int:
        if self.dose.status != DoseStatus.PLANNED:
            return 0
        return max(0, (self.today - self.dose.due_date).days)

    @property
    def age(self) -> int:
        return self.dose.patient.age_on(self.today)

    @property
    def home(self) -> bool:
        return is_home_dose(self.dose)

    @property
    def amount(self) -> str:
        """The dose in the unit shown to people (RULES §1.1), as the API's dose_amount."""
        return f"{dose_amount(self.dose.dose_mcg, self.dose.dose_unit)} {self.dose.dose_unit}"


@dataclass
class WorklistRecheck:
    recheck: LabRecheck
    today: date

    @property
    def overdue(self) -> bool:
        return self.recheck.status == RecheckStatus.OVERDUE or self.recheck.window_end < self.today


@dataclass
class Worklist:
    doses: list[WorklistDose]
    rechecks: list[WorklistRecheck]
    alerts: list[tuple[str, str, int]]  # (severity, label, open count), most severe first
    home_hidden: int  # home doses due or overdue that the filters leave out

    @property
    def alerts_total(self) -> int:
        return sum(n for _, _, n in self.alerts)


def worklist_doses_queryset(clinic_ids: Iterable[int]) -> QuerySet[ScheduledDose]:
    """Planned doses of active regimens of the clinics' patients, with what a worklist row shows."""
    # clinic: the dose's denormalised clinic (its dose_clinic_due_idx index), not a join through the patients.
    return ScheduledDose.objects.filter(
        clinic_id__in=list(clinic_ids), status=DoseStatus.PLANNED, regimen__status=RegimenStatus.ACTIVE
    ).select_related("patient", "patient__clinic", "regimen__protocol")


def _filtered(queryset: QuerySet[Any], filters: WorklistFilters, clinic_path: str) -> QuerySet[Any]:
    if filters.clinic is not None:
        queryset = queryset.filter(**{clinic_path: filters.clinic})
    return queryset


def worklist(*, clinic_ids: list[int], filters: WorklistFilters | None = None, now: datetime | None = None) -> Worklist:
    """The nurse's list for today in the clinics `clinic_ids`: planned doses due today or overdue (today in
    each patient's time zone), oldest first, one per regimen (its earliest, with how many more are due), each
    with the point-of-care warnings giving it now would raise (RULES §10 V-12: shown before the injection);
    lab rechecks whose window has opened and that are not done;
    and the clinics' open alerts counted by severity. A fixed number of queries however many rows."""
    filters = filters or WorklistFilters()
    now = now or clock.now()
    # The latest "today" on Earth is at most a day after UTC's; each row is then kept by its own today.
    horizon = now.date() + timedelta(days=1)
    queryset = _filtered(worklist_doses_queryset(clinic_ids), filters, "clinic_id").filter(
        due_date__lte=horizon
    )
    if filters.route:
        queryset = queryset.filter(route=filters.route)
    rows: list[WorklistDose] = []
    by_regimen: dict[int, WorklistDose] = {}
    home_hidden = 0
    ordered = queryset.order_by("due_date", "patient__family_name", "patient__given_name", "phase_index", "sequence")
    for dose in ordered:
        today = local_date(now, dose.patient.timezone)
        if dose.due_date > today or (filters.overdue and dose.due_date == today):
            continue
        if is_home_dose(dose) and not filters.home:
            home_hidden += 1
            continue
        first = by_regimen.get(dose.regimen_id)
        if first is not None:
            # One row per regimen: its earliest dose is the one to give (a later slot cannot be given
            # before it, regimens/services/doses.py); recording it re-plans the others.
            first.more_due += 1
            continue
        row = by_regimen[dose.regimen_id] = WorklistDose(dose=dose, today=today)
        rows.append(row)
    warnings = doses_pending_warnings([row.dose for row in rows], now)
    for row in rows:
        row.warnings = warnings.get(row.dose.pk, [])
    rechecks = [
        WorklistRecheck(recheck=recheck, today=local_date(now, recheck.patient.timezone))
        for recheck in _filtered(
            LabRecheck.objects.filter(
                patient__clinic_id__in=clinic_ids,
                status__in=[RecheckStatus.DUE, RecheckStatus.OVERDUE],
                regimen__status=RegimenStatus.ACTIVE,
                window_start__lte=horizon,
            ),
            filters,
            "patient__clinic_id",
        )
        .select_related("patient")
        .order_by("window_end", "patient__family_name", "id")
    ]
    rechecks = [row for row in rechecks if row.recheck.window_start <= row.today]
    clinics = [filters.clinic] if filters.clinic is not None else clinic_ids
    alerts: list[tuple[str, str, int]] = events.answer("alerts.needing_action", [], clinic_ids=clinics)
    return Worklist(doses=rows, rechecks=rechecks, alerts=alerts, home_hidden=home_hidden)


@dataclass
class CalendarDay:
    day: date
    doses: int = 0
    rechecks: int = 0
    # The clinics shut that day: (clinic name, why: a ClosedDate's note, or '' for a day it never opens).
    closed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.doses or self.rechecks)


def calendar_days(*, clinics: list[Clinic], start: date, end: date, home: bool = False) -> list[CalendarDay]:
    """Each day from `start` to `end` (inclusive) in the clinics `clinics`: the planned doses and the lab
    rechecks due that day, and which clinics are closed (not an open weekday, or a ClosedDate). Home doses
    are left out unless `home`. Three queries whatever the range."""
    ids = [c.pk for c in clinics]
    doses = ScheduledDose.objects.filter(clinic_id__in=ids, status=DoseStatus.PLANNED, due_date__range=(start, end))
    if not home:
        doses = doses.exclude(home_dose_q())
    by_day: dict[date, CalendarDay] = {}
    day = start
    while day <= end:
        by_day[day] = CalendarDay(day=day)
        day += timedelta(days=1)
    for due, n in doses.values_list("due_date").annotate(n=Count("id")).order_by():
        by_day[due].doses = n
    rechecks = LabRecheck.objects.filter(
        patient__clinic_id__in=ids, status=RecheckStatus.DUE, due_date__range=(start, end)
    )
    for due, n in rechecks.values_list("due_date").annotate(n=Count("id")).order_by():
        by_day[due].rechecks = n
    closed: dict[tuple[date, int], str] = {}
    for clinic_id, on, note in ClosedDate.objects.filter(clinic_id__in=ids, date__range=(start, end)).values_list(
        "clinic_id", "date", "note"
    ):
        closed[(on, clinic_id)] = note
    for entry in by_day.values():
        for clinic in clinics:
            if (entry.day, clinic.pk) in closed:
                entry.closed.append((clinic.name, closed[(entry.day, clinic.pk)]))
            elif entry.day.weekday() not in (clinic.open_weekdays or []):
                entry.closed.append((clinic.name, ""))
    return list(by_day.values())


def calendar_doses(*, clinic_ids: list[int], start: date, end: date, home: bool = False) -> list[ScheduledDose]:
    """The planned doses due from `start` to `end` in the clinics, by day then patient name (the calendar's
    day list and its CSV export). One query."""
    doses = worklist_doses_queryset(clinic_ids).filter(due_date__range=(start, end))
    if not home:
        doses = doses.exclude(home_dose_q())
    return list(doses.order_by("due_date", "patient__family_name", "patient__given_name", "id"))


def calendar_rechecks(*, clinic_ids: list[int], start: date, end: date) -> list[LabRecheck]:
    """The lab rechecks due (not done) from `start` to `end` in the clinics. One query."""
    return list(
        LabRecheck.objects.filter(
            patient__clinic_id__in=clinic_ids, status=RecheckStatus.DUE, due_date__range=(start, end)
        )
        .select_related("patient", "patient__clinic")
        .order_by("due_date", "patient__family_name", "patient__given_name", "id")
    )


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
