"""Admin for lab results, medications and patient facts (view only). Registered through patients/admin.py."""

from __future__ import annotations

from django.contrib import admin

from patients.labs.analytes import format_value
from patients.models import LabResult
from tracker.admin import ReadOnlyHistoryAdmin


@admin.register(LabResult)
class LabResultAdmin(ReadOnlyHistoryAdmin):
    """View only: results are entered through the API or a CSV import, where they are checked,
    converted and interpreted; a clinical record is never edited or deleted here."""

    list_display = (
        "collected_at",
        "patient",
        "analyte",
        "value_as_entered",
        "unit_as_entered",
        "value_shown",
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
    clinic_lookup = "patient__clinic"

    @admin.display(description="Value (canonical unit)", ordering="value_canonical")
    def value_shown(self, result: LabResult) -> str:
        # For people: 100, not 100.000000 or 1E+2 (the exact stored value stays on the detail page).
        return format_value(result.value_canonical, result.analyte) or "-"
