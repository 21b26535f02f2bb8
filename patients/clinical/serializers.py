"""Serializers for medications and patient facts/events. Input serializers check the shape (types,
the user's patients); the clinical checks are the service's (patients/clinical/services.py)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from patients.models import FactKind, Medication, MedicationKind, PatientFact
from patients.serializers import StaffPatientField
from tracker.api import acknowledge_field
from tracker.clock import patient_today


def _enum(values: list[str], description: str) -> dict[str, Any]:
    # Inline enums (no shared component): "kind" means different things on different models.
    return {"type": "string", "enum": values, "description": description}


@extend_schema_field(_enum(list(MedicationKind.values), "Medication kind."))
class MedicationKindField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=MedicationKind.choices, **kwargs)


@extend_schema_field(_enum(list(FactKind.values), "Fact or event kind."))
class FactKindField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=FactKind.choices, **kwargs)


def _user_name(user: Any) -> str | None:
    return user.get_username() if user is not None else None


class MedicationSerializer(serializers.ModelSerializer[Medication]):
    kind = serializers.CharField(read_only=True, help_text=f"One of {', '.join(MedicationKind.values)}.")
    active = serializers.SerializerMethodField(help_text="No stop date, or a stop date today or later.")
    created_by = serializers.SerializerMethodField(help_text="Username of who recorded it.")

    class Meta:
        model = Medication
        fields = [
            "id",
            "patient",
            "kind",
            "name",
            "dose",
            "dose_unit",
            "route",
            "frequency",
            "start_date",
            "stop_date",
            "active",
            "acknowledged_warnings",
            "override_reason",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields

    def get_active(self, medication: Medication) -> bool:
        return medication.stop_date is None or medication.stop_date >= patient_today(medication.patient)

    def get_created_by(self, medication: Medication) -> str | None:
        return _user_name(medication.created_by)


class MedicationCreateSerializer(serializers.Serializer[Any]):
    patient = StaffPatientField()
    kind = MedicationKindField()
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    dose = serializers.DecimalField(max_digits=12, decimal_places=3, required=False, allow_null=True, default=None)
    dose_unit = serializers.CharField(
        max_length=10, required=False, allow_blank=True, default="", help_text="mcg or mg."
    )
    route = serializers.CharField(
        max_length=10, required=False, allow_blank=True, default="", help_text="IM, SC, deep SC, IV, PO, SL or IN."
    )
    frequency = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    start_date = serializers.DateField()
    stop_date = serializers.DateField(required=False, allow_null=True, default=None)
    acknowledge = acknowledge_field()
    override_reason = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required to override a hard-stop warning (folic_acid_before_b12, lebers_disease_cyanocobalamin, "
        "cobalamin_allergy).",
    )


class MedicationUpdateSerializer(serializers.Serializer[Any]):
    stop_date = serializers.DateField(allow_null=True, help_text="The day it was stopped; null to clear.")


class PatientFactSerializer(serializers.ModelSerializer[PatientFact]):
    kind = serializers.CharField(read_only=True, help_text=f"One of {', '.join(FactKind.values)}.")
    present = serializers.SerializerMethodField(
        help_text="Recorded as present and not ended before today (an event: it happened)."
    )
    recorded_by = serializers.SerializerMethodField(help_text="Username of who recorded it.")

    class Meta:
        model = PatientFact
        fields = [
            "id",
            "patient",
            "kind",
            "absent",
            "onset_date",
            "end_date",
            "present",
            "note",
            "recorded_by",
            "recorded_at",
        ]
        read_only_fields = fields

    def get_present(self, fact: PatientFact) -> bool:
        if fact.absent:
            return False
        return fact.end_date is None or fact.end_date >= patient_today(fact.patient)

    def get_recorded_by(self, fact: PatientFact) -> str | None:
        return _user_name(fact.recorded_by)


class PatientFactCreateSerializer(serializers.Serializer[Any]):
    patient = StaffPatientField()
    kind = FactKindField()
    absent = serializers.BooleanField(
        required=False, default=False, help_text="True: checked and NOT present (e.g. no active cancer)."
    )
    onset_date = serializers.DateField(
        required=False, allow_null=True, default=None, help_text="When it began; for a transfusion, its date."
    )
    end_date = serializers.DateField(required=False, allow_null=True, default=None)
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class PatientFactEndSerializer(serializers.Serializer[Any]):
    end_date = serializers.DateField(required=False, allow_null=True, default=None, help_text="Defaults to today.")
