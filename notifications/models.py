"""Alerts for staff, and (below) the delivery outbox."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from patients.models import Patient


class AlertKind(models.TextChoices):
    # RULES "Alert kinds": the kind is the rule name.
    NO_RETICULOCYTE_RESPONSE = "no_reticulocyte_response", "No reticulocyte response (A-H1)"
    HEMOGLOBIN_SLOW_RISE = "hemoglobin_slow_rise", "Hemoglobin rising slowly (A-H2, A-H3)"
    HEMOGLOBIN_NOT_NORMALIZED = "hemoglobin_not_normalized", "Hemoglobin fails to normalize (A-H4)"
    HEMOGLOBIN_FALLING = "hemoglobin_falling", "Hemoglobin falling on treatment (A-H5)"
    MCV_NOT_NORMALIZED = "mcv_not_normalized", "MCV not normalising (A-H6)"
    HEMOGLOBIN_REFRACTORY = "hemoglobin_refractory", "Refractory at 3 months (A-H7)"
    PLATELETS_NOT_RISING = "platelets_not_rising", "Platelets not rising (A-P1)"
    PLATELETS_NOT_NORMALIZED = "platelets_not_normalized", "Platelets fail to normalize (A-P2, A-P4)"
    PLATELETS_CRITICAL = "platelets_critical", "Platelets falling or very low (A-P3)"
    PLATELETS_REBOUND = "platelets_rebound", "Rebound thrombocytosis (A-P5)"
    LDH_NOT_FALLING = "ldh_not_falling", "LDH not falling (A-L1)"
    LDH_NOT_NORMALIZED = "ldh_not_normalized", "LDH not normal (A-L2)"
    FOLIC_ACID_BEFORE_B12 = "folic_acid_before_b12", "Folic acid before B12 (S-1)"
    IM_INJECTION_LOW_PLATELETS = "im_injection_low_platelets", "IM injection with low platelets (S-2)"
    PSEUDO_TMA_PATTERN = "pseudo_tma_pattern", "Possible pseudo-TMA (S-3)"
    DOSE_OVERDUE = "dose_overdue", "Dose overdue (S-4)"
    LIFELONG_THERAPY_STOPPED = "lifelong_therapy_stopped", "Lifelong therapy stopped (S-5)"
    NEURO_TREATMENT_DELAY = "neuro_treatment_delay", "Neurological symptoms, treatment delay (S-6)"
    POTASSIUM_CHECK_DUE = "potassium_check_due", "Potassium check due (S-9)"
    CONTRAINDICATION = "contraindication", "Contraindication (S-10, S-11, S-12)"
    NEURO_REVIEW_DUE = "neuro_review_due", "Neuro loading review due (§1.3)"
    LAB_RECHECK_OVERDUE = "lab_recheck_overdue", "Lab recheck overdue (§3.3)"
    TRANSFUSION_NOTE = "transfusion_note", "Post-transfusion: Hb response not interpretable (§3.6)"
    SAMPLE_AFTER_TREATMENT = "sample_after_treatment", "Sample taken after treatment started (S-13)"
    DELIVERY_FAILED = "delivery_failed", "A reminder or notification could not be delivered"
    CONTACT_MISSING = "contact_missing", "Patient has no usable contact for reminders"
    # RULES §10 revisions.
    TMA_PATTERN_B12_NOT_LOW = "tma_pattern_b12_not_low", "TMA pattern without low B12: exclude TTP (V-7)"
    GATE_PENDING = "gate_pending", "Regimen waiting at a gate (V-9)"
    NEURO_WORSENING = "neuro_worsening", "Neurological worsening at review (§1.3, V-5)"
    ORAL_FIRST_LINE_CAUTION = "oral_first_line_caution", "Oral treatment first line: caution (R-ORAL-1, V-6)"


class Severity(models.TextChoices):
    # RULES §3.2; ordered from least to most urgent.
    INFO = "info", "Info"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK = {"info": 0, "medium": 1, "high": 2, "critical": 3}


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class Alert(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=40, choices=AlertKind.choices)
    rule_id = models.CharField(max_length=20, blank=True, help_text="RULES rule, e.g. A-H4.")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    status = models.CharField(max_length=15, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    message = models.TextField()
    action_text = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True, help_text="Results and facts that triggered it.")
    opened_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledgement_note = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=200, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # RULES §10 V-2: a CRITICAL alert whose target a later result meets stays open, showing that result,
    # until a person acknowledges it.
    target_met_at = models.DateTimeField(null=True, blank=True)
    target_met_evidence = models.JSONField(default=dict, blank=True, help_text="The result that met the target.")
    # RULES §10 V-3: when new evidence made an acknowledged alert unacknowledged again. Staff are notified
    # as if it were new, and escalation counts from here (notifications/staff.py).
    reopened_at = models.DateTimeField(
        null=True, blank=True, help_text="When new evidence reopened it after an acknowledgement (V-3)."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            # RULES §3.6: at most one unresolved alert per patient and kind.
            models.UniqueConstraint(
                fields=["patient", "kind"],
                condition=~Q(status="resolved"),
                name="alert_one_unresolved_per_kind",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "severity"], name="alert_status_severity_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} ({self.severity}) for {self.patient}"


# --- The delivery outbox -----------------------------


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    INBOX = "inbox", "In-app staff inbox"
    WEBHOOK = "webhook", "Webhook"


class Purpose(models.TextChoices):
    DOSE_REMINDER = "dose_reminder", "Dose reminder (patient)"
    RECHECK_REMINDER = "recheck_reminder", "Lab recheck reminder (patient)"
    DOSE_OVERDUE = "dose_overdue", "Missed dose follow-up (patient)"
    APPOINTMENT_MOVED = "appointment_moved", "Appointment moved (patient)"
    HOME_DOSE_PROMPT = "home_dose_prompt", "Monthly note to a patient treated at home (patient)"
    PATIENT_REPLY = "patient_reply", "Answer to a patient's text (STOP, START, HELP)"
    PORTAL_LINK = "portal_link", "Sign-in link to the patient portal"
    ALERT = "alert", "New alert (staff)"
    ESCALATION = "escalation", "Unacknowledged alert escalation (clinic lead)"
    DIGEST = "digest", "Daily digest (staff)"
    STAFF_TASK = "staff_task", "Task for staff"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Delivery(models.Model):
    """One message to one recipient on one channel. Written in the same transaction as its cause;
    `idempotency_key` makes a second write of the same message impossible; a worker claims the row
    (pending -> sending) before it sends, so two workers can never send the same one."""

    idempotency_key = models.CharField(max_length=200, unique=True)
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries",
        help_text="The patient the message is to or about.",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries",
        help_text="The staff recipient, for staff messages.",
    )
    address = models.CharField(max_length=254, blank=True, help_text="Email address or phone number.")
    language = models.CharField(max_length=10, default="en")
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    due_at = models.DateTimeField(help_text="Not sent before this time; moved on by retry backoff.")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="When a worker took it (sending).")
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_id = models.CharField(max_length=200, blank=True)
    read_at = models.DateTimeField(null=True, blank=True, help_text="Inbox messages: when the user read it.")
    dose = models.ForeignKey(
        "regimens.ScheduledDose", null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    recheck = models.ForeignKey(
        "regimens.LabRecheck", null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-due_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(
                fields=["due_at"], condition=Q(status__in=["pending", "sending"]), name="delivery_open_due_idx"
            ),
            models.Index(fields=["user", "channel", "read_at"], name="delivery_inbox_idx"),
            # The outbox sweep's reclaim of expired leases: the few rows being sent, not every open one.
            models.Index(fields=["claimed_at"], condition=Q(status="sending"), name="delivery_sending_claimed_idx"),
            # queue_health's sends and failures of the last day by channel: a range of this index, not a scan of
            # the outbox's whole history.
            models.Index(
                fields=["updated_at"],
                include=["status", "channel"],
                condition=Q(status__in=["sent", "failed"]),
                name="delivery_done_updated_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} via {self.channel} due {self.due_at:%Y-%m-%d %H:%M} ({self.status})"


class AttemptOutcome(models.TextChoices):
    SENT = "sent", "Sent"
    TRANSIENT = "transient", "Transient failure (will retry)"
    PERMANENT = "permanent", "Permanent failure"


class DeliveryAttempt(models.Model):
    """Every attempt to send a delivery, kept for the log."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    attempted_at = models.DateTimeField()
    outcome = models.CharField(max_length=10, choices=AttemptOutcome.choices)
    error = models.TextField(blank=True)
    provider_id = models.CharField(max_length=200, blank=True)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.outcome}"


class PortalLink(models.Model):
    """A single-use sign-in link to the patient portal (/me/), sent by email or text on request. Only the
    SHA-256 of the random token is stored: a database reader cannot sign in as a patient."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="portal_links")
    token_hash = models.CharField(max_length=64, unique=True)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"portal link for patient {self.patient_id} ({'used' if self.used_at else 'unused'})"
