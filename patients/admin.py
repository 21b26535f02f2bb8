"""Django admin for clinics, their staff and calendars, and patients.

Clinic admins (staff users in the "Clinic admins" group, with an admin membership) see only their
own clinics' rows; superusers see everything. Every admin page keeps simple_history's "History"
button, so who changed what and when is visible (SPEC core behaviour 6).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, ForeignKey, QuerySet
from django.forms import ModelChoiceField
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from simple_history.admin import SimpleHistoryAdmin

from patients import clinical_admin, lab_admin  # noqa: F401  (register the monitoring models)
from patients.charts import svg_chart
from patients.insights import plasmic_for, trends_for
from patients.models import Clinic, ClinicMembership, ClosedDate, Patient, Role
from regimens import services
from regimens.models import Regimen

WEEKDAYS = [
    (0, "Monday"),
    (1, "Tuesday"),
    (2, "Wednesday"),
    (3, "Thursday"),
    (4, "Friday"),
    (5, "Saturday"),
    (6, "Sunday"),
]


def admin_clinic_ids(request: HttpRequest) -> QuerySet[Clinic] | None:
    """The clinics this admin user manages; None means all (superuser)."""
    user = request.user
    if user.is_superuser:
        return None
    return Clinic.objects.filter(memberships__user__pk=user.pk or 0, memberships__role=Role.ADMIN)


class ClinicScopedAdmin(SimpleHistoryAdmin):
    """Limits rows and foreign-key choices to the clinics the user administers.

    `clinic_lookup` is the path from the model to its Clinic ("" for Clinic itself).
    """

    clinic_lookup = "clinic"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset(request)
        clinics = admin_clinic_ids(request)
        if clinics is None:
            return queryset
        return queryset.filter(**{f"{self.clinic_lookup or 'pk'}__in": clinics}).distinct()

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        clinics = admin_clinic_ids(request)
        if clinics is not None:
            # Without this a clinic admin could move a patient into a clinic they cannot see.
            if db_field.related_model is Clinic:
                kwargs["queryset"] = clinics
            elif db_field.related_model is Patient:
                kwargs["queryset"] = Patient.objects.filter(clinic__in=clinics)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnlyHistoryAdmin(ClinicScopedAdmin):
    """For rows only services may write (they re-plan doses and raise alerts): view and history
    only, no add, change, delete or revert from the admin."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True


class ClinicForm(forms.ModelForm):  # type: ignore[type-arg]
    # Tick boxes instead of raw JSON: open_weekdays is a list of 0 (Monday) … 6 (Sunday).
    open_weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS, coerce=int, widget=forms.CheckboxSelectMultiple, help_text="Days the clinic gives injections."
    )

    class Meta:
        model = Clinic
        fields = ("name", "timezone", "open_weekdays", "phone", "email", "lead")


class ClosedDateInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ClosedDate
    extra = 0
    fields = ("date", "note")


class ClinicMembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ClinicMembership
    extra = 0
    fields = ("user", "role")
    raw_id_fields = ("user",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ClinicMembership]:
        return super().get_queryset(request).select_related("user", "clinic")


@admin.register(Clinic)
class ClinicAdmin(ClinicScopedAdmin):
    form = ClinicForm
    clinic_lookup = ""
    list_display = ("name", "timezone", "open_days", "lead", "patient_count", "phone", "email")
    list_select_related = ("lead",)
    search_fields = ("name", "email")
    raw_id_fields = ("lead",)
    inlines = (ClosedDateInline, ClinicMembershipInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).annotate(patients_total=Count("patients", distinct=True))

    @admin.display(description="Open days")
    def open_days(self, obj: Clinic) -> str:
        names = dict(WEEKDAYS)
        return ", ".join(names[d][:3] for d in sorted(obj.open_weekdays) if d in names)

    @admin.display(description="Patients", ordering="patients_total")
    def patient_count(self, obj: Clinic) -> int:
        return int(getattr(obj, "patients_total", 0))

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        calendar_changed = "open_weekdays" in form.changed_data or any(
            formset.model is ClosedDate and formset.has_changed() for formset in formsets
        )
        if change and calendar_changed:
            # RULES.md: changing the calendar re-plans future doses; the service does that.
            clinic = form.instance
            services.clinic_update_calendar(
                clinic=clinic,
                open_weekdays=list(clinic.open_weekdays),
                closed_dates=sorted(clinic.closed_date_set()),
                user=request.user,
            )


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


@admin.register(Patient)
class PatientAdmin(ClinicScopedAdmin):
    list_display = (
        "family_name",
        "given_name",
        "mrn",
        "clinic",
        "birth_date",
        "sex",
        "deficiency_cause",
        "neurological_involvement",
        "reminder_channel",
        "timezone",
    )
    list_display_links = ("family_name", "given_name", "mrn")
    list_select_related = ("clinic",)
    list_filter = ("clinic", "sex", "deficiency_cause", "reminder_channel", "neurological_involvement")
    search_fields = ("mrn", "given_name", "family_name", "email")
    raw_id_fields = ("user",)
    readonly_fields = ("ical_token", "created_at", "updated_at", "lab_trends")
    fieldsets = (
        (None, {"fields": ("clinic", "mrn", "given_name", "family_name", "birth_date", "sex")}),
        ("Clinical", {"fields": ("deficiency_cause", "neurological_involvement", "lab_trends")}),
        ("Contact and reminders", {"fields": ("email", "phone", "timezone", "language", "reminder_channel")}),
        ("Portal", {"fields": ("user", "ical_token"), "classes": ("collapse",)}),
        ("Record", {"fields": ("created_at", "updated_at")}),
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
