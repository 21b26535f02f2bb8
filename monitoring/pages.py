"""This app's web pages: the clinic admin's dashboard (/dashboard/) and audit log (/audit/, its CSV).

The page reads the same selector as GET /api/dashboard/ (monitoring/dashboard.py) and only arranges
its figures: charts (monitoring/dashboard_charts.py), the text tables beside them, and the link of
each figure to the list behind it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from monitoring.audit import KINDS as AUDIT_KINDS
from monitoring.audit import AuditQuery, audit_page
from monitoring.dashboard import check_period, dashboard_for
from monitoring.dashboard_charts import Bar, bar_chart
from monitoring.normalization import ANALYTES, NOT_YET, normalization_rows
from patients.models import Clinic, Patient, StaffEventKind
from patients.staff import admin_clinic, admin_clinics, staff_of
from tracker.api import PlausibleDateField
from tracker.clock import local_date
from tracker.errors import ServiceError
from tracker.exports import csv_response
from tracker.forms import DateInput, NHSUKForm


class DashboardForm(NHSUKForm):
    """The clinic and period; the GET parameters are the API's (clinic, from, to)."""

    # Not given: None, the user's first clinic as admin (as in the API), not "" (no such clinic, a 404).
    clinic = forms.TypedChoiceField(label=gettext_lazy("Clinic"), coerce=int, required=False, empty_value=None)
    from_ = PlausibleDateField(label=gettext_lazy("From"), required=False, widget=DateInput())
    to = PlausibleDateField(label=gettext_lazy("To"), required=False, widget=DateInput())

    def __init__(self, *args: Any, clinics: list[Clinic], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["from"] = self.fields.pop("from_")  # `from` is a Python keyword
        self.fields["to"] = self.fields.pop("to")  # keep the order: clinic, from, to
        clinic_field = self.fields["clinic"]
        assert isinstance(clinic_field, forms.TypedChoiceField)
        clinic_field.choices = [(c.id, c.name) for c in clinics]
        if len(clinics) < 2:
            self.fields["clinic"].widget = forms.HiddenInput()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            check_period(data.get("from"), data.get("to"))
        except ServiceError as exc:
            self.add_error(exc.field, exc.message)
        return data


def list_link(page: str, api: str, **params: Any) -> str:
    """The list behind a figure: the web page `page` once it exists (its URL name resolves), else the
    API list; both read the same filter parameters."""
    try:
        base = reverse(page)
    except NoReverseMatch:
        base = api
    query = urlencode(
        [(k, v) for k, values in params.items() for v in (values if isinstance(values, list) else [values])]
    )
    return f"{base}?{query}" if query else base


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    clinics = admin_clinics(request.user)
    form = DashboardForm(request.GET or None, clinics=clinics)
    clinic_id = None
    start = end = None
    if form.is_bound and form.is_valid():
        clinic_id, start, end = form.cleaned_data.get("clinic"), form.cleaned_data["from"], form.cleaned_data["to"]
    clinic = admin_clinic(request.user, clinic_id, _("read the dashboard"))
    try:
        figures = dashboard_for(clinic=clinic, start=start, end=end)
    except ServiceError as exc:  # one day given, and the default other end makes the period wrong
        form.add_error(exc.field, exc.message)
        figures = dashboard_for(clinic=clinic)
    if not form.is_bound:
        form = DashboardForm(
            initial={"clinic": clinic.id, "from": figures["period"]["from"], "to": figures["period"]["to"]},
            clinics=clinics,
        )
    return render(
        request, "monitoring/dashboard.html", {"form": form, "d": figures, **_presentation(figures, clinic.id)}
    )


def _presentation(d: dict[str, Any], clinic: int) -> dict[str, Any]:
    """Charts and links of the figures `d` (the selector's output), for the template."""
    work, adherence, outcomes = d["work"], d["adherence"], d["outcomes"]
    today = date.fromisoformat(d["today"])

    def doses(**params: Any) -> str:
        return list_link("calendar", "/api/doses/", clinic=clinic, status="planned", **params)

    for row in work["days"]:
        row["link"] = doses(due_from=row["date"], due_to=row["date"])
    for band in work["overdue_by_days"]:
        first = today - timedelta(days=band["to"]) if band["to"] is not None else None
        band["link"] = doses(
            due_to=(today - timedelta(days=band["from"])).isoformat(),
            **({"due_from": first.isoformat()} if first else {}),
        )
    for month in adherence["months"]:
        first = date.fromisoformat(month["month"] + "-01")
        last = date(first.year + (first.month == 12), first.month % 12 + 1, 1) - timedelta(days=1)
        month["link"] = list_link(
            "calendar", "/api/doses/", clinic=clinic, due_from=first.isoformat(), due_to=last.isoformat()
        )
        month["on_time_percent"] = round(100 * month["on_time_share"]) if month["on_time_share"] is not None else None
    for row in outcomes["open_by_severity"]:
        row["link"] = list_link("alerts", "/api/alerts/", clinic=clinic, status="open", severity=row["severity"])
    for row in outcomes["open_by_kind"]:
        row["link"] = list_link("alerts", "/api/alerts/", clinic=clinic, status="open", kind=row["kind"])
    for row in outcomes["not_normalizing_by_kind"]:
        row["link"] = list_link(
            "alerts", "/api/alerts/", clinic=clinic, status=["open", "acknowledged"], kind=row["kind"]
        )
    end_of_week = today + timedelta(days=6 - today.weekday())
    share = adherence["on_time_share"]
    # The workload table: a row per week (Monday to Sunday), the days before today left blank.
    by_day = {row["date"]: row for row in work["days"]}
    monday = today - timedelta(days=today.weekday())
    weeks = []
    while monday.isoformat() <= work["days"][-1]["date"]:
        cells = [by_day.get((monday + timedelta(days=i)).isoformat()) for i in range(7)]
        weeks.append({"monday": monday.isoformat(), "cells": cells})
        monday += timedelta(days=7)
    links = {
        "overdue": list_link("worklist", "/api/doses/", clinic=clinic, status="planned", overdue="true"),
        "due_this_week": doses(due_from=d["today"], due_to=end_of_week.isoformat()),
        "due_next_8_weeks": doses(due_from=d["today"], due_to=work["days"][-1]["date"]),
        "rechecks_due": list_link("worklist", "/api/lab-rechecks/", status="due"),
        "rechecks_overdue": list_link("worklist", "/api/lab-rechecks/", status="overdue"),
        "open_alerts": list_link("alerts", "/api/alerts/", clinic=clinic, status="open"),
        "not_normalizing": list_link(
            "alerts",
            "/api/alerts/",
            clinic=clinic,
            status=["open", "acknowledged"],
            kind=[row["kind"] for row in outcomes["not_normalizing_by_kind"]],
        ),
        "reminders_sent": list_link("notifications", "/api/notifications/", status="sent"),
        "reminders_failed": list_link("notifications", "/api/notifications/", status="failed"),
        "opted_out": list_link("patient-search", "/api/patients/", clinic=clinic, reminder_channel="none"),
    }
    normalization = outcomes["time_to_normalization"]
    analyte_names = {"hemoglobin": _("Hemoglobin"), "platelets": _("Platelets")}
    band_names = {row["band"]: _("day %(band)s") % {"band": row["band"]} for row in normalization["bands"]}
    band_names[NOT_YET] = _("not yet")
    for analyte in ANALYTES:
        figures = normalization[analyte]
        figures["name"] = analyte_names[analyte]
        figures["link"] = list_link("dashboard-normalization", "", clinic=clinic, analyte=analyte)
        by_target = figures["normalized_by_target_share"]
        figures["by_target_percent"] = round(100 * by_target) if by_target is not None else None
        for row in figures["by_band"]:
            row["label"] = band_names[row["band"]]
            row["link"] = list_link("dashboard-normalization", "", clinic=clinic, analyte=analyte, band=row["band"])
        figures["chart"] = bar_chart(
            _("%(analyte)s: patients by days from the first dose to the first result at or above the lower limit")
            % {"analyte": analyte_names[analyte]},
            [
                Bar(
                    label=row["label"],
                    value=row["patients"],
                    title=f"{row['label']}: {row['patients']}",
                    muted=row["band"] == NOT_YET,
                )
                for row in figures["by_band"]
            ],
        )
    oldest = d["delivery"]["oldest_undelivered_due_at"]
    outbox_oldest = d["delivery"]["outbox"]["oldest_due_at"]
    return {
        "on_time_percent": round(100 * share) if share is not None else None,
        "links": links,
        "work_cards": [
            ("due_this_week", _("Doses due this week"), {"n": work["due_this_week"], "link": links["due_this_week"]}),
            (
                "due_next_8_weeks",
                _("Doses due in the next 8 weeks"),
                {"n": work["due_next_8_weeks"], "link": links["due_next_8_weeks"]},
            ),
            ("overdue", _("Overdue doses"), {"n": work["overdue"], "link": links["overdue"]}),
            ("rechecks_due", _("Lab rechecks due"), {"n": work["rechecks_due"], "link": links["rechecks_due"]}),
            (
                "rechecks_overdue",
                _("Lab rechecks overdue"),
                {"n": work["rechecks_overdue"], "link": links["rechecks_overdue"]},
            ),
        ],
        "weeks": weeks,
        "weekday_names": [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")],
        "normalization": [normalization[analyte] for analyte in ANALYTES],
        "oldest_undelivered": datetime.fromisoformat(oldest) if oldest else None,
        "outbox_oldest": datetime.fromisoformat(outbox_oldest) if outbox_oldest else None,
        "charts": {
            "workload": bar_chart(
                _("Planned doses per day, today and the next 8 weeks (grey: clinic closed)"),
                [
                    Bar(
                        label=date.fromisoformat(row["date"]).strftime("%d %b"),
                        value=row["doses"],
                        title=f"{row['date']}: {row['doses']}" + ("" if row["open"] else f" ({_('closed')})"),
                        muted=not row["open"],
                        show_label=index % 7 == 0,
                    )
                    for index, row in enumerate(work["days"])
                ],
            ),
            "overdue": bar_chart(
                _("Overdue doses by days overdue"),
                [
                    Bar(label=b["days"], value=b["doses"], title=f"{b['days']}: {b['doses']}")
                    for b in work["overdue_by_days"]
                ],
            ),
            "adherence": bar_chart(
                _("Doses given on time per month (%)"),
                [
                    Bar(
                        label=m["month"],
                        value=m["on_time_percent"] or 0,
                        title=f"{m['month']}: {m['on_time']} / {m['due']}",
                        muted=m["on_time_percent"] is None,
                    )
                    for m in adherence["months"]
                ],
                maximum=100,
                unit="%",
            ),
        },
    }


class NormalizationForm(NHSUKForm):
    """Which patients of the time-to-normalization list: the clinic, the analyte and a band (optional)."""

    clinic = forms.TypedChoiceField(label=gettext_lazy("Clinic"), coerce=int, required=False, empty_value=None)
    analyte = forms.ChoiceField(
        label=gettext_lazy("Analyte"),
        choices=[("hemoglobin", gettext_lazy("Hemoglobin")), ("platelets", gettext_lazy("Platelets"))],
        required=False,
    )
    band = forms.CharField(label=gettext_lazy("Band"), required=False, max_length=20, widget=forms.HiddenInput())

    def __init__(self, *args: Any, clinics: list[Clinic], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        clinic_field = self.fields["clinic"]
        assert isinstance(clinic_field, forms.TypedChoiceField)
        clinic_field.choices = [(c.id, c.name) for c in clinics]
        if len(clinics) < 2:
            self.fields["clinic"].widget = forms.HiddenInput()


@login_required
def normalization(request: HttpRequest) -> HttpResponse:
    """The patients behind the dashboard's time-to-normalization figures (one analyte, optionally one band)."""
    clinics = admin_clinics(request.user)
    form = NormalizationForm(request.GET, clinics=clinics)
    valid = form.is_valid()
    data = form.cleaned_data if valid else {}
    clinic = admin_clinic(request.user, data.get("clinic"), _("read the dashboard"))
    analyte = data.get("analyte") or "hemoglobin"
    band = data.get("band") or ""
    today = local_date(timezone.now(), clinic.timezone)
    rows = [r for r in normalization_rows(clinic, today) if r.analyte == analyte and (not band or r.band == band)]
    return render(
        request,
        "monitoring/normalization.html",
        {
            "form": form,
            "clinic": clinic,
            "analyte_name": {"hemoglobin": _("Hemoglobin"), "platelets": _("Platelets")}[analyte],
            "unit": {"hemoglobin": "g/L", "platelets": "×10⁹/L"}[analyte],
            "band": band,
            "not_yet": NOT_YET,
            "rows": rows,
            "dashboard": f"{reverse('dashboard')}?clinic={clinic.id}",
        },
    )


# --- The audit log -------------------------------------------------------------------------------------

AUDIT_PAGE_SIZE = 50
CSV_MAX_ROWS = 10_000


class AuditForm(NHSUKForm):
    """Filters of the log; the GET parameters are the API's, but the patient is found by MRN."""

    # Not given: None, the user's first clinic as admin (as in the API), not "" (no such clinic, a 404).
    clinic = forms.TypedChoiceField(label=gettext_lazy("Clinic"), coerce=int, required=False, empty_value=None)
    person = forms.TypedChoiceField(label=gettext_lazy("Person"), coerce=int, required=False, empty_value=None)
    patient_mrn = forms.CharField(label=gettext_lazy("Patient MRN"), required=False, max_length=40)
    kind = forms.MultipleChoiceField(
        label=gettext_lazy("Kind"),
        choices=list(AUDIT_KINDS.items()),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    from_ = PlausibleDateField(label=gettext_lazy("From"), required=False, widget=DateInput())
    to = PlausibleDateField(label=gettext_lazy("To"), required=False, widget=DateInput())

    def __init__(self, *args: Any, clinics: list[Clinic], clinic: Clinic, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.audit_clinic = clinic
        self.fields["from"] = self.fields.pop("from_")  # `from` is a Python keyword
        self.fields["to"] = self.fields.pop("to")
        choice_fields = {name: self.fields[name] for name in ("clinic", "person")}
        for field in choice_fields.values():
            assert isinstance(field, forms.TypedChoiceField)
        choice_fields["clinic"].choices = [(c.id, c.name) for c in clinics]  # type: ignore[attr-defined]
        if len(clinics) < 2:
            self.fields["clinic"].widget = forms.HiddenInput()
        people = [(m.user_id, m.user.get_full_name() or m.user.get_username()) for m in staff_of(clinic)]
        choice_fields["person"].choices = [("", _("Anyone"))] + people  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("from"), data.get("to")
        if start and end and start > end:
            self.add_error("to", _("must be on or after the first day."))
        mrn = (data.get("patient_mrn") or "").strip()
        data["patient"] = None
        if mrn:
            found = Patient.objects.filter(clinic=self.audit_clinic, mrn=mrn).values_list("id", flat=True).first()
            if found is None:
                self.add_error("patient_mrn", _("no patient of this clinic has this MRN."))
            data["patient"] = found
        return data

    def query(self) -> AuditQuery:
        data = self.cleaned_data
        return AuditQuery(
            clinic=self.audit_clinic,
            person=data.get("person"),
            patient=data.get("patient"),
            kinds=tuple(data.get("kind") or ()),
            start=data.get("from"),
            end=data.get("to"),
        )


def _audit_form(request: HttpRequest) -> AuditForm:
    raw = request.GET.get("clinic", "")
    clinic = admin_clinic(request.user, int(raw) if raw.isdigit() else None, _("read the audit log"))
    return AuditForm(request.GET, clinics=admin_clinics(request.user), clinic=clinic)


@login_required
def audit(request: HttpRequest) -> HttpResponse:
    form = _audit_form(request)
    page = int(request.GET["page"]) if request.GET.get("page", "").isdigit() else 1
    page = max(page, 1)
    body: dict[str, Any] = {"count": 0, "results": []}
    if form.is_valid():
        body = audit_page(form.query(), offset=(page - 1) * AUDIT_PAGE_SIZE, limit=AUDIT_PAGE_SIZE)
    params = request.GET.copy()
    params.pop("page", None)
    here = params.urlencode()
    return render(
        request,
        "monitoring/audit.html",
        {
            "form": form,
            "clinic": form.audit_clinic,
            "events": [_for_people(event) for event in body["results"]],
            "count": body["count"],
            "previous": f"?{here}&page={page - 1}" if page > 1 else None,
            "next": f"?{here}&page={page + 1}" if page * AUDIT_PAGE_SIZE < body["count"] else None,
            "export": f"{reverse('audit-export')}?{here}",
        },
    )


ACTION_LABELS = {
    "created": gettext_lazy("Created"),
    "changed": gettext_lazy("Changed"),
    "deleted": gettext_lazy("Deleted"),
    "replanned": gettext_lazy("Re-planned"),
    **dict(StaffEventKind.choices),
}


def _for_people(event: dict[str, Any]) -> dict[str, Any]:
    return {
        **event,
        "when": datetime.fromisoformat(event["at"]),
        "kind_label": AUDIT_KINDS.get(event["kind"], event["kind"]),
        "action_label": ACTION_LABELS.get(event["action"], event["action"]),
    }


def _changes_text(changes: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{c['field']}: {'' if c['from'] is None else c['from']} -> {'' if c['to'] is None else c['to']}"
        for c in changes
    )


@login_required
def audit_export(request: HttpRequest) -> HttpResponse:
    """The log as filtered on the page, as CSV (the newest CSV_MAX_ROWS events)."""
    form = _audit_form(request)
    if not form.is_valid():
        return render(
            request, "monitoring/audit.html", {"form": form, "clinic": form.audit_clinic, "events": []}, status=400
        )
    body = audit_page(form.query(), limit=CSV_MAX_ROWS)
    rows = [
        [
            event["at"],
            (event["actor"] or {}).get("username", ""),
            AUDIT_KINDS.get(event["kind"], event["kind"]),
            event["action"],
            event["record"]["label"],
            event["record"]["id"],
            (event["patient"] or {}).get("mrn", ""),
            (event["patient"] or {}).get("name", ""),
            _changes_text(event["changes"]),
            event["reason"],
        ]
        for event in body["results"]
    ]
    header = ["When", "Who", "Kind", "Action", "Record", "Record id", "Patient MRN", "Patient", "Changes", "Reason"]
    return csv_response(f"audit-{form.audit_clinic.id}.csv", header, rows)
