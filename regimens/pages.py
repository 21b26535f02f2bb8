"""The regimens section of the patient page (timeline, rechecks, clinician actions) and the pages of
those actions: start a regimen (with a preview), stop it, end its loading phase, record a review, confirm
the gate of the next phase, shorten the interval of the phase in progress (RULES R-UK-4), mark a dose record
entered in error, and close a lab recheck by hand.

Each action page is a small form that calls the same service as the API (regimens/services), with the
same roles: prescribers start, stop, end phases, review, confirm gates, shorten intervals and close rechecks
(403 for a nurse, as `require_role` in the API); entering a dose in error is the clinician's, or the recording
nurse's within 7 days (the service decides). Bad input shows the service's field and reason; safety warnings are
listed to acknowledge.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.translation import gettext as gettext_now
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied

from patients.models import Patient
from regimens import schedule, services
from regimens.models import (
    DoseStatus,
    LabRecheck,
    Protocol,
    RecheckStatus,
    Regimen,
    RegimenStatus,
    ReplanJob,
    ReviewOutcome,
    ScheduledDose,
)
from regimens.selectors import dose_pending_warnings, next_planned_dose, protocols_for_clinics
from tracker import events
from tracker.clock import local_date, patient_today
from tracker.display import DAY_MONTH, day, formatted, moment
from tracker.errors import SafetyWarning, ServiceError, WarningsNotAcknowledged
from tracker.forms import DateInput, NHSUKForm
from tracker.pages import CardEntry, PageSection, prescriber_here, staff_page
from tracker.permissions import staff_clinic_ids

# The timeline shows every recorded dose and the next planned ones (a lifelong oral regimen plans months
# of daily doses ahead; the calendar and the API list them all).
PLANNED_SHOWN = 8
CARD_DOSES = 6


# --- The section of the patient page ------------------------------------------------------------------


def _phase_names(regimen: Regimen) -> list[dict[str, Any]]:
    return list((regimen.protocol_snapshot or {}).get("phases") or [])


def regimen_rows(patient: Patient) -> list[Regimen]:
    """The patient's regimens with everything the timeline shows, in a fixed number of queries (the staff the
    rows name are the patient page's to attach: `page_regimens`)."""
    return list(
        Regimen.objects.filter(patient=patient)
        .select_related("protocol")
        .prefetch_related(
            Prefetch("doses", queryset=ScheduledDose.objects.order_by("due_date", "id")),
            Prefetch("lab_rechecks", queryset=LabRecheck.objects.order_by("due_date")),
            "decisions",
        )
        .order_by("-start_date", "-id")
    )


def page_regimens(record: Any) -> list[Regimen]:
    """`regimen_rows` of the patient page's patient, read once for the page (patients.pages.PatientRecord):
    the regimens section shows them and monitoring's sections find the next dose and T0 among them. The staff
    they name (who started, stopped, gave, closed, decided) come with the page's one read of them
    (`record.name_users`)."""

    def load() -> list[Regimen]:
        regimens = regimen_rows(record.patient)
        record.name_users(regimens, "created_by", "stopped_by")
        for regimen in regimens:
            regimen.patient = record.patient  # the same row: the rules read its time zone
            doses = regimen.doses.all()
            for dose in doses:
                dose.patient = record.patient
            record.name_users(doses, "administered_by", "error_recorded_by")
            record.name_users(regimen.lab_rechecks.all(), "closed_by")
            record.name_users(regimen.decisions.all(), "decided_by")
        return regimens

    rows: list[Regimen] = record.shared("regimens.rows", load)
    return rows


# The tag colour of each status in the timeline's tables (NHS.UK tags); any other status is blue.
DOSE_TAGS: dict[str, str] = {
    DoseStatus.GIVEN: "green",
    DoseStatus.NOT_GIVEN: "orange",
    DoseStatus.ENTERED_IN_ERROR: "red",
    DoseStatus.CANCELLED: "grey",
}
RECHECK_TAGS: dict[str, str] = {
    RecheckStatus.DONE: "green",
    RecheckStatus.OVERDUE: "red",
    RecheckStatus.CANCELLED: "grey",
}


def _username(user: Any) -> str:
    return "" if user is None else str(user.get_username())


def _joined(*parts: str) -> str:
    return " · ".join(part for part in parts if part)


class DoseRow:
    """A row of the timeline's dose table. Its texts are made here, not by the template's branches and date filters,
    which made the dose table the slowest part of the patient page (docs/scaling.md). They are read when the
    section renders, after the page has attached the staff the row names (`PatientRecord.attach_users`)."""

    def __init__(self, dose: ScheduledDose, can_enter_in_error: bool) -> None:
        self.dose = dose
        self.can_enter_in_error = can_enter_in_error
        self.warnings: list[Any] = []  # the planned ones': patient_section reads them for the whole page at once

    @cached_property
    def due(self) -> str:
        return day(self.dose.due_date)

    @property
    def in_error(self) -> bool:
        return self.dose.status == DoseStatus.ENTERED_IN_ERROR

    @property
    def tag(self) -> str:
        return DOSE_TAGS.get(self.dose.status, "blue")

    @property
    def amount(self) -> str:
        """Dose, route and place: "1000 mcg intramuscular (at home)"."""
        dose = self.dose
        text = f"{dose.dose_mcg} mcg {str(dose.get_route_display()).lower()}"
        return f"{text} ({gettext_now('at home')})" if dose.self_administered else text

    @property
    def who(self) -> str:
        """Who recorded the dose given, not given or entered in error, when, and what they noted."""
        dose = self.dose
        if dose.status == DoseStatus.GIVEN:
            parts = [moment(dose.administered_at), _username(dose.administered_by)]
            if dose.lot_number:
                parts.append(f"{gettext_now('lot')} {dose.lot_number}")
            parts.append(dose.site)
            return _joined(*parts)
        if dose.status == DoseStatus.NOT_GIVEN:
            return f"{_joined(day(dose.not_given_on), _username(dose.administered_by))}: {dose.not_given_reason}"
        if dose.status == DoseStatus.ENTERED_IN_ERROR:
            return f"{_joined(moment(dose.error_recorded_at), _username(dose.error_recorded_by))}: {dose.error_reason}"
        return ""


class RecheckRow:
    """A row of the timeline's recheck table, its texts made here as DoseRow's are."""

    def __init__(self, recheck: LabRecheck, can_close: bool) -> None:
        self.recheck = recheck
        self.can_close = can_close

    @cached_property
    def due(self) -> str:
        return day(self.recheck.due_date)

    @property
    def window(self) -> str:
        return f"{formatted(self.recheck.window_start, DAY_MONTH)} – {day(self.recheck.window_end)}"

    @property
    def tests(self) -> str:
        recheck = self.recheck
        return recheck.description or ", ".join(recheck.analytes)

    @property
    def tag(self) -> str:
        return RECHECK_TAGS.get(self.recheck.status, "blue")

    @property
    def closed(self) -> str:
        """The note and who closed the recheck by hand, if someone did: " done at the GP · nurse1"."""
        recheck = self.recheck
        note = f" {recheck.close_note}" if recheck.close_note else ""
        user = _username(recheck.closed_by)
        return f"{note} · {user}" if user else note


def _timeline(regimen: Regimen, user_id: int | None, prescriber: bool) -> dict[str, Any]:
    doses = list(regimen.doses.all())
    planned = [d for d in doses if d.status == DoseStatus.PLANNED]
    shown = [d for d in doses if d.status != DoseStatus.PLANNED] + planned[:PLANNED_SHOWN]
    shown.sort(key=lambda d: (d.due_date, d.id))
    phases = _phase_names(regimen)
    current = phases[min(regimen.current_phase, len(phases) - 1)] if phases else {}
    open_ended = current.get("end_condition") in schedule.OPEN_ENDED
    active = regimen.status == RegimenStatus.ACTIVE
    # How often the phase in progress comes (a shortened interval shows here) and whether it can be shortened
    # (RULES R-UK-4), from the regimen's own protocol copy and options, as read with the row (no query).
    spacing, interval = "", None
    if active and phases:
        try:
            spacing, interval = services.phase_in_progress(regimen)
        except ServiceError:  # options a later change of the override bounds refuses: the card still shows
            pass
    can_shorten = prescriber and interval is not None
    return {
        "regimen": regimen,
        "phase_name": current.get("name", ""),
        "phase_spacing": spacing,
        # RULES §1.3 rule 4: the phase's prompt ("urgent specialist advice ...") while it is in progress.
        "phase_prompt": current.get("prompt", "") if active else "",
        "phase_names": {i: p.get("name", p.get("key", "")) for i, p in enumerate(phases)},
        "doses": [
            DoseRow(
                d,
                can_enter_in_error=d.status in (DoseStatus.GIVEN, DoseStatus.NOT_GIVEN)
                and (prescriber or (user_id is not None and d.administered_by_id == user_id)),
            )
            for d in shown
        ],
        "planned_hidden": max(0, len(planned) - PLANNED_SHOWN),
        # RULES §10 V-10: a clinician may close a recheck not yet done by hand (completed elsewhere, or cancelled).
        "rechecks": [
            RecheckRow(c, can_close=prescriber and c.status in (RecheckStatus.DUE, RecheckStatus.OVERDUE))
            for c in regimen.lab_rechecks.all()
        ],
        "decisions": list(regimen.decisions.all()),
        "can_decide": active and prescriber,
        "open_ended": active and open_ended,
        "can_confirm_gate": active and prescriber and regimen.awaiting_gate,
        "can_shorten": can_shorten,
    }


def _with_warnings(timelines: list[dict[str, Any]], record: Any, regimens: list[Regimen]) -> None:
    """RULES §10 V-12: each planned dose shown gets the point-of-care warnings giving it now by its planned route
    would raise (S-2 low platelets before an IM dose, S-10, S-11, S-12), as on the worklist and in the page's
    warnings section: the same rules, answered from the rows the page has read already (monitoring provides them
    with the rules; without monitoring there are no warnings and nothing is read)."""
    rows = [row for t in timelines for row in t["doses"] if row.dose.status == DoseStatus.PLANNED]
    data = events.answer("patient.page_administration_data", None, record=record, regimens=regimens)
    for row in rows:
        row.warnings = dose_pending_warnings(row.dose, data)


def patient_section(*, patient: Patient, request: HttpRequest, record: Any) -> list[PageSection]:
    prescriber = prescriber_here(request, patient.clinic_id)
    regimens = page_regimens(record)
    user_id = getattr(request.user, "pk", None)
    timelines = [_timeline(r, user_id, prescriber) for r in regimens]
    _with_warnings(timelines, record, regimens)
    return [
        PageSection(
            order=10,
            anchor="regimens",
            title=_("Regimens and rechecks"),
            template="regimens/sections/regimens.html",
            context={
                "timelines": timelines,
                "can_start": prescriber and not any(r.status == RegimenStatus.ACTIVE for r in regimens),
            },
        )
    ]


def card_entries(*, patient: Patient) -> list[CardEntry]:
    """The next clinic appointments (doses given at the clinic; home doses need none) and blood tests."""
    today = patient_today(patient)
    doses = (
        ScheduledDose.objects.filter(
            patient=patient, status=DoseStatus.PLANNED, self_administered=False, due_date__gte=today
        )
        .order_by("due_date")
        .values_list("due_date", flat=True)[:CARD_DOSES]
    )
    rechecks = LabRecheck.objects.filter(
        patient=patient, status__in=[RecheckStatus.DUE, RecheckStatus.OVERDUE], window_end__gte=today
    ).values_list("window_start", "window_end")
    entries = [CardEntry(on=day, kind="injection") for day in dict.fromkeys(doses)]
    entries += [CardEntry(on=max(start, today), kind="blood_test", until=end) for start, end in set(rechecks)]
    return entries


# --- The action pages ---------------------------------------------------------------------------------


def _regimens_for(request: HttpRequest) -> QuerySet[Regimen]:
    return Regimen.objects.filter(patient__clinic_id__in=staff_clinic_ids(request.user)).select_related(
        "patient", "protocol"
    )


def _require_prescriber(request: HttpRequest, patient: Patient, doing: str) -> None:
    if not prescriber_here(request, patient.clinic_id):
        raise PermissionDenied(gettext_now("Only a clinician or clinic admin of this clinic may %s.") % doing)


def _patient_url(patient: Patient, anchor: str = "regimens") -> str:
    return f"{reverse('patient', args=[patient.pk])}#{anchor}"


def _posted(request: HttpRequest) -> Any:
    """The form data of a POST (even an empty one: it must be checked), None for a GET."""
    return request.POST if request.method == "POST" else None


class WarningsForm(NHSUKForm):
    """A form whose service may answer with safety warnings to acknowledge (RULES §4): they are listed as
    tick boxes, and a hard stop also needs a reason (only where the service takes one: `override`)."""

    override = True

    acknowledge = forms.MultipleChoiceField(
        label=_("I have read these warnings"), required=False, widget=forms.CheckboxSelectMultiple
    )
    override_reason = forms.CharField(
        label=_("Reason to go ahead (needed for a hard stop)"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: Any, warnings: list[SafetyWarning] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        codes = [(w.code, f"{w.rule + ': ' if w.rule else ''}{w.message}") for w in warnings or []]
        previous = [(c, c) for c in (self.data.getlist("acknowledge") if hasattr(self.data, "getlist") else [])]
        self.acknowledge_field.choices = list(dict(previous + codes).items())
        self.warnings = warnings or []
        if not self.override:
            del self.fields["override_reason"]
        if not codes:
            self.fields["acknowledge"].widget = forms.MultipleHiddenInput()
            if self.override:
                self.fields["override_reason"].widget = forms.HiddenInput()

    @property
    def acknowledge_field(self) -> forms.MultipleChoiceField:
        field = self.fields["acknowledge"]
        assert isinstance(field, forms.MultipleChoiceField)  # noqa: S101 (declared above)
        return field


def _run(form: WarningsForm, action: Callable[[], Any]) -> Any:
    """Call the service; put its refusal on the form (the field it names, or the whole form)."""
    try:
        return action()
    except WarningsNotAcknowledged as exc:
        form.warnings = exc.warnings
        form.fields["acknowledge"].widget = forms.CheckboxSelectMultiple(attrs={"class": "nhsuk-checkboxes__input"})
        form.acknowledge_field.choices = [
            (w.code, f"{w.rule + ': ' if w.rule else ''}{w.message}") for w in exc.warnings
        ]
        if form.override:
            form.fields["override_reason"].widget = forms.Textarea(attrs={"rows": 2, "class": "nhsuk-textarea"})
        form.add_error("acknowledge", exc.message)
    except ServiceError as exc:
        field = exc.field if exc.field in form.fields else None
        # A hard stop acknowledged without a (long enough) reason, or an oral dose below 1000 mcg a day for a cause
        # that is or may be malabsorption (RULES R-ORAL-1, §10 V-6: refused without a reason): ask for the reason.
        if "override_reason" in form.fields and (field == "override_reason" or exc.field.endswith(".dose_mcg")):
            form.fields["override_reason"].widget = forms.Textarea(attrs={"rows": 2, "class": "nhsuk-textarea"})
            field = "override_reason"  # the page has no dose field: the error goes with the box that answers it
        form.add_error(field, exc.message if field else f"{exc.field}: {exc.message}")
    except ApiPermissionDenied as exc:
        raise PermissionDenied(str(exc.detail)) from exc
    return None


class StartForm(WarningsForm):
    protocol = forms.ModelChoiceField(label=_("Protocol"), queryset=Protocol.objects.none(), empty_label=None)
    start_date = forms.DateField(label=_("Start date"), widget=DateInput())
    field_order = ["protocol", "start_date", "acknowledge", "override_reason"]

    def __init__(self, *args: Any, clinic_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The shared protocols and the patient's clinic's own copies (issue 12): another clinic's copy is not
        # a choice, so posting its id is the same "not one of the choices" as an id that does not exist.
        field = self.fields["protocol"]
        assert isinstance(field, forms.ModelChoiceField)  # noqa: S101 (declared above)
        field.queryset = protocols_for_clinics([clinic_id]).filter(active=True).order_by("name")


@staff_page
def regimen_start(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = Patient.objects.filter(clinic_id__in=staff_clinic_ids(request.user), pk=patient_id).first()
    if patient is None:
        raise Http404(_("No such patient."))
    _require_prescriber(request, patient, gettext_now("start a regimen"))
    today = patient_today(patient)
    form = StartForm(_posted(request), initial={"start_date": today}, clinic_id=patient.clinic_id)
    preview = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if request.POST.get("action") == "preview":
            preview = _run(
                form,
                lambda: services.schedule_preview(
                    protocol=data["protocol"],
                    start_date=data["start_date"],
                    clinic=patient.clinic,
                    timezone=patient.timezone,
                    today=today,
                ),
            )
        else:
            regimen = _run(
                form,
                lambda: services.regimen_start(
                    patient=patient,
                    protocol=data["protocol"],
                    start_date=data["start_date"],
                    acknowledge=data["acknowledge"],
                    override_reason=data["override_reason"],
                    user=request.user,
                ),
            )
            if regimen is not None:
                done = gettext_now("Regimen %(name)s started; its doses are planned.")
                messages.success(request, done % {"name": regimen.protocol.name})
                return redirect(_patient_url(patient))
    return render(
        request,
        "regimens/start.html",
        {
            "patient": patient,
            "form": form,
            "preview": preview,
            "preview_doses": preview.doses[:12] if preview else (),
            "preview_more": max(0, len(preview.doses) - 12) if preview else 0,
        },
    )


class StopForm(WarningsForm):
    override = False
    reason = forms.CharField(label=_("Why is the regimen stopped?"), widget=forms.Textarea(attrs={"rows": 3}))
    field_order = ["reason", "acknowledge"]


class EndPhaseForm(WarningsForm):
    # Ending the last phase can meet the S-5 hard stop (RULES §10 V-13): it needs override_reason.
    override = True
    ended_on = forms.DateField(
        label=_("Ended on"), required=False, widget=DateInput(), help_text=_("Leave empty for today.")
    )
    reason = forms.CharField(
        label=_("Reason"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Needed when the neurological loading phase ends before six doses."),
    )
    note = forms.CharField(label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    field_order = ["ended_on", "reason", "note", "acknowledge", "override_reason"]


class ReviewForm(WarningsForm):
    override = False
    outcome = forms.ChoiceField(label=_("Outcome"), choices=ReviewOutcome.choices, widget=forms.RadioSelect)
    note = forms.CharField(label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    field_order = ["outcome", "note"]


def _decision_page(
    request: HttpRequest,
    regimen_id: int,
    form_class: type[WarningsForm],
    call: Callable[[Regimen, dict[str, Any]], Any],
    doing: str,
    title: Any,
    done: Any,
    summary: Callable[[Regimen], list[tuple[Any, Any]]] | None = None,
) -> HttpResponse:
    """`summary`, when given, lists what the decision is about (label, value) above the form."""
    regimen = _regimens_for(request).filter(pk=regimen_id).first()
    if regimen is None:
        raise Http404(_("No such regimen."))
    context = {"regimen": regimen, "summary": summary(regimen) if summary else []}
    action = (form_class, call, doing, title, done)
    return _action_page(request, regimen, regimen.patient, action, "regimens/decision.html", context)


def _action_page(
    request: HttpRequest,
    subject: Any,
    patient: Patient,
    action: tuple[type[WarningsForm], Callable[[Any, dict[str, Any]], Any], str, Any, Any],
    template: str,
    context: dict[str, Any],
) -> HttpResponse:
    """A prescriber's action on `subject` (a regimen, a recheck): its form, then the service call `action` names
    (form class, call, what it does, title, message when done), then back to the patient page."""
    form_class, call, doing, title, done = action
    _require_prescriber(request, patient, doing)
    form = form_class(_posted(request))
    if request.method == "POST" and form.is_valid():
        if _run(form, lambda: call(subject, form.cleaned_data) or True) is not None:
            messages.success(request, str(done))
            return redirect(_patient_url(patient))
    page = {"patient": patient, "form": form, "title": title, "form_name": form_class.__name__, **context}
    return render(request, template, page)


@staff_page
def regimen_stop(request: HttpRequest, regimen_id: int) -> HttpResponse:
    return _decision_page(
        request,
        regimen_id,
        StopForm,
        lambda r, d: services.regimen_stop(
            regimen=r, reason=d["reason"], acknowledge=d["acknowledge"], user=request.user
        ),
        gettext_now("stop a regimen"),
        _("Stop the regimen"),
        _("Regimen stopped: its planned doses and rechecks are cancelled."),
    )


@staff_page
def regimen_end_phase(request: HttpRequest, regimen_id: int) -> HttpResponse:
    return _decision_page(
        request,
        regimen_id,
        EndPhaseForm,
        lambda r, d: services.regimen_end_phase(
            regimen=r,
            ended_on=d["ended_on"],
            reason=d["reason"],
            note=d["note"],
            acknowledge=d["acknowledge"],
            override_reason=d["override_reason"],
            user=request.user,
        ),
        gettext_now("end a loading phase"),
        _("End the phase in progress"),
        _("Phase ended; the next phase is planned."),
    )


@staff_page
def regimen_review(request: HttpRequest, regimen_id: int) -> HttpResponse:
    return _decision_page(
        request,
        regimen_id,
        ReviewForm,
        lambda r, d: services.regimen_record_review(regimen=r, outcome=d["outcome"], note=d["note"], user=request.user),
        gettext_now("record a phase review"),
        _("Record a review"),
        _("Review recorded."),
    )


class ConfirmGateForm(WarningsForm):
    override = False
    confirmed_on = forms.DateField(
        label=_("Confirmed on"), required=False, widget=DateInput(), help_text=_("Leave empty for today.")
    )
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What was seen, for example: reticulocytes up on day 6, feeling better."),
    )
    field_order = ["confirmed_on", "note"]


def _gate_summary(regimen: Regimen) -> list[tuple[Any, Any]]:
    """The phase waiting for a clinician's confirmation and its condition (RULES R-US-1), from the regimen's
    plan as the service computes it; nothing when no phase is waiting (the service then refuses)."""
    waiting = services.regimen_plan(regimen).awaiting_gate
    phases = _phase_names(regimen)
    if waiting is None or waiting >= len(phases):
        return []
    phase = phases[waiting]
    return [(_("Next phase"), phase.get("name", phase.get("key", ""))), (_("Condition"), phase.get("start_gate", ""))]


@staff_page
def regimen_confirm_gate(request: HttpRequest, regimen_id: int) -> HttpResponse:
    """RULES §10 V-9, R-US-1, as POST /api/regimens/{id}/confirm-gate/: a clinician confirms the condition that
    opens the next phase, which is then planned."""
    return _decision_page(
        request,
        regimen_id,
        ConfirmGateForm,
        lambda r, d: services.regimen_confirm_gate(
            regimen=r, confirmed_on=d["confirmed_on"], note=d["note"], user=request.user
        ),
        gettext_now("confirm a phase gate"),
        _("Confirm the next phase"),
        _("Next phase confirmed; its doses are planned."),
        summary=_gate_summary,
    )


class ShortenIntervalForm(WarningsForm):
    """RULES R-UK-4: the new interval of the phase in progress and why; the override reason is asked for only when
    the service says the value needs one (outside the protocol's range)."""

    override = True
    spacing_value = forms.IntegerField(label=_("New interval"), widget=forms.NumberInput(attrs={"data-width": "4"}))
    reason = forms.CharField(
        label=_("Why is the interval shortened?"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("For example: symptoms come back in the weeks before each injection. Kept with the decision."),
    )
    override_reason = forms.CharField(
        label=_("Reason to go outside the protocol's range"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    field_order = ["spacing_value", "reason", "override_reason"]

    def __init__(self, *args: Any, interval: services.PhaseInterval, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["spacing_value"].label = gettext_now("New interval, in %(unit)s") % {"unit": interval.unit}
        self.fields["spacing_value"].help_text = gettext_now("A whole number below %(value)s.") % {
            "value": interval.value
        }
        self.fields["override_reason"].help_text = gettext_now(
            "At least %(n)s characters. Kept with the decision and the regimen."
        ) % {"n": settings.COBALT["OVERRIDE_REASON_MIN_LENGTH"]}
        # Hidden until the service asks for it (`_run` shows it then); kept in sight once something is typed in it.
        if self.is_bound and self.data.get("override_reason"):
            self.fields["override_reason"].widget = forms.Textarea(attrs={"rows": 2, "class": "nhsuk-textarea"})


def _interval_summary(regimen: Regimen, interval: services.PhaseInterval) -> list[tuple[Any, Any]]:
    """What the decision is about: the phase, its interval now, the protocol's range, the last dose given in the
    phase (the new interval counts from it) and the next dose planned."""
    doses = regimen.doses.filter(phase_index=interval.phase_index)
    last = doses.filter(status=DoseStatus.GIVEN, administered_at__isnull=False).order_by("-administered_at").first()
    following = doses.filter(status=DoseStatus.PLANNED).order_by("due_date").first()
    if last is not None and last.administered_at is not None:
        given: Any = date_format(local_date(last.administered_at, regimen.patient.timezone), "j M Y")
    else:
        given = _("none yet: the first dose of the phase counts from the last dose of the phase before")
    return [
        (_("Phase in progress"), interval.phase_name),
        (_("Current interval"), interval.text()),
        (_("Allowed without an override reason"), interval.range_text()),
        (_("Last dose given in this phase"), given),
        (_("Next dose planned"), date_format(following.due_date, "j M Y") if following else _("none")),
    ]


@staff_page
def regimen_shorten_interval(request: HttpRequest, regimen_id: int) -> HttpResponse:
    """RULES R-UK-4, as POST /api/regimens/{id}/shorten-interval/: a prescriber shortens the interval of the phase in
    progress; the planned doses move at once. Another clinic's regimen is a 404; a nurse gets 403."""
    regimen = _regimens_for(request).filter(pk=regimen_id).first()
    if regimen is None:
        raise Http404(_("No such regimen."))
    patient = regimen.patient
    _require_prescriber(request, patient, gettext_now("shorten a regimen's interval"))
    title = _("Shorten the interval")
    try:
        interval = services.regimen_interval(regimen)
    except ServiceError as exc:
        context = {"patient": patient, "regimen": regimen, "title": title, "refusal": exc.message}
        return render(request, "regimens/shorten_interval.html", context)
    form = ShortenIntervalForm(_posted(request), interval=interval)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        done = _run(
            form,
            lambda: services.regimen_shorten_interval(
                regimen=regimen,
                spacing_value=data["spacing_value"],
                reason=data["reason"],
                override_reason=data["override_reason"],
                by=request.user,
            ),
        )
        if done is not None:
            following = next_planned_dose(done)
            new_interval = interval.text(data["spacing_value"])
            message = gettext_now("Interval shortened to %(interval)s.") % {"interval": new_interval}
            if following is not None:
                message += " " + gettext_now("The next dose is planned on %(day)s.") % {
                    "day": date_format(following.due_date, "j M Y")
                }
            messages.success(request, message)
            return redirect(_patient_url(patient))
    context = {
        "patient": patient,
        "regimen": regimen,
        "title": title,
        "form": form,
        "summary": _interval_summary(regimen, interval),
    }
    return render(request, "regimens/shorten_interval.html", context)


class EnteredInErrorForm(WarningsForm):
    override = False
    reason = forms.CharField(
        label=_("Why is this record wrong?"),
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("For example: recorded on the wrong patient."),
    )
    field_order = ["reason"]


@staff_page
def dose_entered_in_error(request: HttpRequest, dose_id: int) -> HttpResponse:
    """RULES §10 V-14, as POST /api/doses/{id}/entered-in-error/: a clinician may always, the nurse who
    recorded the dose within 7 days; anyone else gets 403 from the service."""
    dose = (
        ScheduledDose.objects.filter(patient__clinic_id__in=staff_clinic_ids(request.user), pk=dose_id)
        .select_related("patient", "regimen__protocol", "administered_by")
        .first()
    )
    if dose is None:
        raise Http404(_("No such dose."))
    form = EnteredInErrorForm(_posted(request))
    clinician = prescriber_here(request, dose.patient.clinic_id)
    if request.method == "POST" and form.is_valid():
        marked = _run(
            form,
            lambda: services.dose_mark_entered_in_error(
                dose=dose, reason=form.cleaned_data["reason"], user=request.user, clinician=clinician
            ),
        )
        if marked is not None:
            done = gettext_now("The dose record is marked entered in error; the dose is planned again.")
            messages.success(request, done)
            return redirect(_patient_url(dose.patient))
    return render(request, "regimens/entered_in_error.html", {"patient": dose.patient, "dose": dose, "form": form})


class RecheckCompleteForm(WarningsForm):
    override = False
    note = forms.CharField(
        label=_("Where and when was it drawn?"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("For example: drawn at the GP surgery on 18 January."),
    )
    field_order = ["note"]


class RecheckCancelForm(WarningsForm):
    override = False
    reason = forms.CharField(
        label=_("Why is the recheck no longer needed?"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("For example: admitted; the ward takes the bloods."),
    )
    field_order = ["reason"]


def _recheck_page(
    request: HttpRequest,
    recheck_id: int,
    form_class: type[WarningsForm],
    call: Callable[[LabRecheck, dict[str, Any]], Any],
    doing: str,
    title: Any,
    done: Any,
) -> HttpResponse:
    """RULES §10 V-10, as POST /api/lab-rechecks/{id}/complete|cancel/: a clinician closes a recheck by hand.
    Another clinic's recheck is a 404; a nurse gets 403."""
    recheck = (
        LabRecheck.objects.filter(patient__clinic_id__in=staff_clinic_ids(request.user), pk=recheck_id)
        .select_related("patient", "regimen__protocol")
        .first()
    )
    if recheck is None:
        raise Http404(_("No such lab recheck."))
    action = (form_class, call, doing, title, done)
    return _action_page(request, recheck, recheck.patient, action, "regimens/recheck_close.html", {"recheck": recheck})


@staff_page
def recheck_complete(request: HttpRequest, recheck_id: int) -> HttpResponse:
    return _recheck_page(
        request,
        recheck_id,
        RecheckCompleteForm,
        lambda c, d: services.recheck_complete(recheck=c, note=d["note"], user=request.user),
        gettext_now("complete a lab recheck"),
        _("Mark the lab recheck as done"),
        _("Lab recheck marked as done."),
    )


@staff_page
def recheck_cancel(request: HttpRequest, recheck_id: int) -> HttpResponse:
    return _recheck_page(
        request,
        recheck_id,
        RecheckCancelForm,
        lambda c, d: services.recheck_cancel(recheck=c, reason=d["reason"], user=request.user),
        gettext_now("cancel a lab recheck"),
        _("Cancel the lab recheck"),
        _("Lab recheck cancelled."),
    )


@staff_page
@require_GET
def replan_job(request: HttpRequest, pk: int) -> HttpResponse:
    """A large calendar change re-planned by a worker (regimens/jobs.py): its progress, which htmx polls every
    2 s until the job ends. Another clinic's job is a 404."""
    job = get_object_or_404(
        ReplanJob.objects.select_related("clinic"), pk=pk, clinic_id__in=staff_clinic_ids(request.user)
    )
    if getattr(request, "htmx", False) and not job.finished:
        return render(request, "regimens/_replan_progress.html", {"job": job})
    if getattr(request, "htmx", False):
        response = HttpResponse()
        response["HX-Refresh"] = "true"  # finished while the page polled: load the whole page
        return response
    return render(request, "regimens/replan_job.html", {"job": job})
