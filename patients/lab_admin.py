"""Admin for lab results, medications and patient facts (monitoring work). Imported by patients/admin.py."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from patients.models import LabResult


@admin.register(LabResult)
class LabResultAdmin(SimpleHistoryAdmin):
    """View only: results are entered through the API or a CSV import, where they are checked,
    converted and interpreted; a clinical record is never edited or deleted here."""

    list_display = (
        "collected_at",
        "patient",
        "analyte",
        "value_as_entered",
        "unit_as_entered",
        "value_canonical",
        "unit_canonical",
        "presence",
        "interpretation",
        "source",
        "lab",
    )
    list_select_related = ("patient",)
    list_filter = ("analyte", "interpretation", "source")
    search_fields = ("patient__mrn", "patient__family_name", "loinc", "import_batch")
    date_hierarchy = "collected_at"
    raw_id_fields = ("patient", "entered_by")

    def get_queryset(self, request: HttpRequest) -> QuerySet[LabResult]:
        # Imported late: patients/admin.py imports this module at its top.
        from patients.admin import admin_clinic_ids

        queryset: QuerySet[LabResult] = super().get_queryset(request)
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
