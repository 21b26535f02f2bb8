"""Clinics, their staff and calendars, and patients."""

from __future__ import annotations

import secrets
import zoneinfo
from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"'{value}' is not an IANA time zone (for example Europe/London).")


def validate_weekdays(value: object) -> None:
    if not isinstance(value, list) or not value or any(
        not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= 6 for d in value
    ):
        raise ValidationError("Open weekdays must be a non-empty list of numbers 0 (Monday) to 6 (Sunday).")


def default_open_weekdays() -> list[int]:
    # RULES.md "Scheduling semantics": the default clinic calendar is Monday–Friday.
    return [0, 1, 2, 3, 4]


class Clinic(models.Model):
    name = models.CharField(max_length=200, unique=True)
    timezone = models.CharField(max_length=64, default="Europe/London", validators=[validate_timezone])
    open_weekdays = models.JSONField(
        default=default_open_weekdays,
        validators=[validate_weekdays],
        help_text="Days the clinic gives injections: 0 = Monday … 6 = Sunday.",
    )
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Receives escalations of unacknowledged high and critical alerts.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def closed_date_set(self) -> frozenset[date]:
        return frozenset(self.closed_dates.values_list("date", flat=True))


class ClosedDate(models.Model):
    """A day the clinic is shut (bank holiday, training day). Doses never land on it."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="closed_dates")
    date = models.DateField()
    note = models.CharField(max_length=200, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["clinic", "date"], name="closed_date_unique")]

    def __str__(self) -> str:
        return f"{self.clinic} closed {self.date}"


class Role(models.TextChoices):
    NURSE = "nurse", "Nurse"
    CLINICIAN = "clinician", "Clinician (prescriber)"
    ADMIN = "admin", "Clinic admin"


class ClinicMembership(models.Model):
    """A staff user works in a clinic. Staff see only the patients of their own clinics."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.NURSE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "clinic"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) at {self.clinic}"


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class DeficiencyCause(models.TextChoices):
    # RULES.md "Deficiency causes".
    PERNICIOUS_ANEMIA = "pernicious_anemia", "Pernicious anaemia"
    AUTOIMMUNE_GASTRITIS = "autoimmune_gastritis", "Autoimmune gastritis"
    GASTRECTOMY = "gastrectomy", "Gastrectomy"
    BARIATRIC_SURGERY = "bariatric_surgery", "Bariatric surgery"
    ILEAL_RESECTION = "ileal_resection", "Ileal resection"
    ILEAL_DISEASE = "ileal_disease", "Ileal disease"
    METFORMIN = "metformin", "Metformin"
    ACID_SUPPRESSION = "acid_suppression", "Acid suppression"
    DIET = "diet", "Diet"
    NITROUS_OXIDE = "nitrous_oxide", "Nitrous oxide"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


# RULES.md "Deficiency causes" / S-5: these need lifelong therapy.
IRREVERSIBLE_CAUSES = frozenset(
    {"pernicious_anemia", "autoimmune_gastritis", "gastrectomy", "bariatric_surgery", "ileal_resection"}
)


class ReminderChannel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    NONE = "none", "No reminders (opted out)"


def new_ical_token() -> str:
    return secrets.token_urlsafe(24)


class Patient(models.Model):
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="patients")
    mrn = models.CharField("MRN", max_length=40, help_text="Medical record number, unique within the clinic.")
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    birth_date = models.DateField()
    sex = models.CharField(max_length=10, choices=Sex.choices)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=32, blank=True, help_text="E.164, for example +447700900123.")
    timezone = models.CharField(max_length=64, default="Europe/London", validators=[validate_timezone])
    language = models.CharField(max_length=10, default="en", help_text="Language for reminders.")
    neurological_involvement = models.BooleanField(default=False)
    deficiency_cause = models.CharField(
        max_length=30, choices=DeficiencyCause.choices, default=DeficiencyCause.UNKNOWN
    )
    reminder_channel = models.CharField(
        max_length=10, choices=ReminderChannel.choices, default=ReminderChannel.EMAIL
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="patient",
        help_text="The patient's own portal login, if any.",
    )
    ical_token = models.CharField(max_length=64, unique=True, default=new_ical_token, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["family_name", "given_name", "id"]
        constraints = [models.UniqueConstraint(fields=["clinic", "mrn"], name="patient_mrn_unique_in_clinic")]
        indexes = [models.Index(fields=["family_name", "given_name"])]

    def __str__(self) -> str:
        return f"{self.family_name}, {self.given_name} ({self.mrn})"

    @property
    def has_irreversible_cause(self) -> bool:
        return self.deficiency_cause in IRREVERSIBLE_CAUSES

    def age_on(self, day: date) -> int:
        years = day.year - self.birth_date.year
        if (day.month, day.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years
