"""The nurse's worklist (`/`) and the clinic calendar (`/calendar/`), with their CSV exports, and recording
a dose as given or not given in place (htmx replaces the dose's rows; without JavaScript the same forms
post and redirect).

Thin views: forms (regimens/forms.py) parse the input, selectors (regimens/selectors.py) read, and the
writes are the services the API calls (regimens/services/doses.py), with the same safety warnings to
acknowledge (tracker/errors.py) and the same clinic boundary (another clinic's dose is a 404). The patient
page's regimen section and the clinicians' actions are in regimens/pages.py.
"""

from __future__ import annotations

import zoneinfo
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone as djtz
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from patients.models import Clinic
from regimens import selectors, services
from regimens.forms import AppointmentTimeForm, CalendarForm, DoseGivenForm, DoseNotGivenForm, WorklistForm
from regimens.models import Route, ScheduledDose
from tracker.clock import local_date
from tracker.errors import ServiceError, WarningsNotAcknowledged
from tracker.exports import csv_response
from tracker.middleware import StaffClinic
from tracker.pages import staff_clinics, staff_page

LAST_LOT = "regimens.last_lot"  # session key: the lot and expiry last recorded in this session


def _clinics(request: HttpRequest) -> list[StaffClinic]:
    clinics = staff_clinics(request)
    if not clinics:
        raise PermissionDenied(_("Only clinic staff may see this page."))
    return clinics


def _chosen_clinic_ids(request: HttpRequest, clinic: int | None) -> list[int]:
    """The user's clinics, or the one `clinic` they asked for; another clinic is a 404 (as in the API)."""
    ids = [c.id for c in _clinics(request)]
    if clinic is None:
        return ids
    if clinic not in ids:
        raise Http404("No such clinic.")
    return [clinic]


def _query(**params: Any) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "", False)})


def _bad_filters(request: HttpRequest, form: Any, template: str) -> HttpResponse:
    return render(request, template, {"filter_form": form, "bad_filters": True}, status=400)


# --- Worklist ---------------------------------------------------------------------------------


def _worklist(request: HttpRequest) -> tuple[WorklistForm, selectors.Worklist | None, selectors.WorklistFilters]:
    form = WorklistForm(request.GET)
    if not form.is_valid():
        return form, None, selectors.WorklistFilters()
    filters = selectors.WorklistFilters(
        clinic=form.cleaned_data.get("clinic"),
        route=form.cleaned_data.get("route") or None,
        home=bool(form.cleaned_data.get("home")),
        overdue=bool(form.cleaned_data.get("overdue")),
    )
    ids = _chosen_clinic_ids(request, filters.clinic)
    return form, selectors.worklist(clinic_ids=ids, filters=filters), filters


@staff_page
@require_http_methods(["GET"])
def worklist(request: HttpRequest) -> HttpResponse:
    """Today's doses due and overdue, rechecks due and the open alerts of the user's clinics."""
    form, work, filters = _worklist(request)
    if work is None:
        return _bad_filters(request, form, "regimens/worklist.html")
    clinics = _clinics(request)
    overdue = "true" if filters.overdue else None
    context = {
        "filter_form": form,
        "work": work,
        "filters": filters,
        "clinics": clinics,
        "routes": Route.choices,
        "query": _query(clinic=filters.clinic, route=filters.route, home=int(filters.home), overdue=overdue),
        "all_query": _query(clinic=filters.clinic, route=filters.route, home=int(filters.home)),
        "home_query": _query(clinic=filters.clinic, route=filters.route, home=int(not filters.home), overdue=overdue),
    }
    return render(request, "regimens/worklist.html", context)


@staff_page
@require_http_methods(["GET"])
def worklist_export(request: HttpRequest) -> HttpResponse:
    """The worklist's doses as CSV, with the same filters as the page."""
    form, work, _filters = _worklist(request)
    if work is None:
        return _bad_filters(request, form, "regimens/worklist.html")
    header = [
        "due_date",
        "days_overdue",
        "clinic",
        "family_name",
        "given_name",
        "mrn",
        "age",
        "protocol",
        "phase",
        "sequence",
        "drug",
        "dose_mcg",
        "route",
        "more_due",
        "warnings",
    ]
    rows = (
        [
            row.dose.due_date,
            row.days_overdue,
            row.dose.patient.clinic.name,
            row.dose.patient.family_name,
            row.dose.patient.given_name,
            row.dose.patient.mrn,
            row.age,
            row.dose.regimen.protocol.name,
            row.dose.phase,
            row.dose.sequence,
            row.dose.drug,
            row.dose.dose_mcg,
            row.dose.route,
            row.more_due,
            "; ".join(f"{w.rule} {w.code}" for w in row.warnings),
        ]
        for row in work.doses
    )
    return csv_response(f"worklist-{djtz.localdate().isoformat()}.csv", header, rows)


# --- Recording a dose in place ------------------------------------------------------------------


def _doses(request: HttpRequest) -> QuerySet[ScheduledDose]:
    ids = [c.id for c in _clinics(request)]
    return ScheduledDose.objects.filter(patient__clinic_id__in=ids).select_related(
        "patient", "patient__clinic", "regimen__protocol", "administered_by"
    )


def _row(dose: ScheduledDose, warnings: list[Any] | None = None) -> selectors.WorklistDose:
    today = local_date(djtz.now(), dose.patient.timezone)
    return selectors.WorklistDose(dose=dose, today=today, warnings=warnings or [])


def _respond(
    request: HttpRequest, dose: ScheduledDose, *, mode: str = "", form: Any = None, status: int = 200, done: str = ""
) -> HttpResponse:
    """The dose's rows (htmx swaps them into the worklist), or the page of the form without JavaScript."""
    warnings = getattr(form, "warnings", None)
    row = _row(dose, selectors.dose_pending_warnings(dose) if warnings is None else warnings)
    context = {"row": row, "mode": mode, "form": form, "done": done, "open": bool(mode)}
    if request.htmx or not mode:  # type: ignore[attr-defined]
        return render(request, "regimens/_dose_rows.html", context, status=status)
    return render(request, "regimens/dose_record.html", context, status=status)


def _clinic_zone(dose: ScheduledDose) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(dose.patient.clinic.timezone)


def _given_form(
    request: HttpRequest, dose: ScheduledDose, data: Any = None, warnings: list[Any] | None = None
) -> DoseGivenForm:
    last = request.session.get(LAST_LOT, {})
    initial = {
        "administered_at": djtz.localtime(djtz.now(), _clinic_zone(dose)).replace(second=0, microsecond=0, tzinfo=None),
        "route": dose.route,
        "lot_number": last.get("lot_number", ""),
        "expiry_date": last.get("expiry_date") or None,
    }
    if warnings is None:
        warnings = selectors.dose_pending_warnings(dose)
    return DoseGivenForm(data, initial=initial, warnings=warnings, prefix=f"dose{dose.pk}")


def _service_error(form: Any, error: ServiceError, fields: dict[str, str]) -> None:
    """Put a service's error on the form field it names (or on the form when it names none of them)."""
    name = fields.get(error.field, error.field)
    form.add_error(name if name in form.fields else None, error.message)


@staff_page
@require_http_methods(["GET", "POST"])
def dose_given(request: HttpRequest, pk: int) -> HttpResponse:
    """Record the dose as given: the time (now in the clinic's zone), lot, expiry, site and route; each
    warning acknowledged (a hard stop with a reason) as POST /api/doses/{id}/administer/ requires."""
    dose = get_object_or_404(_doses(request), pk=pk)
    with djtz.override(_clinic_zone(dose)):
        if request.method == "GET":
            return _respond(request, dose, mode="given", form=_given_form(request, dose))
        form = _given_form(request, dose, request.POST)
        if not form.is_valid():
            return _respond(request, dose, mode="given", form=form, status=400)
        data = form.cleaned_data
        try:
            recorded = services.dose_record_administration(
                dose=dose,
                administered_at=data["administered_at"],
                lot_number=data["lot_number"].strip(),
                expiry_date=data["expiry_date"],
                site=data["site"],
                route=data["route"],
                acknowledge=data.get("acknowledge") or [],
                override_reason=data.get("override_reason") or "",
                user=request.user,
            )
        except WarningsNotAcknowledged as error:
            # New warnings since the form was shown (or a different route or time): show them to acknowledge.
            form = _given_form(request, dose, request.POST, warnings=error.warnings)
            form.is_valid()
            rules = ", ".join(w.rule or w.code for w in error.warnings)
            form.add_error(
                "acknowledge", _("Tick each warning to confirm you have read it (%(rules)s).") % {"rules": rules}
            )
            return _respond(request, dose, mode="given", form=form, status=400)
        except ServiceError as error:
            _service_error(form, error, {})
            return _respond(request, dose, mode="given", form=form, status=error.status_code)
    request.session[LAST_LOT] = {
        "lot_number": recorded.lot_number,
        "expiry_date": recorded.expiry_date.isoformat() if recorded.expiry_date else "",
    }
    return _recorded(request, recorded, _("%(name)s: dose recorded as given.") % {"name": _name(recorded)})


@staff_page
@require_http_methods(["GET", "POST"])
def dose_not_given(request: HttpRequest, pk: int) -> HttpResponse:
    """Record the dose as not given with a coded reason and a note (POST /api/doses/{id}/not-given/)."""
    dose = get_object_or_404(_doses(request), pk=pk)
    prefix = f"dose{dose.pk}"
    if request.method == "GET":
        return _respond(request, dose, mode="not_given", form=DoseNotGivenForm(prefix=prefix))
    form = DoseNotGivenForm(request.POST, prefix=prefix)
    if not form.is_valid():
        return _respond(request, dose, mode="not_given", form=form, status=400)
    try:
        recorded = services.dose_record_not_given(dose=dose, reason=form.reason_text(), user=request.user)
    except ServiceError as error:
        _service_error(form, error, {"on": "reason"})
        return _respond(request, dose, mode="not_given", form=form, status=error.status_code)
    return _recorded(request, recorded, _("%(name)s: dose recorded as not given.") % {"name": _name(recorded)})


@staff_page
@require_http_methods(["GET"])
def dose_row(request: HttpRequest, pk: int) -> HttpResponse:
    """The dose's rows as the worklist shows them (htmx: closing a form)."""
    dose = get_object_or_404(_doses(request), pk=pk)
    if not request.htmx:  # type: ignore[attr-defined]
        return redirect("worklist")
    return _respond(request, dose)


def _name(dose: ScheduledDose) -> str:
    return f"{dose.patient.given_name} {dose.patient.family_name}"


def _recorded(request: HttpRequest, dose: ScheduledDose, message: str) -> HttpResponse:
    fresh = _doses(request).get(pk=dose.pk)
    if request.htmx:  # type: ignore[attr-defined]
        context = {"row": _row(fresh), "mode": "", "done": message}
        return render(request, "regimens/_dose_rows.html", context)
    messages.success(request, message)
    return redirect("worklist")


@staff_page
@require_http_methods(["POST"])
def dose_appointment_time(request: HttpRequest, pk: int) -> HttpResponse:
    """Give a planned clinic dose its appointment time from the calendar's day view, through the service
    POST /api/doses/{id}/appointment-time/ calls (within the clinic's session; empty: the session's start).
    htmx swaps the dose's time cell (the error in it, 400 or 409); without JavaScript, back to the day with
    the outcome as a message. Another clinic's dose is a 404."""
    dose = get_object_or_404(_doses(request), pk=pk)
    form = AppointmentTimeForm(request.POST, prefix=f"dose{dose.pk}")
    status = 400
    if form.is_valid():
        try:
            dose = services.dose_set_appointment_time(
                dose=dose, appointment_time=form.cleaned_data["appointment_time"], user=request.user
            )
            status = 200
        except ServiceError as error:
            _service_error(form, error, {})
            status = error.status_code
    done = ""
    if status == 200:
        when = dose.appointment_time or dose.patient.clinic.session_start
        done = (
            _("%(name)s: appointment at %(time)s.") % {"name": _name(dose), "time": when.strftime("%H:%M")}
            if when
            else _("%(name)s: no appointment time.") % {"name": _name(dose)}
        )
    if request.htmx:  # type: ignore[attr-defined]
        context = {"dose": dose, "form": form if status != 200 else None, "done": done}
        return render(request, "regimens/_appointment_time.html", context, status=status)
    if status == 200:
        messages.success(request, done)
    else:
        messages.error(request, _("%(name)s: %(problems)s") % {"name": _name(dose), "problems": _problems(form)})
    return redirect(f"{reverse('calendar')}?{_query(view='day', date=dose.due_date.isoformat())}")


def _problems(form: Any) -> str:
    """The form's errors as one line, each after the label of the field it is about."""
    lines = []
    for name, errors in form.errors.items():
        text = " ".join(errors)
        lines.append(f"{form.fields[name].label}: {text}" if name in form.fields else text)
    return "; ".join(lines)


# --- Calendar ---------------------------------------------------------------------------------


def _month_start(day: date, months: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _calendar_range(view: str, on: date) -> tuple[date, date, date, date]:
    """(first day shown, last day shown, previous period's date, next period's date)."""
    if view == "day":
        return on, on, on - timedelta(days=1), on + timedelta(days=1)
    if view == "month":
        first = _month_start(on)
        last = _month_start(on, 1) - timedelta(days=1)
        return (
            first - timedelta(days=first.weekday()),
            last + timedelta(days=6 - last.weekday()),
            _month_start(on, -1),
            _month_start(on, 1),
        )
    monday = on - timedelta(days=on.weekday())
    return monday, monday + timedelta(days=6), monday - timedelta(days=7), monday + timedelta(days=7)


def _calendar(request: HttpRequest) -> dict[str, Any] | CalendarForm:
    form = CalendarForm(request.GET)
    if not form.is_valid():
        return form
    today = djtz.localdate()
    view, on, clinic, home = form.cleaned(today)
    ids = _chosen_clinic_ids(request, clinic)
    start, end, previous, following = _calendar_range(view, on)
    return {
        "view": view,
        "on": on,
        "today": today,
        "start": start,
        "end": end,
        "clinic_ids": ids,
        "clinic": clinic,
        "home": home,
        "previous": _query(view=view, date=previous.isoformat(), clinic=clinic, home=int(home)),
        "next": _query(view=view, date=following.isoformat(), clinic=clinic, home=int(home)),
        "this": _query(view=view, date=on.isoformat(), clinic=clinic, home=int(home)),
        "today_query": _query(view=view, clinic=clinic, home=int(home)),
    }


@staff_page
@require_http_methods(["GET"])
def calendar(request: HttpRequest) -> HttpResponse:
    """Planned doses and rechecks per day (?view=week|month|day&date=YYYY-MM-DD&clinic=ID), closed days shown."""
    context = _calendar(request)
    if isinstance(context, CalendarForm):
        return _bad_filters(request, context, "regimens/calendar.html")
    ids: list[int] = context["clinic_ids"]
    clinics = list(Clinic.objects.filter(pk__in=ids).order_by("name"))
    context["clinics"] = _clinics(request)
    if context["view"] == "day":
        day: date = context["on"]
        doses = selectors.calendar_doses(clinic_ids=ids, start=day, end=day, home=context["home"])
        # RULES §10 V-12: each dose with the warnings giving it now would raise (S-2 before an IM dose), as on
        # the worklist: one read for the day's doses however many.
        warnings = selectors.doses_pending_warnings(doses)
        context["doses"] = [{"dose": dose, "warnings": warnings.get(dose.pk, [])} for dose in doses]
        context["rechecks"] = selectors.calendar_rechecks(clinic_ids=ids, start=day, end=day)
        context["days"] = selectors.calendar_days(clinics=clinics, start=day, end=day, home=context["home"])
    else:
        days = selectors.calendar_days(
            clinics=clinics, start=context["start"], end=context["end"], home=context["home"]
        )
        context["weeks"] = [days[i : i + 7] for i in range(0, len(days), 7)]
        context["totals"] = {"doses": sum(d.doses for d in days), "rechecks": sum(d.rechecks for d in days)}
    context["title"] = _calendar_title(context["view"], context["on"], context["start"], context["end"])
    return render(request, "regimens/calendar.html", context)


def _calendar_title(view: str, on: date, start: date, end: date) -> str:
    if view == "month":
        return date_format(on, "F Y")
    if view == "day":
        return date_format(on, "l j F Y")
    return _("Week: %(start)s to %(end)s") % {"start": date_format(start, "j F"), "end": date_format(end, "j F Y")}


@staff_page
@require_http_methods(["GET"])
def calendar_export(request: HttpRequest) -> HttpResponse:
    """The planned doses and due rechecks of the calendar's range as CSV, one row each."""
    context = _calendar(request)
    if isinstance(context, CalendarForm):
        return _bad_filters(request, context, "regimens/calendar.html")
    start: date = context["start"]
    end: date = context["end"]
    ids: list[int] = context["clinic_ids"]
    rows: list[list[Any]] = [
        [
            dose.due_date,
            "dose",
            dose.patient.clinic.name,
            dose.patient.family_name,
            dose.patient.given_name,
            dose.patient.mrn,
            f"{dose.regimen.protocol.name}; {dose.phase} {dose.sequence}; {dose.drug} {dose.route}",
        ]
        for dose in selectors.calendar_doses(clinic_ids=ids, start=start, end=end, home=context["home"])
    ]
    rows.extend(
        [
            r.due_date,
            "recheck",
            r.patient.clinic.name,
            r.patient.family_name,
            r.patient.given_name,
            r.patient.mrn,
            f"{r.rule} {r.description}",
        ]
        for r in selectors.calendar_rechecks(clinic_ids=ids, start=start, end=end)
    )
    rows.sort(key=lambda r: (r[0], r[1], r[3], r[4]))
    header = ["date", "kind", "clinic", "family_name", "given_name", "mrn", "what"]
    return csv_response(f"calendar-{start.isoformat()}-{end.isoformat()}.csv", header, rows)
