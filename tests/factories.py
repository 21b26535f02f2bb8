"""factory_boy factories shared by the whole suite: one per concrete model of patients, regimens and
notifications, and the User (tests/tracker/test_factories.py checks that every one saves a valid row).

Rows that belong together are built together: a dose or a recheck belongs to the patient of its
regimen, a regimen runs a real built-in protocol (regimens/protocol_data.py) and keeps its snapshot,
and a dose copies drug, dose and route from the phase it is in.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.db.models import Max
from django.utils import timezone

from monitoring.models import PendingEvaluation
from notifications.models import (
    Alert,
    AlertKind,
    AlertStatus,
    AttemptOutcome,
    Channel,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    PortalLink,
    Purpose,
    Severity,
)
from patients.models import (
    Clinic,
    ClinicMembership,
    ClosedDate,
    DeficiencyCause,
    FactKind,
    Interpretation,
    LabImportJob,
    LabResult,
    Medication,
    MedicationKind,
    Patient,
    PatientFact,
    ResultSource,
    Role,
    StaffEvent,
    StaffEventKind,
)
from regimens.models import (
    DecisionKind,
    DoseStatus,
    LabRecheck,
    Protocol,
    ProtocolPhase,
    ProtocolRecheckStep,
    RecheckStatus,
    Regimen,
    RegimenDecision,
    RegimenStatus,
    Replan,
    ReplanJob,
    ReviewOutcome,
    ScheduledDose,
    Spacing,
)
from tests.timeline import T0

# The protocol a regimen runs unless told otherwise: RULES R-UK-1 / R-UK-3a, loaded by migration.
DEFAULT_PROTOCOL = "hydroxo-uk-standard"


def builtin_protocol(code: str = DEFAULT_PROTOCOL) -> Protocol:
    """A built-in protocol as the data migration loads it. Transactional tests flush the tables between
    tests, which removes the migration's rows: load them again then (idempotent, as in the migration)."""
    protocol = Protocol.objects.filter(code=code).first()
    if protocol is None:
        from regimens.protocol_data import load_protocols

        load_protocols(Protocol, ProtocolPhase, ProtocolRecheckStep)
        protocol = Protocol.objects.get(code=code)
    return protocol


# --- Users and clinics -----------------------------------------------------------------------------


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests")

    @factory.post_generation
    def saved(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            self.save()


class ClinicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clinic
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Clinic {n}")
    timezone = "Europe/London"
    open_weekdays = factory.LazyFunction(lambda: [0, 1, 2, 3, 4])


class ClosedDateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClosedDate

    clinic = factory.SubFactory(ClinicFactory)
    # A different day for each row: (clinic, date) is unique.
    date = factory.Sequence(lambda n: T0 + timedelta(days=30 + n))
    note = "Training day"


class ClinicMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClinicMembership

    user = factory.SubFactory(UserFactory)
    clinic = factory.SubFactory(ClinicFactory)
    role = Role.NURSE


def staff_user(clinic: Clinic, role: str = Role.NURSE, username: str | None = None) -> Any:
    """A user who works in `clinic` with `role`."""
    user = UserFactory(username=username) if username else UserFactory()
    ClinicMembership.objects.get_or_create(user=user, clinic=clinic, defaults={"role": role})
    return user


class StaffEventFactory(factory.django.DjangoModelFactory):
    """The audit log's record of a sign-in (patients.StaffEvent)."""

    class Meta:
        model = StaffEvent

    at = factory.LazyFunction(timezone.now)
    kind = StaffEventKind.SIGNED_IN
    actor = factory.SubFactory(UserFactory)
    subject = factory.SelfAttribute("actor")
    username = factory.LazyAttribute(lambda e: e.actor.username)


# --- Patients and their clinical data ----------------------------------------------------------------


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    clinic = factory.SubFactory(ClinicFactory)
    mrn = factory.Sequence(lambda n: f"MRN{n:06d}")
    given_name = factory.Faker("first_name")
    family_name = factory.Faker("last_name")
    birth_date = date(1960, 5, 17)
    sex = "female"
    email = factory.LazyAttribute(lambda p: f"{p.mrn.lower()}@example.org")
    phone = "+447700900123"
    timezone = "Europe/London"
    deficiency_cause = DeficiencyCause.PERNICIOUS_ANEMIA
    reminder_channel = "email"


class LabResultFactory(factory.django.DjangoModelFactory):
    """A normal hemoglobin (patients/analytes.py: LOINC 718-7, canonical unit g/L), collected on T0."""

    class Meta:
        model = LabResult

    patient = factory.SubFactory(PatientFactory)
    analyte = "hemoglobin"
    loinc = "718-7"
    value_as_entered = "130"
    unit_as_entered = "g/L"
    value_canonical = factory.LazyAttribute(lambda r: Decimal(r.value_as_entered))
    unit_canonical = "g/L"
    interpretation = Interpretation.NORMAL
    collected_at = datetime(2027, 1, 4, 9, tzinfo=UTC)
    source = ResultSource.ENTERED

    class Params:
        # A platelet count (LOINC 777-3, 10^9/L) instead: LabResultFactory(platelets=True, value_as_entered="120")
        platelets = factory.Trait(analyte="platelets", loinc="777-3", unit_as_entered="10^9/L", unit_canonical="10^9/L")


class LabImportJobFactory(factory.django.DjangoModelFactory):
    """A large CSV import waiting for its worker (patients/labs/jobs.py)."""

    class Meta:
        model = LabImportJob

    clinic = factory.SubFactory(ClinicFactory)
    created_by = factory.SubFactory(UserFactory)
    content = "mrn,analyte,value,unit,collected_at\nRVH000123,hemoglobin,130,g/L,2027-01-04\n"
    rows_total = 1


class MedicationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Medication

    patient = factory.SubFactory(PatientFactory)
    kind = MedicationKind.FOLIC_ACID
    name = "Folic acid 5 mg tablets"
    dose = Decimal("5.000")
    dose_unit = "mg"
    route = "PO"
    frequency = "once daily"
    start_date = T0


class PatientFactFactory(factory.django.DjangoModelFactory):
    """A transfusion (an event: `onset_date` is its day; RULES §3.6)."""

    class Meta:
        model = PatientFact

    patient = factory.SubFactory(PatientFactory)
    kind = FactKind.TRANSFUSION
    onset_date = T0 - timedelta(days=3)


# --- Protocols and regimens ----------------------------------------------------------------------------


class ProtocolFactory(factory.django.DjangoModelFactory):
    """A clinic-defined (not built-in) protocol; RegimenFactory uses a built-in one instead."""

    class Meta:
        model = Protocol

    code = factory.Sequence(lambda n: f"clinic-protocol-{n}")
    name = factory.LazyAttribute(lambda p: f"Clinic protocol {p.code}")
    rules = "R-UK-3a"
    source = "Local guideline (tests)"


class ProtocolPhaseFactory(factory.django.DjangoModelFactory):
    """A maintenance-like phase: 1 mg hydroxocobalamin IM every 12 weeks for life (R-UK-3a)."""

    class Meta:
        model = ProtocolPhase

    protocol = factory.SubFactory(ProtocolFactory)
    # Order and key are unique within a protocol: the next free order, and a key named after it.
    order = factory.LazyAttribute(lambda p: 0 if p.protocol.pk is None else p.protocol.phases.count())
    key = factory.LazyAttribute(lambda p: f"phase-{p.order}")
    name = factory.LazyAttribute(lambda p: f"Phase {p.order}")
    drug = "hydroxocobalamin"
    dose_mcg = 1000
    route = "IM"
    spacing = Spacing.EVERY_N_WEEKS
    spacing_value = 12
    end_condition = "lifelong"
    source_rule = "R-UK-3a"
    evidence_tag = "P"


class ProtocolRecheckStepFactory(factory.django.DjangoModelFactory):
    """RULES L-11: month 3 on oral therapy."""

    class Meta:
        model = ProtocolRecheckStep

    protocol = factory.SubFactory(ProtocolFactory)
    rule = "L-11"
    day = 90
    window_before = 14
    window_after = 14
    analytes = factory.LazyFunction(lambda: ["b12_total", "hemoglobin"])


def _snapshot(protocol: Protocol) -> dict[str, Any]:
    from regimens.services import protocol_snapshot

    return protocol_snapshot(protocol)


class RegimenFactory(factory.django.DjangoModelFactory):
    """An active regimen on a built-in protocol, started on T0, with the protocol's snapshot. It has no
    doses: build them with ScheduledDoseFactory, or start a real one with regimens.services.regimen_start."""

    class Meta:
        model = Regimen

    patient = factory.SubFactory(PatientFactory)
    protocol = factory.LazyFunction(builtin_protocol)
    start_date = T0
    protocol_snapshot = factory.LazyAttribute(lambda r: _snapshot(r.protocol))
    status = RegimenStatus.ACTIVE
    current_phase = 0


def _phase(regimen: Regimen, index: int) -> dict[str, Any]:
    return dict(regimen.protocol_snapshot["phases"][index])


def _next_sequence(regimen: Regimen, phase_index: int) -> int:
    if regimen.pk is None:
        return 1
    last = regimen.doses.filter(phase_index=phase_index).aggregate(last=Max("sequence"))["last"]
    return (last or 0) + 1


class ScheduledDoseFactory(factory.django.DjangoModelFactory):
    """A planned dose of the regimen's phase `phase_index`: same patient as the regimen, the phase's
    drug, dose and route, and the next free sequence number of that phase (one live dose per slot)."""

    class Meta:
        model = ScheduledDose

    regimen = factory.SubFactory(RegimenFactory)
    patient = factory.SelfAttribute("regimen.patient")
    phase_index = 0
    phase = factory.LazyAttribute(lambda d: _phase(d.regimen, d.phase_index)["key"])
    sequence = factory.LazyAttribute(lambda d: _next_sequence(d.regimen, d.phase_index))
    # Two days apart (the loading phases' minimum spacing, RULES "Spacing rules").
    due_date = factory.LazyAttribute(lambda d: d.regimen.start_date + timedelta(days=2 * (d.sequence - 1)))
    drug = factory.LazyAttribute(lambda d: _phase(d.regimen, d.phase_index)["drug"])
    dose_mcg = factory.LazyAttribute(lambda d: _phase(d.regimen, d.phase_index)["dose_mcg"])
    dose_unit = factory.LazyAttribute(lambda d: _phase(d.regimen, d.phase_index)["dose_unit"])
    route = factory.LazyAttribute(lambda d: _phase(d.regimen, d.phase_index)["route"])
    self_administered = factory.LazyAttribute(lambda d: _phase(d.regimen, d.phase_index)["self_administered"])
    status = DoseStatus.PLANNED


class RegimenDecisionFactory(factory.django.DjangoModelFactory):
    """A clinician's review of the regimen's first phase (RULES §1.3)."""

    class Meta:
        model = RegimenDecision

    regimen = factory.SubFactory(RegimenFactory)
    phase_index = 0
    kind = DecisionKind.REVIEW
    outcome = ReviewOutcome.STILL_IMPROVING
    decided_on = factory.LazyAttribute(lambda d: d.regimen.start_date + timedelta(days=14))


class ReplanFactory(factory.django.DjangoModelFactory):
    """The audit row of a re-plan that moved one dose of its regimen a week on (issue 12)."""

    class Meta:
        model = Replan

    regimen = factory.SubFactory(RegimenFactory)
    patient = factory.SelfAttribute("regimen.patient")
    cause = "clinic calendar changed"
    moved = factory.LazyAttribute(
        lambda r: [{"dose": 1, "from": r.regimen.start_date.isoformat(),
                    "to": (r.regimen.start_date + timedelta(days=7)).isoformat()}]  # fmt: skip
    )


class ReplanJobFactory(factory.django.DjangoModelFactory):
    """A large calendar change waiting for its worker to re-plan the clinic's regimens (regimens/jobs.py)."""

    class Meta:
        model = ReplanJob

    clinic = factory.SubFactory(ClinicFactory)
    created_by = factory.SubFactory(UserFactory)
    cause = factory.LazyAttribute(lambda j: f"clinic calendar changed ({j.clinic.name})")
    regimens_total = 250


class LabRecheckFactory(factory.django.DjangoModelFactory):
    """RULES L-6: hemoglobin on day 14 ± 3 of the regimen, keyed as the engine keys it (rule@day)."""

    class Meta:
        model = LabRecheck

    class Params:
        day = 14
        window = 3

    regimen = factory.SubFactory(RegimenFactory)
    patient = factory.SelfAttribute("regimen.patient")
    rule = "L-6"
    key = factory.LazyAttribute(lambda r: f"{r.rule}@{r.day}")
    due_date = factory.LazyAttribute(lambda r: r.regimen.start_date + timedelta(days=r.day))
    window_start = factory.LazyAttribute(lambda r: r.due_date - timedelta(days=r.window))
    window_end = factory.LazyAttribute(lambda r: r.due_date + timedelta(days=r.window))
    analytes = factory.LazyFunction(lambda: ["hemoglobin"])
    description = factory.LazyAttribute(lambda r: f"Hemoglobin, day {r.day}")
    status = RecheckStatus.DUE


# --- Alerts and deliveries -------------------------------------------------------------------------------


class AlertFactory(factory.django.DjangoModelFactory):
    """An open S-4 dose-overdue alert. One unresolved alert per patient and kind: pass another patient
    or kind for a second one."""

    class Meta:
        model = Alert

    patient = factory.SubFactory(PatientFactory)
    kind = AlertKind.DOSE_OVERDUE
    rule_id = "S-4"
    severity = Severity.HIGH
    status = AlertStatus.OPEN
    message = "A dose is overdue."
    action_text = "Contact the patient and rebook the dose."
    evidence = factory.LazyFunction(dict)
    opened_at = factory.LazyFunction(timezone.now)


class DeliveryFactory(factory.django.DjangoModelFactory):
    """A pending dose reminder by email to a patient, at the patient's address."""

    class Meta:
        model = Delivery

    idempotency_key = factory.Sequence(lambda n: f"test:{n}")
    purpose = Purpose.DOSE_REMINDER
    channel = Channel.EMAIL
    patient = factory.SubFactory(PatientFactory)
    address = factory.LazyAttribute(lambda d: d.patient.email)
    subject = "Your vitamin B12 injection"
    body = "Your next injection is due soon."
    due_at = factory.LazyFunction(timezone.now)
    status = DeliveryStatus.PENDING


class InboxMessageFactory(DeliveryFactory):
    """A staff inbox row: an alert's notification to a staff user in the patient's clinic (no address)."""

    purpose = Purpose.ALERT
    channel = Channel.INBOX
    alert = factory.SubFactory(AlertFactory)
    patient = None
    user = factory.LazyAttribute(lambda d: staff_user(d.alert.patient.clinic))
    address = ""
    subject = "New alert"
    body = factory.LazyAttribute(lambda d: d.alert.message)
    due_at = factory.LazyAttribute(lambda d: d.alert.opened_at)


class DeliveryAttemptFactory(factory.django.DjangoModelFactory):
    """A successful first attempt."""

    class Meta:
        model = DeliveryAttempt

    delivery = factory.SubFactory(DeliveryFactory, status=DeliveryStatus.SENT, attempts=1)
    number = 1
    attempted_at = factory.LazyFunction(timezone.now)
    outcome = AttemptOutcome.SENT
    provider_id = factory.Sequence(lambda n: f"provider-{n}")
    worker = "celery@test"


class PortalLinkFactory(factory.django.DjangoModelFactory):
    """An unused portal sign-in link, sent by email, valid for 30 minutes (notifications/portal_access.py).
    The token itself is never stored: `token_hash` is the SHA-256 of "portal-token-<n>"."""

    class Meta:
        model = PortalLink

    patient = factory.SubFactory(PatientFactory)
    token_hash = factory.Sequence(lambda n: hashlib.sha256(f"portal-token-{n}".encode()).hexdigest())
    channel = Channel.EMAIL
    created_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda link: link.created_at + timedelta(minutes=30))


class PendingEvaluationFactory(factory.django.DjangoModelFactory):
    """A patient whose monitoring rules a worker has yet to run (monitoring/queue.py), written now."""

    class Meta:
        model = PendingEvaluation

    patient = factory.SubFactory(PatientFactory)
    token = factory.LazyFunction(uuid.uuid4)
    requested_at = factory.LazyFunction(timezone.now)
