"""Django admin for clinics, their staff and calendars, and patients.

Clinic admins (staff users in the "Clinic admins" group, with an admin membership) see only their
own clinics' rows; superusers see everything. Every admin page keeps simple_history's "History"
button, so who changed what and when is visible.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse

from patients import services
from patients.clinical import admin as clinical_admin  # noqa: F401  (registers medications and facts)
from patients.labs import admin as labs_admin  # noqa: F401  (registers lab results)
from patients.models import Clinic, ClinicMembership, ClosedDate, Patient
from tracker.admin import ClinicScopedAdmin

WEEKDAYS = [
    (0, "Monday"),
    (1, "Tuesday"),
    (2, "Wednesday"),
    (3, "Thursday"),
    (4, "Friday"),
    (5, "Saturday"),
    (6, "Sunday"),
]


class ClinicForm(forms.ModelForm):  # type: ignore[type-arg]
    # Tick boxes instead of raw JSON: open_weekdays is a list of 0 (Monday) … 6 (Sunday).
    open_weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS, coerce=int, widget=forms.CheckboxSelectMultiple, help_text="Days the clinic gives injections."
    )

    class Meta:
        model = Clinic
        fields = (
            "name",
            "timezone",
            "open_weekdays",
            "phone",
            "email",
            "address",
            "session_start",
            "session_end",
            "slot_minutes",
            "lead",
        )


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
            # RULES: changing the calendar re-plans future doses; the service does that.
            clinic = form.instance
            calendar = services.clinic_change_calendar(
                clinic=clinic,
                open_weekdays=list(clinic.open_weekdays),
                closed_dates=sorted(clinic.closed_date_set()),
                user=request.user,
            )
            if calendar.job is not None:
                messages.info(
                    request,
                    f"The planned doses of {calendar.job.regimens_total} regimens are re-planned in the background: "
                    f"{reverse('replan-job', args=[calendar.job.pk])}",
                )


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
    readonly_fields: tuple[str, ...] = ("ical_token", "created_at", "updated_at")
    fieldsets: tuple[Any, ...] = (
        (None, {"fields": ("clinic", "mrn", "given_name", "family_name", "birth_date", "sex")}),
        ("Clinical", {"fields": ("deficiency_cause", "neurological_involvement")}),
        ("Contact and reminders", {"fields": ("email", "phone", "timezone", "language", "reminder_channel")}),
        ("Portal", {"fields": ("user", "ical_token"), "classes": ("collapse",)}),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )
