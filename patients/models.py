"""Clinics, their staff and calendars, and patients."""

from __future__ import annotations

import secrets
import zoneinfo
from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from patients.labs.analytes import format_value


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"'{value}' is not an IANA time zone (for example Europe/London).")


def validate_weekdays(value: object) -> None:
    if not isinstance(value, list) or not value or any(
        not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= 6 for d in value
    ):
        raise ValidationError("Open weekdays must be a non-empty list of numbers 0 (Monday) to 6 (Sunday).")


def default_open_weekdays() -> list[int]:
    # RULES "Scheduling semantics": the default clinic calendar is Monday–Friday.
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
    email = models.EmailField(blank=True, help_text="Patients' emails carry it as Reply-To.")
    address = models.TextField(
        blank=True, help_text="Postal address: printed on injection cards and in patients' calendar feed."
    )
    # Appointment times (optional): a dose without its own time is at the first session's start.
    session_start = models.TimeField(null=True, blank=True, help_text="When the clinic's injection session starts.")
    session_end = models.TimeField(null=True, blank=True, help_text="When it ends (appointments start before).")
    slot_minutes = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Length of one appointment in minutes (calendar events last this long)."
    )
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

    def clean(self) -> None:
        if (self.session_start is None) != (self.session_end is None):
            raise ValidationError({"session_end": "give both the start and the end of the session, or neither"})
        if self.session_start and self.session_end and self.session_end <= self.session_start:
            raise ValidationError({"session_end": "must be after the session starts"})

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
    # RULES "Deficiency causes".
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


# RULES "Deficiency causes" / S-5: these need lifelong therapy.
IRREVERSIBLE_CAUSES = frozenset(
    {"pernicious_anemia", "autoimmune_gastritis", "gastrectomy", "bariatric_surgery", "ileal_resection"}
)


class ReminderChannel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    NONE = "none", "No reminders (opted out)"


def new_ical_token() -> str:
    return secrets.token_urlsafe(24)


# Languages patients' messages and pages are written in (notifications/messages.py has the texts).
PATIENT_LANGUAGES = (("en", "English"), ("es", "Español"))


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
        indexes = [
            models.Index(fields=["family_name", "given_name"]),
            # The time zones of a clinic's patients, a few lookups whatever its size (patients.selectors.
            # clinic_patient_zones): the overdue worklist's "today" per zone (issue 16); with the id (INCLUDE), the
            # clinic's patients in the zones past midnight come from the index alone (regimens.filters.
            # before_local_today's set match).
            models.Index(fields=["clinic", "timezone"], include=["id"], name="patient_clinic_zone_idx"),
        ]

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


# --- Monitoring data): lab results, medications, clinical facts and events -------------


class ResultSource(models.TextChoices):
    ENTERED = "entered", "Entered by staff"
    IMPORTED = "imported", "Imported (CSV or interface)"


class Interpretation(models.TextChoices):
    # Against the reporting lab's range when given, else the RULES §5.2 defaults.
    CRITICALLY_LOW = "critically_low", "Critically low"
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    CRITICALLY_HIGH = "critically_high", "Critically high"
    PRESENT = "present", "Present"
    ABSENT = "absent", "Absent"
    UNKNOWN = "", "No range"


class LabResult(models.Model):
    """One lab result: the value and unit as entered, and the value in the analyte's canonical unit
    (patients/labs/analytes.py). Qualitative analytes (schistocytes) keep `presence` instead."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="lab_results")
    analyte = models.CharField(max_length=30, help_text="RULES analyte code, e.g. hemoglobin.")
    loinc = models.CharField(max_length=20, help_text="The LOINC code the lab sent, or the analyte's preferred one.")
    value_as_entered = models.CharField(max_length=40, help_text="The value exactly as entered or imported.")
    unit_as_entered = models.CharField(max_length=30, blank=True)
    value_canonical = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    unit_canonical = models.CharField(max_length=30, blank=True)
    presence = models.CharField(
        max_length=10, blank=True, help_text="For qualitative analytes (schistocytes): present or absent."
    )
    ref_low = models.DecimalField(
        max_digits=18, decimal_places=6, null=True, blank=True, help_text="Reporting lab's LLN, canonical unit."
    )
    ref_high = models.DecimalField(
        max_digits=18, decimal_places=6, null=True, blank=True, help_text="Reporting lab's ULN, canonical unit."
    )
    interpretation = models.CharField(max_length=20, choices=Interpretation.choices, blank=True)
    collected_at = models.DateTimeField()
    reported_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=10, choices=ResultSource.choices, default=ResultSource.ENTERED)
    lab = models.CharField(
        max_length=100, blank=True, help_text="Reporting lab or assay identifier (RULES §5.1 cut-offs)."
    )
    import_batch = models.CharField(max_length=64, blank=True)
    note = models.CharField(max_length=500, blank=True)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # RULES §10 V-14: a result marked entered in error stays visible; no rule reads it any more.
    error_reason = models.TextField(blank=True)
    error_recorded_at = models.DateTimeField(null=True, blank=True)
    error_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-collected_at", "-id"]
        indexes = [
            models.Index(fields=["patient", "analyte", "collected_at"], name="labresult_patient_idx"),
            # The patients with a result below the normal range (the only ones the time to normalization can
            # measure, monitoring/normalization.py): a small index of the low results, not every patient's lookups.
            models.Index(
                fields=["patient", "analyte"],
                condition=Q(interpretation__in=["low", "critically_low"], error_recorded_at__isnull=True),
                name="labresult_below_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(value_canonical__isnull=True) | Q(value_canonical__gte=0),
                name="labresult_value_nonnegative",
            ),
        ]

    def __str__(self) -> str:
        shown = self.presence or f"{format_value(self.value_canonical, self.analyte)} {self.unit_canonical}"
        return f"{self.analyte} {shown} for {self.patient_id} at {self.collected_at:%Y-%m-%d}"


class JobStatus(models.TextChoices):
    """The status of a job a Celery worker runs: a large lab import, a large calendar change's re-plan."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


ImportJobStatus = JobStatus


class LabImportJob(models.Model):
    """A large CSV import run by a Celery worker (patients/labs/jobs.py): the uploaded text until the job
    ends, its progress while it runs and the importer's report once it is done. Never edited by hand."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    keep_valid = models.BooleanField(default=False)
    content = models.TextField(blank=True, help_text="The uploaded CSV text; emptied when the job ends.")
    status = models.CharField(max_length=10, choices=ImportJobStatus.choices, default=ImportJobStatus.QUEUED)
    stage = models.CharField(max_length=10, blank=True, help_text="checking, then writing (importer.Progress).")
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0, help_text="Rows checked so far.")
    report = models.JSONField(null=True, blank=True, help_text="The importer's report once done.")
    error_field = models.CharField(max_length=40, blank=True)
    error_message = models.CharField(max_length=500, blank=True, help_text="Why a failed job stored nothing.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        default=timezone.now,
        help_text="The last sign of life: queued, claimed by a worker, each progress step, the write's commit. "
        "A job silent for COBALT_IMPORT_STALE_SECONDS lost its worker and is shown as failed.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"lab import {self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (ImportJobStatus.DONE, ImportJobStatus.FAILED)


class MedicationKind(models.TextChoices):
    FOLIC_ACID = "folic_acid", "Folic acid"
    CYANOCOBALAMIN = "cyanocobalamin", "Cyanocobalamin"
    HYDROXOCOBALAMIN = "hydroxocobalamin", "Hydroxocobalamin"
    IRON = "iron", "Iron"
    OTHER = "other", "Other"


class Medication(models.Model):
    """A concomitant medication (RULES S-1 folic acid; S-10..S-12 drug and route checks)."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="medications")
    kind = models.CharField(max_length=20, choices=MedicationKind.choices)
    name = models.CharField(max_length=200, blank=True, help_text="Product or free-text name.")
    dose = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    dose_unit = models.CharField(max_length=10, blank=True, help_text="mcg or mg.")
    route = models.CharField(max_length=10, blank=True, help_text="IM, SC, deep_SC, IV, PO, SL, IN.")
    frequency = models.CharField(max_length=100, blank=True)
    start_date = models.DateField()
    stop_date = models.DateField(null=True, blank=True)
    acknowledged_warnings = models.JSONField(default=list, blank=True)
    override_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-start_date", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(stop_date__isnull=True) | Q(stop_date__gte=models.F("start_date")),
                name="medication_stop_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} from {self.start_date} for {self.patient_id}"


class FactKind(models.TextChoices):
    # §3.6: a transfusion suppresses A-H2..A-H4 for 14 days (an event: `onset_date` is its date).
    TRANSFUSION = "transfusion", "Blood transfusion (event)"
    # S-6: neurological symptoms and their onset date.
    NEURO_SYMPTOMS = "neuro_symptoms", "Neurological symptoms"
    # L-8 / §5.2: pregnancy (review after 1 month, Hb LLN 110 g/L); `end_date` when it ends.
    PREGNANCY = "pregnancy", "Pregnancy"
    BREASTFEEDING = "breastfeeding", "Breastfeeding"
    # S-10: Leber hereditary optic neuropathy, or optic atrophy of unknown cause.
    LEBERS_DISEASE = "lebers_disease", "Leber's disease (LHON) or optic atrophy of unknown cause"
    # S-11: cobalt or cobalamin hypersensitivity.
    COBALAMIN_ALLERGY = "cobalamin_allergy", "Cobalt or cobalamin allergy"
    # PLASMIC §6.1 components 3 and 4.
    ACTIVE_CANCER = "active_cancer", "Active cancer (in the previous year)"
    TRANSPLANT = "transplant", "Solid-organ or stem-cell transplant"
    # S-5: IF-antibody positive means lifelong therapy.
    IF_ANTIBODY_POSITIVE = "if_antibody_positive", "Intrinsic factor antibody positive"
    # S-9: "severe megaloblastic anaemia" flag.
    SEVERE_MEGALOBLASTIC = "severe_megaloblastic", "Severe megaloblastic anaemia"
    # L-2: inpatient with severe anaemia.
    INPATIENT = "inpatient", "Inpatient"


class PatientFact(models.Model):
    """A clinical fact (a condition with an onset and, when it ends, an end date) or an event
    (transfusion: `onset_date` is the day it happened). `absent=True` records that the fact was
    checked and is NOT present (PLASMIC needs "no active cancer" as a known answer, not a gap)."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="facts")
    kind = models.CharField(max_length=30, choices=FactKind.choices)
    absent = models.BooleanField(default=False, help_text="Checked and not present.")
    onset_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    note = models.TextField(blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [models.Index(fields=["patient", "kind"], name="fact_patient_kind_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True)
                | Q(onset_date__isnull=True)
                | Q(end_date__gte=models.F("onset_date")),
                name="fact_end_after_onset",
            ),
        ]

    def __str__(self) -> str:
        return f"{'No ' if self.absent else ''}{self.get_kind_display()} for {self.patient_id}"


# --- The staff side of the audit log ------------------------------------------------------------------


class StaffEventKind(models.TextChoices):
    SIGNED_IN = "signed_in", "Signed in"
    SIGN_IN_FAILED = "sign_in_failed", "Sign-in failed"
    INVITED = "staff_invited", "Staff invited"
    ROLE_CHANGED = "staff_role_changed", "Staff role changed"
    DEACTIVATED = "staff_deactivated", "Staff deactivated"
    REACTIVATED = "staff_reactivated", "Staff reactivated"


class StaffEvent(models.Model):
    """A sign-in (or a failed one) and every change a clinic admin makes to staff: the audit log shows
    them beside the clinical records' history (django-simple-history). Rows are only ever added."""

    at = models.DateTimeField()
    kind = models.CharField(max_length=30, choices=StaffEventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Who did it (none for a failed sign-in).",
    )
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The account concerned: who signed in, whose sign-in failed, or the staff member changed.",
    )
    username = models.CharField(max_length=150, blank=True, help_text="The username as typed (sign-ins).")
    clinic = models.ForeignKey(
        Clinic, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="The clinic of a staff change; none for sign-ins (they show in each clinic of the account).",
    )
    details = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["at"], name="staffevent_at_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.username} at {self.at:%Y-%m-%d %H:%M}"
