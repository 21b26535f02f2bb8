"""Protocols (regimen templates as data), regimens, scheduled doses and lab rechecks.

The schedule itself is computed by the pure engine in regimens/schedule.py; these rows are
its persisted output plus what actually happened (administrations, doses not given,
clinician decisions), which is the engine's input on the next re-plan.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from patients.models import Clinic, JobStatus, Patient


class Drug(models.TextChoices):
    HYDROXOCOBALAMIN = "hydroxocobalamin", "Hydroxocobalamin"
    CYANOCOBALAMIN = "cyanocobalamin", "Cyanocobalamin"


class Route(models.TextChoices):
    # RULES §1.1 routes.
    IM = "IM", "Intramuscular"
    SC = "SC", "Subcutaneous"
    DEEP_SC = "deep SC", "Deep subcutaneous"
    PO = "PO", "Oral"
    SL = "SL", "Sublingual"
    IN = "IN", "Intranasal"
    IV = "IV", "Intravenous"


# RULES §7.3: the routes taken by mouth or nose (the oral protocols of R-ORAL-1, R-BARI-1, R-UK-5).
ORAL_ROUTES = frozenset({Route.PO.value, Route.SL.value, Route.IN.value})


class Spacing(models.TextChoices):
    # RULES "Scheduling semantics": spacing rules.
    DAILY = "daily", "Daily"
    ALTERNATE_DAYS = "alternate_days", "Alternate days"
    TIMES_PER_WEEK = "times_per_week", "N times a week"
    EVERY_N_DAYS = "every_n_days", "Every N days"
    EVERY_N_WEEKS = "every_n_weeks", "Every N weeks"
    MONTHLY = "monthly", "Every N calendar months"


class EndCondition(models.TextChoices):
    # RULES §1.1 end conditions. The conditional gate is modelled on the *next* phase
    # (ProtocolPhase.start_gate): the phase starts only after a clinician confirms it.
    FIXED_COUNT = "fixed_count", "After a number of doses given"
    FIXED_DURATION = "fixed_duration", "After a number of days"
    CLINICIAN_ENDED = "clinician_ended", "When a clinician ends it"
    UNTIL_CAUSE_RESOLVED = "until_cause_resolved", "Until the cause is resolved (clinician ends it)"
    LIFELONG = "lifelong", "Lifelong"


class Protocol(models.Model):
    code = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    rules = models.CharField(max_length=200, help_text="RULES rule IDs this protocol implements.")
    source = models.TextField(help_text="Where the regimen comes from (RULES §0.2 source IDs).")
    is_builtin = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    # Issue 12: shared protocols (built-in or a superuser's) have no clinic and only superusers edit them; a
    # clinic admin makes their clinic's own copy (regimens/services/protocols.py) and localises that one.
    clinic = models.ForeignKey(
        "patients.Clinic",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="protocols",
        help_text="The clinic whose own copy this is; empty: shared by every clinic.",
    )
    copied_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="copies",
        help_text="The shared protocol this clinic's copy was made from.",
    )
    history = HistoricalRecords()
    # tracker.api.clinic_scoped: a protocol with no clinic is every clinic's.
    shared_without_clinic = True

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class ProtocolPhase(models.Model):
    protocol = models.ForeignKey(Protocol, on_delete=models.CASCADE, related_name="phases")
    order = models.PositiveSmallIntegerField()
    key = models.SlugField(max_length=30, help_text="Short name used in options, e.g. 'loading'.")
    name = models.CharField(max_length=100)
    drug = models.CharField(max_length=30, choices=Drug.choices)
    dose_mcg = models.PositiveIntegerField(help_text="Dose in micrograms (1 mg = 1000 mcg, RULES §1.1).")
    dose_unit = models.CharField(max_length=5, default="mcg", help_text="Unit shown to people: mcg or mg.")
    dose_min_mcg = models.PositiveIntegerField(null=True, blank=True)
    dose_max_mcg = models.PositiveIntegerField(null=True, blank=True)
    route = models.CharField(max_length=10, choices=Route.choices)
    spacing = models.CharField(max_length=20, choices=Spacing.choices)
    spacing_value = models.PositiveSmallIntegerField(default=1)
    spacing_min = models.PositiveSmallIntegerField(null=True, blank=True)
    spacing_max = models.PositiveSmallIntegerField(null=True, blank=True)
    end_condition = models.CharField(max_length=30, choices=EndCondition.choices)
    end_value = models.PositiveIntegerField(
        null=True, blank=True, help_text="Dose count (fixed_count) or days (fixed_duration)."
    )
    end_min = models.PositiveIntegerField(null=True, blank=True)
    end_max = models.PositiveIntegerField(null=True, blank=True)
    start_gate = models.CharField(
        max_length=200,
        blank=True,
        help_text="If set, this phase starts only after a clinician confirms this condition.",
    )
    review_every_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Clinician review prompt interval while the phase is open."
    )
    self_administered = models.BooleanField(
        default=False, help_text="Taken at home (oral): ignores clinic days."
    )
    prompt = models.TextField(blank=True, help_text="Shown to staff when the phase starts.")
    source_rule = models.CharField(max_length=60)
    evidence_tag = models.CharField(max_length=10, help_text="RULES §0.1 tag: V, S, SEED, P, U.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["protocol", "order"]
        constraints = [
            models.UniqueConstraint(fields=["protocol", "order"], name="phase_order_unique"),
            models.UniqueConstraint(fields=["protocol", "key"], name="phase_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.protocol.code} · {self.order}. {self.name}"


class ProtocolRecheckStep(models.Model):
    """A protocol-specific lab recheck on top of the general plan of RULES §2."""

    protocol = models.ForeignKey(Protocol, on_delete=models.CASCADE, related_name="recheck_steps")
    rule = models.CharField(max_length=20, help_text="RULES §2 rule ID, e.g. L-11.")
    day = models.PositiveSmallIntegerField(help_text="Days after T0 (the first dose).")
    window_before = models.PositiveSmallIntegerField(default=0)
    window_after = models.PositiveSmallIntegerField(default=0)
    analytes = models.JSONField(default=list)
    note = models.CharField(max_length=200, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["protocol", "day"]

    def __str__(self) -> str:
        return f"{self.protocol.code} {self.rule} day {self.day}"


class RegimenStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    STOPPED = "stopped", "Stopped"
    COMPLETED = "completed", "Completed"


class Regimen(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="regimens")
    protocol = models.ForeignKey(Protocol, on_delete=models.PROTECT, related_name="regimens")
    start_date = models.DateField()
    options = models.JSONField(default=dict, blank=True)
    protocol_snapshot = models.JSONField(
        default=dict,
        blank=True,
        help_text="The protocol's phases and recheck steps as they were when the regimen started: "
        "later edits of the protocol apply to new regimens, never silently to this one.",
    )
    override_reason = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=RegimenStatus.choices, default=RegimenStatus.ACTIVE)
    current_phase = models.PositiveSmallIntegerField(default=0, help_text="Index of the phase in progress.")
    extend_on = models.DateField(
        null=True, blank=True, help_text="When the periodic task must plan further ahead (rolling horizon)."
    )
    awaiting_gate = models.BooleanField(default=False, help_text="Waiting for a clinician to confirm a gate.")
    stopped_at = models.DateTimeField(null=True, blank=True)
    stopped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    stop_reason = models.TextField(blank=True)
    acknowledged_warnings = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    planned_lab_inputs = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="The T0 and lab flags (RULES §2) the stored recheck plan was built from (set by every re-plan); "
        "a new result or fact that leaves them unchanged does not re-plan. Empty: not known yet.",
    )
    # planned_lab_inputs is derived from the results and facts (which keep their own history): not in history.
    history = HistoricalRecords(excluded_fields=["planned_lab_inputs"])

    class Meta:
        ordering = ["-start_date", "-id"]
        indexes = [
            models.Index(fields=["extend_on"], condition=Q(status="active"), name="regimen_extend_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.patient} · {self.protocol.code} from {self.start_date}"


class DecisionKind(models.TextChoices):
    END_PHASE = "end_phase", "Phase ended by clinician"
    CONFIRM_GATE = "confirm_gate", "Gate condition confirmed"
    REVIEW = "review", "Phase review"
    # RULES R-UK-4 (NG239): the clinician shortens the interval of the phase in progress (never lengthens it).
    INTERVAL_SHORTENED = "interval_shortened", "Interval shortened"


class ReviewOutcome(models.TextChoices):
    # RULES §1.3 review outcomes.
    STILL_IMPROVING = "still_improving", "Still improving"
    PLATEAU_REACHED = "plateau_reached", "Plateau reached"
    WORSENING = "worsening", "Worsening"
    SPECIALIST_REVIEW_PENDING = "specialist_review_pending", "Specialist review pending"


class RegimenDecision(models.Model):
    """A clinician decision: a phase ended, a gate confirmed, a review, an interval shortened (R-UK-4)."""

    regimen = models.ForeignKey(Regimen, on_delete=models.CASCADE, related_name="decisions")
    phase_index = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=20, choices=DecisionKind.choices)
    outcome = models.CharField(max_length=30, choices=ReviewOutcome.choices, blank=True)
    decided_on = models.DateField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["decided_on", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} (phase {self.phase_index}) on {self.decided_on}"


class DoseStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    GIVEN = "given", "Given"
    NOT_GIVEN = "not_given", "Not given"
    CANCELLED = "cancelled", "Cancelled"
    # RULES §10 V-14: a record corrected later; it stays visible, struck through, and the slot is planned again.
    ENTERED_IN_ERROR = "entered_in_error", "Entered in error"


class ScheduledDose(models.Model):
    regimen = models.ForeignKey(Regimen, on_delete=models.CASCADE, related_name="doses")
    # Denormalised from the regimen so worklists filter by patient and clinic without joins.
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="doses")
    # Denormalised from the patient (kept in sync: set when the row is written, moved with the patient,
    # regimens/listeners.py) so the clinic worklist reads one index, never a join through every patient.
    clinic = models.ForeignKey(
        "patients.Clinic", on_delete=models.CASCADE, related_name="+", db_index=False, editable=False
    )
    phase_index = models.PositiveSmallIntegerField()
    phase = models.CharField(max_length=30, help_text="The phase key, e.g. 'loading'.")
    sequence = models.PositiveIntegerField(help_text="Dose number within its phase (1 = first).")
    due_date = models.DateField()
    appointment_time = models.TimeField(
        null=True, blank=True, help_text="Clinic-local time of the appointment; empty: the clinic's session start."
    )
    drug = models.CharField(max_length=30, choices=Drug.choices)
    dose_mcg = models.PositiveIntegerField()
    dose_unit = models.CharField(max_length=5, default="mcg")
    route = models.CharField(max_length=10, choices=Route.choices)
    self_administered = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=DoseStatus.choices, default=DoseStatus.PLANNED)
    administered_at = models.DateTimeField(null=True, blank=True)
    administered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lot_number = models.CharField(max_length=60, blank=True)
    expiry_date = models.DateField(null=True, blank=True)
    site = models.CharField(max_length=60, blank=True)
    given_route = models.CharField(max_length=10, choices=Route.choices, blank=True)
    not_given_reason = models.CharField(max_length=200, blank=True)
    not_given_on = models.DateField(null=True, blank=True)
    recorded_at = models.DateTimeField(null=True, blank=True)
    acknowledged_warnings = models.JSONField(default=list, blank=True)
    # RULES §10 V-14: who marked the record entered in error, when and why.
    error_reason = models.TextField(blank=True)
    error_recorded_at = models.DateTimeField(null=True, blank=True)
    error_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["due_date", "id"]
        constraints = [
            # One live dose per slot: a slot is planned or given once; a dose not given keeps its
            # row and its replacement is a new planned row for the same slot.
            models.UniqueConstraint(
                fields=["regimen", "phase_index", "sequence"],
                condition=Q(status__in=["planned", "given"]),
                name="dose_slot_unique_live",
            ),
        ]
        indexes = [
            # Worklists and sweeps only look at what is still pending.
            models.Index(fields=["due_date"], condition=Q(status="planned"), name="dose_planned_due_idx"),
            models.Index(fields=["patient", "due_date"], name="dose_patient_due_idx"),
            # The clinic worklist: a clinic's doses of a day (any status), and its planned doses by due
            # date (the day's and the overdue ones), each one index range, read in the page's order (due date,
            # then id): the first page is the index's first 50 entries, not a sort of the clinic's day.
            models.Index(fields=["clinic", "due_date", "id"], name="dose_clinic_due_idx"),
            # The dashboard's reasons for doses not given (monitoring/dashboard.py): the few not-given rows of a
            # clinic's period, not a scan of its months of doses (PostgreSQL reads the reason from the index).
            models.Index(
                fields=["clinic", "due_date"],
                include=["not_given_reason"],
                condition=Q(status="not_given"),
                name="dose_clinic_not_given_idx",
            ),
            # The patient rides along (INCLUDE) for the overdue count while a clinic's patients straddle midnight:
            # the doses of the boundary date are matched against the patients in the zones past it from the index
            # alone, no visit to each dose row (issue 16: 100 -> 20 ms at 100,000 patients).
            models.Index(
                fields=["clinic", "due_date", "id"],
                include=["patient"],
                condition=Q(status="planned"),
                name="dose_clinic_planned_due_idx",
            ),
            # A regimen's T0, its first dose given (regimen_t0, and per patient in the dashboard's time to
            # normalization, monitoring/normalization.py): the first entry of this index, not every dose.
            models.Index(
                fields=["regimen", "administered_at"],
                condition=Q(status="given", administered_at__isnull=False),
                name="dose_regimen_given_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.regimen} · {self.phase} #{self.sequence} on {self.due_date} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.clinic_id is None and self.patient_id is not None:
            self.clinic_id = Patient.objects.values_list("clinic_id", flat=True).get(pk=self.patient_id)
        super().save(*args, **kwargs)


class RecheckStatus(models.TextChoices):
    DUE = "due", "Due"
    DONE = "done", "Done"
    OVERDUE = "overdue", "Overdue"
    CANCELLED = "cancelled", "Cancelled"


class LabRecheck(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="lab_rechecks")
    regimen = models.ForeignKey(Regimen, on_delete=models.CASCADE, related_name="lab_rechecks")
    rule = models.CharField(max_length=20, help_text="RULES §2 rule ID, e.g. L-6.")
    key = models.CharField(max_length=40, help_text="Stable identity within the regimen, e.g. 'L-6@14'.")
    due_date = models.DateField()
    window_start = models.DateField()
    window_end = models.DateField()
    analytes = models.JSONField(default=list)
    description = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, choices=RecheckStatus.choices, default=RecheckStatus.DUE)
    completed_at = models.DateTimeField(null=True, blank=True)
    # RULES §10 V-10: a clinician closed it by hand (completed elsewhere, with a note; or cancelled, with a reason).
    close_note = models.TextField(blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["due_date", "id"]
        constraints = [models.UniqueConstraint(fields=["regimen", "key"], name="recheck_key_unique")]
        indexes = [
            models.Index(fields=["window_end"], condition=Q(status="due"), name="recheck_due_idx"),
            # The dashboard's rechecks due and overdue: a clinic's open rechecks, not every recheck done.
            models.Index(
                fields=["patient"],
                include=["status", "window_start", "window_end"],
                condition=Q(status__in=["due", "overdue"]),
                name="recheck_open_patient_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient} {self.rule} due {self.due_date} ({self.status})"


class Replan(models.Model):
    """One re-plan that moved or cancelled planned doses, audited as one event with its cause (issue 12).

    The doses themselves are written in bulk (one UPDATE for hundreds of rows), which leaves no history row
    per dose; this row says what changed, why, when and on whose action. Recorded doses never change."""

    regimen = models.ForeignKey(Regimen, on_delete=models.CASCADE, related_name="replans")
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    cause = models.CharField(max_length=200, help_text="What re-planned the doses, e.g. the clinic calendar changed.")
    at = models.DateTimeField(auto_now_add=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    moved = models.JSONField(default=list, blank=True, help_text='[{"dose": id, "from": date, "to": date}]')
    cancelled = models.JSONField(default=list, blank=True, help_text="Ids of the planned doses cancelled.")
    added = models.PositiveIntegerField(default=0, help_text="Planned doses added.")
    # One value per re-plan call: every regimen a clinic calendar change re-plans shares it, so the audit log
    # shows the change as one event; a single-regimen re-plan has its own. Null on rows written before.
    batch = models.UUIDField(null=True, blank=True, db_index=True, help_text="The re-plan call this row belongs to.")

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.cause}: {len(self.moved)} moved, {len(self.cancelled)} cancelled, {self.added} added"


ReplanJobStatus = JobStatus


class ReplanJob(models.Model):
    """A large clinic calendar change re-planned by a Celery worker in batches (regimens/jobs.py, issue 16):
    its progress, and where it got to so that a stopped job resumes after the last batch it committed."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+")
    cause = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=ReplanJobStatus.choices, default=ReplanJobStatus.QUEUED)
    regimens_total = models.PositiveIntegerField(default=0, help_text="Active regimens of the clinic at the change.")
    regimens_done = models.PositiveIntegerField(default=0, help_text="Regimens re-planned so far.")
    last_regimen_id = models.BigIntegerField(
        default=0, help_text="The highest regimen id re-planned so far (regimens are re-planned in id order)."
    )
    audit_batch = models.UUIDField(default=uuid.uuid4, help_text="Replan.batch of every audit row the job writes.")
    error_message = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Times a worker claimed the job.")
    heartbeat_at = models.DateTimeField(
        default=timezone.now, help_text="Queued, claimed, each batch committed: a job silent too long is resumed."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"re-plan job {self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (ReplanJobStatus.DONE, ReplanJobStatus.FAILED)
