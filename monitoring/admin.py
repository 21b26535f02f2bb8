"""The patient's admin page, completed by the apps above patients: their regimens (for navigation)
and the lab trends page (charts of every analyte with the reference band, and the PLASMIC score).

patients/admin.py registers the patient admin without them, since patients imports neither regimens
nor monitoring; this module re-registers it with both. Also the queue of evaluations a worker has yet to run.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from monitoring.charts import svg_chart
from monitoring.models import PendingEvaluation
from monitoring.selectors import plasmic_for, trends_for
from patients import admin as patients_admin
from patients.models import Patient
from regimens.models import Regimen
from tracker.admin import ViewOnlyAdmin


class RegimenInline(admin.TabularInline):  # type: ignore[type-arg]
    """The patient's regimens, for navigation; regimens are started and changed in the app."""

    model = Regimen
    extra = 0
    fields = ("protocol", "start_date", "status", "current_phase", "awaiting_gate")
    readonly_fields = fields
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Regimen]:
        return super().get_queryset(request).select_related("protocol", "patient")


admin.site.unregister(Patient)


@admin.register(Patient)
class PatientAdmin(patients_admin.PatientAdmin):
    readonly_fields = (*patients_admin.PatientAdmin.readonly_fields, "lab_trends")
    fieldsets = tuple(
        (name, {**options, "fields": (*options["fields"], "lab_trends")} if name == "Clinical" else options)
        for name, options in patients_admin.PatientAdmin.fieldsets
    )
    inlines = (RegimenInline,)

    @admin.display(description="Lab trends")
    def lab_trends(self, patient: Patient) -> str:
        if not patient.pk:
            return "-"
        return format_html('<a href="{}">Charts of every analyte, PLASMIC score</a>', "../trends/")

    def get_urls(self) -> list[URLPattern]:
        trends = path(
            "<int:object_id>/trends/",
            self.admin_site.admin_view(self.trends_view),
            name="patients_patient_trends",
        )
        return [trends, *super().get_urls()]

    def trends_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Lab trends as charts (reference band, first dose, points by interpretation) and PLASMIC."""
        patient = self.get_object(request, str(object_id))
        if patient is None or not self.has_view_permission(request, patient):
            raise Http404("No such patient.")
        trends = trends_for(patient)
        charts = [
            {"entry": entry, "svg": mark_safe(svg_chart(entry, trends["t0"]))}  # noqa: S308 (escaped in svg_chart)
            for entry in trends["analytes"]
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Lab trends: {patient}",
            "patient": patient,
            "opts": self.model._meta,
            "t0": trends["t0"],
            "charts": charts,
            "plasmic": plasmic_for(patient),
        }
        return TemplateResponse(request, "admin/patients/patient/trends.html", context)


@admin.register(PendingEvaluation)
class PendingEvaluationAdmin(ViewOnlyAdmin, admin.ModelAdmin):  # type: ignore[type-arg]
    """The patients whose rules a worker has yet to run (monitoring/queue.py), oldest first: read-only. A list that
    grows, or markers older than a few minutes, mean no worker is taking the tasks."""

    list_display = ("patient", "requested_at")
    ordering = ("requested_at",)
    readonly_fields = ("patient", "token", "requested_at")
