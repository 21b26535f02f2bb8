"""Admin for medications and patient facts/events (safety work). Imported by patients/admin.py.

View only: medications and facts are recorded through the API (/api/medications/, /api/patient-facts/),
where the RULES.md §4 safety warnings are checked and acknowledged; an admin form would bypass them.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from patients.models import Medication, PatientFact


class _ClinicalRecordAdmin(SimpleHistoryAdmin):
    def get_queryset(self, request: HttpRequest) -> QuerySet[Model]:
        # Imported late: patients/admin.py imports this module at its top.
        from patients.admin import admin_clinic_ids

        queryset: QuerySet[Model] = super().get_queryset(request)
        clinics = admin_clinic_ids(request)
        if clinics is None:
            return queryset
        return queryset.filter(patient__clinic__in=clinics)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True


@admin.register(Medication)
class MedicationAdmin(_ClinicalRecordAdmin):
    list_display = (
        "start_date",
        "stop_date",
        "patient",
        "kind",
        "name",
        "dose",
        "dose_unit",
        "route",
        "acknowledged_warnings",
        "created_by",
    )
    list_select_related = ("patient", "created_by")
    list_filter = ("kind", "route")
    search_fields = ("patient__mrn", "patient__family_name", "name")
    date_hierarchy = "start_date"
    raw_id_fields = ("patient", "created_by")


@admin.register(PatientFact)
class PatientFactAdmin(_ClinicalRecordAdmin):
    list_display = ("recorded_at", "patient", "kind", "absent", "onset_date", "end_date", "recorded_by")
    list_select_related = ("patient", "recorded_by")
    list_filter = ("kind", "absent")
    search_fields = ("patient__mrn", "patient__family_name", "note")
    date_hierarchy = "recorded_at"
    raw_id_fields = ("patient", "recorded_by")
