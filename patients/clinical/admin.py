"""Admin for medications and patient facts/events (view only). Registered through patients/admin.py.

View only: medications and facts are recorded through the API (/api/medications/, /api/patient-facts/),
where the RULES §4 safety warnings are checked and acknowledged; an admin form would bypass them.
"""

from __future__ import annotations

from django.contrib import admin

from patients.models import Medication, PatientFact
from tracker.admin import ReadOnlyHistoryAdmin


class _ClinicalRecordAdmin(ReadOnlyHistoryAdmin):
    clinic_lookup = "patient__clinic"


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
