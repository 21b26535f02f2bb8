"""Django admin for protocols (editable by superusers only), and regimens, doses and lab rechecks (view and history).

Regimens, doses and rechecks are written only by regimens/services/, which re-plans the
schedule on every change; editing them here would leave the plan stale, so they are read-only.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from simple_history.admin import SimpleHistoryAdmin

from regimens.models import (
    DoseStatus,
    LabRecheck,
    Protocol,
    ProtocolPhase,
    ProtocolRecheckStep,
    Regimen,
    RegimenDecision,
    Replan,
    ScheduledDose,
)
from tracker.admin import ReadOnlyHistoryAdmin, ViewOnlyAdmin, admin_clinic_ids
from tracker.clock import patient_today


def _superuser(request: HttpRequest) -> bool:
    return bool(getattr(request.user, "is_superuser", False))


class SuperuserWritesOnly:
    """Shared protocols are every clinic's: a clinic admin (even one granted the Django permissions) may
    view them, only a superuser may add, change, delete or revert one (issue 12: a maintenance dose changed
    to 5000 mcg by one clinic's admin appeared in another clinic's preview). A clinic that needs another
    schedule makes its own copy on /staff/protocols/ (regimens/services/protocols.py), or sets one patient's
    `options`; a running regimen keeps its snapshot either way."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return _superuser(request) and super().has_add_permission(request, *args)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _superuser(request) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _superuser(request) and super().has_delete_permission(request, obj)  # type: ignore[misc]


class ProtocolPhaseInline(SuperuserWritesOnly, admin.StackedInline):  # type: ignore[type-arg]
    model = ProtocolPhase
    extra = 0
    fieldsets = (
        (None, {"fields": (("order", "key", "name"), ("drug", "route", "self_administered"))}),
        ("Dose", {"fields": (("dose_mcg", "dose_unit", "dose_min_mcg", "dose_max_mcg"),)}),
        ("Spacing", {"fields": (("spacing", "spacing_value", "spacing_min", "spacing_max"),)}),
        ("End", {"fields": (("end_condition", "end_value", "end_min", "end_max"), "start_gate", "review_every_days")}),
        ("Source", {"fields": ("prompt", ("source_rule", "evidence_tag"))}),
    )


class ProtocolRecheckStepInline(SuperuserWritesOnly, admin.TabularInline):  # type: ignore[type-arg]
    model = ProtocolRecheckStep
    extra = 0
    fields = ("rule", "day", "window_before", "window_after", "analytes", "note")


@admin.register(Protocol)
class ProtocolAdmin(SuperuserWritesOnly, SimpleHistoryAdmin):
    # Shared protocols (no clinic) and every clinic's own copies; superusers alone edit them here.
    list_display = ("code", "name", "rules", "clinic", "is_builtin", "active")
    list_select_related = ("clinic",)
    list_filter = ("is_builtin", "active", "clinic")
    search_fields = ("code", "name", "rules")
    inlines = (ProtocolPhaseInline, ProtocolRecheckStepInline)

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return not _superuser(request)

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: Any = None
    ) -> HttpResponse:
        # django-simple-history saves the history form on POST whether or not it shows a Revert button.
        if request.method == "POST" and not self.has_change_permission(request):
            raise PermissionDenied("Only a superuser may revert a protocol.")
        response: HttpResponse = super().history_form_view(request, object_id, version_id, extra_context)
        return response


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ScheduledDoseInline(ReadOnlyInline):
    model = ScheduledDose
    fields = (
        "phase",
        "sequence",
        "due_date",
        "status",
        "dose_mcg",
        "route",
        "administered_at",
        "lot_number",
        "site",
        "not_given_reason",
    )
    readonly_fields = fields
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[ScheduledDose]:
        # Cancelled slots are noise on the regimen page; the dose changelist still has them.
        return (
            super()
            .get_queryset(request)
            .exclude(status=DoseStatus.CANCELLED)
            .select_related("regimen__patient", "regimen__protocol")
            .order_by("due_date", "id")
        )


class LabRecheckInline(ReadOnlyInline):
    model = LabRecheck
    fields = ("rule", "due_date", "window_start", "window_end", "analytes", "status", "completed_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[LabRecheck]:
        return super().get_queryset(request).select_related("patient")


class RegimenDecisionInline(ReadOnlyInline):
    model = RegimenDecision
    fields = ("decided_on", "kind", "phase_index", "outcome", "decided_by", "note")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[RegimenDecision]:
        return super().get_queryset(request).select_related("decided_by", "regimen__patient", "regimen__protocol")


@admin.register(Regimen)
class RegimenAdmin(ReadOnlyHistoryAdmin):
    clinic_lookup = "patient__clinic"
    list_display = ("patient", "protocol_code", "clinic", "start_date", "status", "current_phase", "awaiting_gate")
    list_select_related = ("patient__clinic", "protocol")
    list_filter = ("status", "protocol", "patient__clinic", "awaiting_gate")
    search_fields = ("patient__family_name", "patient__given_name", "patient__mrn")
    date_hierarchy = "start_date"
    inlines = (ScheduledDoseInline, LabRecheckInline, RegimenDecisionInline)

    @admin.display(description="Protocol", ordering="protocol__code")
    def protocol_code(self, obj: Regimen) -> str:
        return obj.protocol.code

    @admin.display(description="Clinic", ordering="patient__clinic__name")
    def clinic(self, obj: Regimen) -> str:
        return obj.patient.clinic.name


@admin.register(ScheduledDose)
class ScheduledDoseAdmin(ReadOnlyHistoryAdmin):
    clinic_lookup = "patient__clinic"
    list_display = (
        "due_date",
        "patient",
        "protocol_code",
        "phase",
        "sequence",
        "status",
        "overdue",
        "dose_mcg",
        "route",
        "administered_at",
        "not_given_reason",
    )
    # Rows print the regimen (patient and protocol) and the patient's clinic. A get_queryset with its
    # own select_related would silently switch this off (ChangeList skips it), hence none here.
    list_select_related = ("patient__clinic", "regimen__patient", "regimen__protocol")
    list_filter = ("status", "due_date", "patient__clinic", "self_administered", "regimen__protocol")
    search_fields = ("patient__family_name", "patient__given_name", "patient__mrn", "lot_number")
    date_hierarchy = "due_date"

    @admin.display(description="Protocol", ordering="regimen__protocol__code")
    def protocol_code(self, obj: ScheduledDose) -> str:
        return obj.regimen.protocol.code

    @admin.display(description="Overdue")
    def overdue(self, obj: ScheduledDose) -> str:
        # RULES: a planned dose whose due date has passed is overdue, judged on the patient's
        # own calendar day (as the API does). Words, not a tick: a green tick reads as "fine".
        if obj.status != DoseStatus.PLANNED:
            return ""
        days = (patient_today(obj.patient) - obj.due_date).days
        return f"overdue by {days} day{'s' if days != 1 else ''}" if days > 0 else ""


@admin.register(LabRecheck)
class LabRecheckAdmin(ReadOnlyHistoryAdmin):
    clinic_lookup = "patient__clinic"
    list_display = ("due_date", "patient", "rule", "window_start", "window_end", "status", "description")
    list_select_related = ("patient__clinic", "regimen__patient", "regimen__protocol")
    list_filter = ("status", "rule", "patient__clinic")
    search_fields = ("patient__family_name", "patient__given_name", "patient__mrn", "rule")
    date_hierarchy = "due_date"


@admin.register(Replan)
class ReplanAdmin(ViewOnlyAdmin, admin.ModelAdmin):  # type: ignore[type-arg]
    """The audit of re-plans that moved or cancelled planned doses (one row per re-plan, with its cause):
    read-only, and a clinic admin sees their own clinics' rows only."""

    list_display = ("at", "patient", "regimen", "cause", "user", "moved_count", "cancelled_count", "added")
    list_select_related = ("patient", "regimen__protocol", "regimen__patient", "user")
    list_filter = ("patient__clinic",)
    search_fields = ("cause", "patient__family_name", "patient__mrn")
    date_hierarchy = "at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Replan]:
        queryset = super().get_queryset(request)
        clinics = admin_clinic_ids(request)
        return queryset if clinics is None else queryset.filter(patient__clinic__in=clinics)

    @admin.display(description="Moved")
    def moved_count(self, obj: Replan) -> int:
        return len(obj.moved)

    @admin.display(description="Cancelled")
    def cancelled_count(self, obj: Replan) -> int:
        return len(obj.cancelled)
