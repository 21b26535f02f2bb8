"""Serializers for patients and clinics. They validate input; writes go through services
where a service exists (clinic calendars) and through the model otherwise (patient records)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone as djtz
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from patients.models import Clinic, Patient
from tracker.clock import EARLIEST_YEAR, local_date
from tracker.permissions import staff_clinic_ids

# RULES "Scope": Cobalt's rules are written for adults, 16 and over.
MINIMUM_AGE_YEARS = 16
# E.164: a plus sign, a country code that does not start with 0, at most 15 digits in all.
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def age_on(birth_date: date, day: date) -> int:
    years = day.year - birth_date.year
    if (day.month, day.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


@extend_schema_field(OpenApiTypes.INT)
class StaffClinicField(serializers.PrimaryKeyRelatedField):
    """A clinic the requesting user works in. Any other id gets the same answer, so the API does not
    reveal which clinics exist."""

    default_error_messages = {
        **serializers.PrimaryKeyRelatedField.default_error_messages,
        "does_not_exist": "Clinic {pk_value} is not one of your clinics.",
    }

    def get_queryset(self) -> QuerySet[Clinic]:
        request = self.context.get("request")
        user = getattr(request, "user", None)
        ids = staff_clinic_ids(user) if user is not None else []
        return Clinic.objects.filter(id__in=ids)


class OptionalEmailField(serializers.CharField):
    """An email address or "" (no address). A CharField with the email check rather than an EmailField, so the
    schema says `string`: `format: email` would make a validator refuse the empty one."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "An email address, or empty when there is none.")
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value: str = super().to_internal_value(data)
        # Checked here, not as a field validator: the schema reads validators and would say `format: email`.
        try:
            EmailValidator()(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError("Enter a valid email address.") from exc
        return value


@extend_schema_field(
    {
        "type": "string",
        "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
        "example": "09:30",
        "description": "HH:MM on the clinic's clock (no offset: the clinic's time zone applies).",
    }
)
class ClinicTimeField(serializers.TimeField):
    """A clinic-local time of day as "HH:MM". An offset is refused: an appointment is at 09:30 on the clinic's
    clock whatever the season, and JSON Schema's "time" format would demand one."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%H:%M", input_formats=["%H:%M"], **kwargs)


class ClinicSerializer(serializers.ModelSerializer[Clinic]):
    email = OptionalEmailField(read_only=True)
    session_start = ClinicTimeField(read_only=True, allow_null=True, help_text="When the injection session starts.")
    session_end = ClinicTimeField(read_only=True, allow_null=True, help_text="When it ends.")
    closed_dates = serializers.SerializerMethodField(help_text="Days the clinic is shut (YYYY-MM-DD).")

    class Meta:
        model = Clinic
        fields = [
            "id",
            "name",
            "timezone",
            "open_weekdays",
            "closed_dates",
            "phone",
            "email",
            "address",
            "session_start",
            "session_end",
            "slot_minutes",
        ]
        read_only_fields = fields

    def get_closed_dates(self, clinic: Clinic) -> list[date]:
        # Uses the prefetched closed_dates of the viewset's queryset.
        return sorted(c.date for c in clinic.closed_dates.all())


class ClinicCalendarSerializer(serializers.Serializer[Any]):
    open_weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6),
        allow_empty=False,
        required=False,
        help_text="The full list of open weekdays: 0 = Monday … 6 = Sunday.",
    )
    closed_dates = serializers.ListField(
        child=serializers.DateField(),
        allow_empty=True,
        required=False,
        help_text="The full list of closed dates (replaces the current list).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError({"detail": "give open_weekdays, closed_dates or both"})
        return attrs


class CalendarJobAcceptedSerializer(serializers.Serializer[Any]):
    job = serializers.URLField(help_text="GET it for the re-plan's status and progress (regimens re-planned so far).")
    clinic = ClinicSerializer(help_text="The clinic with its new calendar (already saved).")


class CalendarLinkSerializer(serializers.Serializer[Any]):
    ical_url = serializers.CharField(
        help_text="The patient's calendar feed address (/ical/{token}.ics); the previous one no longer works."
    )


class PatientSerializer(serializers.ModelSerializer[Patient]):
    clinic = StaffClinicField()
    email = OptionalEmailField(required=False, allow_blank=True, max_length=254)

    class Meta:
        model = Patient
        fields = [
            "id",
            "clinic",
            "mrn",
            "given_name",
            "family_name",
            "birth_date",
            "sex",
            "email",
            "phone",
            "timezone",
            "language",
            "neurological_involvement",
            "deficiency_cause",
            "reminder_channel",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        # The (clinic, mrn) constraint is checked in validate() so the error names `mrn`.
        validators: list[Any] = []

    def validate_phone(self, value: str) -> str:
        value = re.sub(r"[\s\-()]", "", value)
        if value and not E164.match(value):
            raise serializers.ValidationError("must be in E.164 format, for example +447700900123")
        return value

    def validate_mrn(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("may not be blank")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance = self.instance
        clinic = attrs.get("clinic", getattr(instance, "clinic", None))
        mrn = attrs.get("mrn", getattr(instance, "mrn", None))
        if clinic is not None and mrn is not None:
            taken = Patient.objects.filter(clinic=clinic, mrn=mrn)
            if instance is not None:
                taken = taken.exclude(pk=instance.pk)
            if taken.exists():
                raise serializers.ValidationError({"mrn": [f"{mrn} is already used by a patient of this clinic"]})
        birth_date = attrs.get("birth_date")
        if birth_date is not None:
            zone = attrs.get("timezone", getattr(instance, "timezone", "UTC"))
            today = local_date(djtz.now(), zone)
            if birth_date > today:
                raise serializers.ValidationError({"birth_date": ["cannot be in the future"]})
            if birth_date.year < EARLIEST_YEAR:
                # Not a clinical number: nobody alive was born before it; 0001-01-01 or 1800 is a typo.
                raise serializers.ValidationError({"birth_date": [f"cannot be before {EARLIEST_YEAR}"]})
            if age_on(birth_date, today) < MINIMUM_AGE_YEARS:
                raise serializers.ValidationError(
                    {
                        "birth_date": [
                            f"the patient is under {MINIMUM_AGE_YEARS}; Cobalt's rules cover adults "
                            f"{MINIMUM_AGE_YEARS} and over (RULES Scope)"
                        ]
                    }
                )
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Patient:
        try:
            with transaction.atomic():
                return super().create(validated_data)
        except IntegrityError as exc:
            # Two requests raced past validate() with the same MRN; the constraint caught it.
            raise serializers.ValidationError({"mrn": ["is already used by a patient of this clinic"]}) from exc

    def update(self, instance: Patient, validated_data: dict[str, Any]) -> Patient:
        try:
            with transaction.atomic():
                return super().update(instance, validated_data)
        except IntegrityError as exc:
            raise serializers.ValidationError({"mrn": ["is already used by a patient of this clinic"]}) from exc


@extend_schema_field(OpenApiTypes.INT)
class StaffPatientField(serializers.PrimaryKeyRelatedField):
    """A patient of one of the requesting user's clinics; any other id is "not found"."""

    default_error_messages = {
        **serializers.PrimaryKeyRelatedField.default_error_messages,
        "does_not_exist": "Patient {pk_value} was not found among your clinics' patients.",
    }

    def get_queryset(self) -> QuerySet[Patient]:
        request = self.context.get("request")
        user = getattr(request, "user", None)
        ids = staff_clinic_ids(user) if user is not None else []
        return Patient.objects.filter(clinic_id__in=ids).select_related("clinic")
