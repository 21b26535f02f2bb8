"""Lab pages: enter one sample's results for a patient (`/patients/{id}/labs/new/`) and import a CSV file
of results (`/labs/import/`) with a report of every row.

Any clinic staff role may enter and import results, as in the API (nurses transcribe lab reports); a
patient of another clinic is a 404. The writes are the API's services (patients/labs/services.py,
importer.py); after a result is stored the monitoring rules run on commit (tracker/events.py
"patient.changed"), and the page asks the notifications app which alerts that opened.

Above the entry form the page shows what the apps above contribute through
`tracker.events.collect("patient.lab_entry_sections", patient=..., request=...)` (`tracker.pages.PageSection`s,
rendered from their own apps' templates, as the patient page's sections): monitoring's information prompts
(RULES S-7, S-14; §10 V-15), so whoever takes or enters the bloods sees "pregnancy: request active B12" there.
"""

from __future__ import annotations

import zoneinfo
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone as djtz
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods

from patients.labs import analytes, jobs
from patients.labs.forms import LabEntryForm, LabImportForm
from patients.labs.importer import (
    KNOWN_COLUMNS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    ImportReport,
    import_lab_results,
    read_text,
)
from patients.labs.services import LabResultErrors, ResultInput, lab_panel_create, lab_result_create
from patients.labs.views import MAX_IMPORT_BYTES
from patients.models import Clinic, LabImportJob, LabResult, Patient
from tracker import events
from tracker.errors import ServiceError
from tracker.exports import csv_response
from tracker.middleware import StaffClinic
from tracker.pages import PageSection, staff_clinics

SAMPLE_HEADER = ("mrn", "analyte", "value", "unit", "collected_at", "reported_at", "ref_low", "ref_high", "lab", "note")
SAMPLE_ROWS = (
    ("RVH000123", "hemoglobin", "9.1", "g/dL", "2027-01-04T09:30:00+00:00", "", "", "", "RVH Haematology", ""),
    ("RVH000123", "777-3", "62", "10^9/L", "2027-01-04", "", "", "", "RVH Haematology", ""),
    ("RVH000123", "b12_total", "95", "ng/L", "2027-01-04", "2027-01-05", "180", "900", "RVH Chemistry", ""),
    ("RVH000123", "schistocytes", "absent", "", "2027-01-04", "", "", "", "", "film reviewed"),
)


def _clinics(request: HttpRequest) -> list[StaffClinic]:
    clinics = staff_clinics(request)
    if not clinics:
        raise PermissionDenied(_("Only clinic staff may enter lab results."))
    return clinics


def patient_url(patient_id: int) -> str:
    """The patient page (its own app's page: linked by name when it exists, else by its stable path)."""
    try:
        return reverse("patient", args=[patient_id])
    except NoReverseMatch:
        return f"/patients/{patient_id}/"


def _shown(result: LabResult) -> str:
    analyte = analytes.resolve(result.analyte)
    unit = f" {result.unit_as_entered}" if result.unit_as_entered else ""
    verdict = f" ({result.get_interpretation_display().lower()})" if result.interpretation else ""
    return f"{analyte.name} {result.value_as_entered}{unit}{verdict}"


def _store(*, patient: Patient, form: LabEntryForm, user: Any) -> list[LabResult]:
    """The API's services: one result (POST /api/lab-results/) or a panel (POST /api/lab-results/panel/)."""
    items: list[ResultInput] = form.results()
    data = form.cleaned_data
    if len(items) == 1:
        item = items[0]
        return [
            lab_result_create(
                patient=patient,
                analyte=item.analyte,
                value=item.value,
                unit=item.unit,
                collected_at=data["collected_at"],
                lab=data["lab"],
                note=item.note,
                entered_by=user,
            )
        ]
    return lab_panel_create(
        patient=patient, collected_at=data["collected_at"], results=items, lab=data["lab"], entered_by=user
    )


@login_required
@require_http_methods(["GET", "POST"])
def lab_new(request: HttpRequest, pk: int) -> HttpResponse:
    clinics = _clinics(request)
    patient = get_object_or_404(
        Patient.objects.select_related("clinic"), pk=pk, clinic_id__in=[c.id for c in clinics]
    )
    # The collection time is typed as the patient's clinic's clock reads it.
    with djtz.override(zoneinfo.ZoneInfo(patient.clinic.timezone)):
        form = LabEntryForm(request.POST or None, timezone_name=patient.clinic.timezone)
        if request.method == "POST" and form.is_valid():
            since = djtz.now()
            try:
                stored = _store(patient=patient, form=form, user=request.user)
            except ServiceError as exc:
                problems = exc.errors if isinstance(exc, LabResultErrors) else [(exc.field, exc.message)]
                items = form.results()
                for name, message in problems:
                    field = form.field_for(name, items)
                    form.add_error(field, message if field else f"{name}: {message}")
            else:
                # The monitoring evaluation ran when the write committed (outside a transaction: at once).
                opened = events.answer("patient.alerts_opened_since", [], patient_id=patient.pk, since=since)
                messages.success(request, _stored_message(stored, opened))
                return redirect(patient_url(patient.pk))
        context = {
            "patient": patient,
            "form": form,
            "patient_url": patient_url(patient.pk),
            "sections": _entry_sections(request, patient),
        }
        return render(request, "patients/labs/new.html", context, status=400 if form.errors else 200)


def _entry_sections(request: HttpRequest, patient: Patient) -> list[str]:
    """The parts the apps above show above the entry form ("patient.lab_entry_sections"), rendered in order."""
    sections: list[PageSection] = events.collect("patient.lab_entry_sections", patient=patient, request=request)
    return [
        render_to_string(section.template, {"patient": patient, **section.context}, request=request)
        for section in sorted(sections, key=lambda section: section.order)
    ]


def _stored_message(stored: list[LabResult], opened: list[dict[str, Any]]) -> str:
    text = ngettext("Stored %(count)d result: %(results)s.", "Stored %(count)d results: %(results)s.", len(stored)) % {
        "count": len(stored),
        "results": "; ".join(_shown(result) for result in stored),
    }
    if opened:
        alerts = "; ".join(f"{a['kind_display']} ({a['severity_display'].lower()})" for a in opened)
        text += " " + ngettext("It opened an alert: %(alerts)s.", "It opened alerts: %(alerts)s.", len(opened)) % {
            "alerts": alerts
        }
    else:
        text += " " + _("No alert opened.")
    return text


def _report_rows(report: ImportReport) -> list[dict[str, Any]]:
    """Every row of the file in order: accepted (stored, or valid but not stored) or refused with the column."""
    rows: list[dict[str, Any]] = [{"row": n, "accepted": True} for n in report.accepted_rows]
    rows += [{"row": e.row, "accepted": False, "column": e.field, "reason": e.message} for e in report.errors]
    return sorted(rows, key=lambda r: (r["row"], r["accepted"]))


@login_required
@require_http_methods(["GET", "POST"])
def lab_import(request: HttpRequest) -> HttpResponse:
    clinics = _clinics(request)
    form = LabImportForm(request.POST or None, request.FILES or None, clinics=clinics)
    report: ImportReport | None = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        clinic = Clinic.objects.get(pk=form.clinic_id())  # one of the user's (the form's choices)
        try:
            if upload.size is not None and upload.size > MAX_IMPORT_BYTES:
                raise ServiceError("file", _("is larger than %(mb)d MB") % {"mb": MAX_IMPORT_BYTES // (1024 * 1024)})
            text = read_text(upload.read())
            if jobs.runs_as_job(text):
                job = jobs.import_job_create(
                    text=text, clinic=clinic, user=request.user, keep_valid=form.cleaned_data["keep_valid"]
                )
                return redirect("lab-import-job", pk=job.pk)
            report = import_lab_results(
                data=text, clinic=clinic, user=request.user, keep_valid=form.cleaned_data["keep_valid"]
            )
        except ServiceError as exc:
            form.add_error("file" if exc.field == "file" else None, exc.message)
    context = {
        "form": form,
        "report": report,
        "report_rows": _report_rows(report) if report is not None else [],
        "refused": len({e.row for e in report.errors}) if report is not None else 0,
        "required_columns": REQUIRED_COLUMNS,
        "optional_columns": OPTIONAL_COLUMNS,
        "known_columns": KNOWN_COLUMNS,
    }
    status = 400 if form.errors or (report is not None and not report.created) else 200
    return render(request, "patients/labs/import.html", context, status=status)


@login_required
@require_GET
def lab_import_job(request: HttpRequest, pk: int) -> HttpResponse:
    """A large import run by a worker: its progress, which htmx polls every 2 s, then the per-row report.
    Another clinic's job is a 404."""
    clinics = _clinics(request)
    job = jobs.fail_if_stale(get_object_or_404(LabImportJob, pk=pk, clinic_id__in=[c.id for c in clinics]))
    if getattr(request, "htmx", False) and not job.finished:
        return render(request, "patients/labs/_import_progress.html", {"job": job})
    if getattr(request, "htmx", False):
        # Finished while the page polled: load the whole page, with the report.
        response = HttpResponse()
        response["HX-Refresh"] = "true"
        return response
    report = jobs.job_report(job)
    context = {
        "job": job,
        "report": report,
        "report_rows": _report_rows(report) if report is not None else [],
        "refused": len({e.row for e in report.errors}) if report is not None else 0,
    }
    return render(request, "patients/labs/import_job.html", context)


@login_required
@require_GET
def lab_import_sample(request: HttpRequest) -> HttpResponse:
    _clinics(request)
    return csv_response("cobalt-lab-results-sample.csv", SAMPLE_HEADER, SAMPLE_ROWS)
