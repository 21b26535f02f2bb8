"""Serializers for protocols, regimens, doses and lab rechecks.

Input serializers check the shape of a request (types, formats, the user's clinic boundary)
before a service is called; the services check the clinical rules and do the writes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from datetime import date, datetime, tzinfo
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery, TextField
from django.db.models.functions import Cast
from django.utils import timezone as djtz
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from patients.models import Patient, validate_timezone
from patients.serializers import ClinicTimeField, StaffClinicField, StaffPatientField
from regimens import schedule
from regimens.drug_codes import EVIDENCE_TAGS, drug_codes_json
from regimens.models import (
    LabRecheck,
    Protocol,
    ProtocolPhase,
    ProtocolRecheckStep,
    RecheckStatus,
    Regimen,
    RegimenDecision,
    RegimenStatus,
    ReplanJob,
    ReviewOutcome,
    Route,
    ScheduledDose,
)
from regimens.selectors import dose_amount, dose_pending_warnings, protocols_for
from regimens.services.protocols import NAME_MAX_LENGTH, PROMPT_MAX_LENGTH
from tracker.api import AwareDateTimeField, SafetyWarningSerializer, acknowledge_field
from tracker.clock import local_date


class LocalToday:
    """Today's date per time zone, computed once per response (a list shows many patients of
    few zones)."""

    def __init__(self) -> None:
        self.now = djtz.now()
        self._cache: dict[str, date] = {}

    def __call__(self, zone: str) -> date:
        if zone not in self._cache:
            self._cache[zone] = local_date(self.now, zone)
        return self._cache[zone]


def _local_today(context: dict[str, Any]) -> LocalToday:
    today = context.get("local_today")
    if not isinstance(today, LocalToday):
        today = LocalToday()
        context["local_today"] = today
    return today


# --- Drug codes (RULES §7.2) -----------------------------------------------------------------


def _code_field(help_text: str) -> serializers.CharField:
    return serializers.CharField(allow_null=True, help_text=help_text)


class DrugCodeEvidenceSerializer(serializers.Serializer[Any]):
    """The RULES §0.1 evidence tag of each code: V verified, S secondary source, U not verified; null where there is
    no code."""

    rxnorm = serializers.ChoiceField(choices=EVIDENCE_TAGS, allow_null=True)
    atc = serializers.ChoiceField(choices=EVIDENCE_TAGS, allow_null=True)
    snomed = serializers.ChoiceField(choices=EVIDENCE_TAGS, allow_null=True)
    unii = serializers.ChoiceField(choices=EVIDENCE_TAGS, allow_null=True)


class DrugCodesSerializer(serializers.Serializer[Any]):
    """The codes of the product a dose is, from Cobalt's clinical rules (RULES §7.2), for mapping doses to an EHR.
    RULES §9 item 3: the RxNorm and current SNOMED codes are to be confirmed before go-live."""

    product = serializers.CharField(help_text="The RULES §7.2 product, e.g. Cyanocobalamin 1000 mcg/mL injection.")
    rxnorm = _code_field("RxNorm RxCUI at SCD level, e.g. 309594; null where RULES gives none (oral tablets).")
    atc = _code_field("WHO ATC code, e.g. B03BA01.")
    snomed = _code_field("SNOMED CT substance concept (not a product), e.g. 419382002; see note for cautions.")
    unii = _code_field("FDA UNII of the substance, e.g. P6YC3EG204; null where RULES gives none.")
    evidence = DrugCodeEvidenceSerializer()
    note = serializers.CharField(help_text="RULES' cautions and notes for this product, for people.")
    rule = serializers.CharField(help_text="The RULES section the codes come from: §7.2.")


def drug_codes_field() -> serializers.SerializerMethodField:
    return serializers.SerializerMethodField(
        help_text="The codes (RxNorm, ATC, SNOMED CT, UNII) of the product given by this drug and route, from RULES "
        "§7.2; null where RULES names no product for them (e.g. hydroxocobalamin by a route other than IM)."
    )


# --- Protocols ------------------------------------------------------------------------------


class ProtocolPhaseSerializer(serializers.ModelSerializer[ProtocolPhase]):
    ranges = serializers.SerializerMethodField(help_text="What a clinician may set per patient (options.phases).")
    drug_codes = drug_codes_field()

    class Meta:
        model = ProtocolPhase
        fields = [
            "order",
            "key",
            "name",
            "drug",
            "dose_mcg",
            "dose_unit",
            "route",
            "drug_codes",
            "spacing",
            "spacing_value",
            "ranges",
            "end_condition",
            "end_value",
            "start_gate",
            "review_every_days",
            "self_administered",
            "prompt",
            "source_rule",
            "evidence_tag",
        ]
        read_only_fields = fields

    @extend_schema_field(
        {
            "type": "object",
            "properties": {
                name: {
                    "type": "array",
                    "items": {"type": "integer", "nullable": True},
                    "minItems": 2,
                    "maxItems": 2,
                    "description": "[minimum, maximum]; null means not adjustable that way",
                }
                for name in ("dose_mcg", "spacing_value", "count")
            },
        }
    )
    def get_ranges(self, phase: ProtocolPhase) -> dict[str, list[int | None]]:
        return {
            "dose_mcg": [phase.dose_min_mcg, phase.dose_max_mcg],
            "spacing_value": [phase.spacing_min, phase.spacing_max],
            "count": [phase.end_min, phase.end_max],
        }

    @extend_schema_field(DrugCodesSerializer(allow_null=True))
    def get_drug_codes(self, phase: ProtocolPhase) -> dict[str, Any] | None:
        return drug_codes_json(phase.drug, phase.route)


class ProtocolRecheckStepSerializer(serializers.ModelSerializer[ProtocolRecheckStep]):
    class Meta:
        model = ProtocolRecheckStep
        fields = ["rule", "day", "window_before", "window_after", "analytes", "note"]
        read_only_fields = fields


class ProtocolSerializer(serializers.ModelSerializer[Protocol]):
    phases = ProtocolPhaseSerializer(many=True, read_only=True)
    recheck_steps = ProtocolRecheckStepSerializer(many=True, read_only=True)

    class Meta:
        model = Protocol
        fields = [
            "id",
            "code",
            "name",
            "description",
            "rules",
            "source",
            "is_builtin",
            "active",
            "clinic",
            "copied_from",
            "phases",
            "recheck_steps",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "clinic": {"help_text": "The clinic whose own copy this is; null: shared by every clinic."},
            "copied_from": {"help_text": "Id of the shared protocol this copy was made from."},
        }


class ProtocolCopySerializer(serializers.Serializer[Any]):
    clinic = serializers.IntegerField(
        required=False, min_value=1, help_text="Clinic id (default: your first clinic as clinic admin)."
    )
    name = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=NAME_MAX_LENGTH,
        help_text="Default: the protocol's name and the clinic's.",
    )  # fmt: skip
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=100, help_text="Why, for the protocol's history."
    )


class ProtocolPhaseChangeSerializer(serializers.Serializer[Any]):
    """What a clinic may localise on a phase of its own copy; each number stays within the phase's range."""

    dose_mcg = serializers.IntegerField(required=False, min_value=1, max_value=2_147_483_647)
    spacing_value = serializers.IntegerField(required=False, min_value=1, max_value=32_767)
    end_value = serializers.IntegerField(required=False, min_value=1, max_value=2_147_483_647)
    review_every_days = serializers.IntegerField(required=False, min_value=1, max_value=32_767)
    prompt = serializers.CharField(required=False, allow_blank=True, max_length=PROMPT_MAX_LENGTH)
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=100, help_text="Why, for the protocol's history."
    )


class ProtocolRetireSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=100, help_text="Why, for the protocol's history."
    )


class ProtocolCodeField(serializers.SlugRelatedField):
    default_error_messages = {
        **serializers.SlugRelatedField.default_error_messages,
        "does_not_exist": "Unknown protocol '{value}'; see GET /api/protocols/ for the codes.",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(slug_field="code", queryset=Protocol.objects.all(), **kwargs)

    def get_queryset(self) -> QuerySet[Protocol]:
        # The shared protocols and the user's clinics' own copies: another clinic's copy is "unknown" (issue 12).
        request = self.context.get("request")
        return protocols_for(getattr(request, "user", None))

    def to_internal_value(self, data: Any) -> Protocol:
        # A NUL byte cannot be sent to PostgreSQL: answer as for any unknown code, not with a 500.
        if isinstance(data, str) and "\x00" in data:
            self.fail("does_not_exist", slug_name=self.slug_field, value=data.replace("\x00", ""))
        return super().to_internal_value(data)


class TimezoneField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        try:
            validate_timezone(value)
        except Exception as exc:
            raise serializers.ValidationError(
                f"'{value}' is not an IANA time zone (for example Europe/London)"
            ) from exc
        return value


# --- Schedule preview -----------------------------------------------------------------------


class SchedulePreviewRequestSerializer(serializers.Serializer[Any]):
    protocol = ProtocolCodeField(help_text="Protocol code, e.g. hydroxo-uk-standard.")
    start_date = serializers.DateField()
    timezone = TimezoneField(required=False, help_text="IANA zone; defaults to the clinic's, else UTC.")
    options = serializers.DictField(required=False, help_text="Per-phase options, as for a regimen.")
    clinic = StaffClinicField(required=False, help_text="Use this clinic's calendar (default Monday–Friday).")


class PlannedDoseSerializer(serializers.Serializer[Any]):
    phase_index = serializers.IntegerField()
    phase = serializers.CharField()
    sequence = serializers.IntegerField()
    due_date = serializers.DateField()
    drug = serializers.CharField()
    dose_mcg = serializers.IntegerField()
    dose_amount = serializers.SerializerMethodField()
    dose_unit = serializers.CharField()
    route = serializers.CharField()
    drug_codes = drug_codes_field()
    self_administered = serializers.BooleanField()

    @extend_schema_field(OpenApiTypes.NUMBER)
    def get_dose_amount(self, dose: schedule.PlannedDose) -> int | float:
        return dose_amount(dose.dose_mcg, dose.dose_unit)

    @extend_schema_field(DrugCodesSerializer(allow_null=True))
    def get_drug_codes(self, dose: schedule.PlannedDose) -> dict[str, Any] | None:
        return drug_codes_json(dose.drug, dose.route)


class PlannedRecheckSerializer(serializers.Serializer[Any]):
    rule = serializers.CharField()
    key = serializers.CharField()
    due_date = serializers.DateField()
    window_start = serializers.DateField()
    window_end = serializers.DateField()
    analytes = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField()


class ReviewPromptSerializer(serializers.Serializer[Any]):
    phase_index = serializers.IntegerField()
    phase = serializers.CharField()
    due_date = serializers.DateField()


class SchedulePreviewSerializer(serializers.Serializer[Any]):
    doses = PlannedDoseSerializer(many=True, source="planned")
    lab_rechecks = PlannedRecheckSerializer(many=True, source="rechecks")
    reviews = ReviewPromptSerializer(many=True)
    awaiting_gate = serializers.IntegerField(
        allow_null=True, help_text="Index of a phase that starts only after a clinician confirms its gate."
    )


# --- Doses and lab rechecks -----------------------------------------------------------------


class DoseSerializer(serializers.ModelSerializer[ScheduledDose]):
    appointment_time = ClinicTimeField(
        read_only=True, allow_null=True, help_text="Empty: the clinic's session start, if it sets sessions."
    )
    dose_amount = serializers.SerializerMethodField(help_text="The dose in dose_unit.")
    overdue = serializers.SerializerMethodField(help_text="Planned and due before today in the patient's time zone.")
    drug_codes = drug_codes_field()
    # A plain string: the Route choice set is documented on `route` (one choice set, one name).
    given_route = serializers.CharField(read_only=True, help_text="The route actually used; blank until given.")

    class Meta:
        model = ScheduledDose
        fields = [
            "id",
            "regimen",
            "patient",
            "phase",
            "phase_index",
            "sequence",
            "due_date",
            "appointment_time",
            "drug",
            "dose_amount",
            "dose_mcg",
            "dose_unit",
            "route",
            "drug_codes",
            "self_administered",
            "status",
            "overdue",
            "administered_at",
            "lot_number",
            "expiry_date",
            "site",
            "given_route",
            "not_given_reason",
            "not_given_on",
            "recorded_at",
            "acknowledged_warnings",
            "error_reason",
            "error_recorded_at",
            "error_recorded_by",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.NUMBER)
    def get_dose_amount(self, dose: ScheduledDose) -> int | float:
        return dose_amount(dose.dose_mcg, dose.dose_unit)

    def get_overdue(self, dose: ScheduledDose) -> bool:
        today = _local_today(self.context)(dose.patient.timezone)
        return dose.status == "planned" and dose.due_date < today

    @extend_schema_field(DrugCodesSerializer(allow_null=True))
    def get_drug_codes(self, dose: ScheduledDose) -> dict[str, Any] | None:
        # Of the planned drug and route (the product the dose is), not of given_route.
        return drug_codes_json(dose.drug, dose.route)


class DoseDetailSerializer(DoseSerializer):
    """A dose with the warnings that recording it as given now would raise (RULES §10 V-12)."""

    # A plain string: the Dose component documents the choices (one choice set, one component; see
    # RegimenSerializer.status).
    status: serializers.Field = serializers.CharField(read_only=True, help_text="As in Dose: planned, given, ...")
    warnings = serializers.SerializerMethodField(
        help_text=(
            "For a planned dose: the point-of-care warnings (S-2 low platelets for an IM dose, S-10, S-11, S-12) "
            "that recording it as given now by its planned route would raise; empty otherwise. Acknowledge "
            "them in POST .../administer/ (hard stops also need override_reason)."
        )
    )

    class Meta(DoseSerializer.Meta):
        fields = [*DoseSerializer.Meta.fields, "warnings"]
        read_only_fields = fields

    @extend_schema_field(SafetyWarningSerializer(many=True))
    def get_warnings(self, dose: ScheduledDose) -> list[dict[str, object]]:
        return [
            {"code": w.code, "rule": w.rule, "message": w.message, "details": w.details}
            for w in dose_pending_warnings(dose)
        ]


# --- The dose list's rows (issue 16) ---
# DoseViewSet.list (without ?warnings=true) renders its page with dose_rows: the JSON of DoseSerializer, byte for
# byte, built from tuples of exactly its columns by plain functions instead of a model instance (and its patient)
# and a field object per value. DoseSerializer stays the documented shape (the schema) and renders the detail,
# the actions and ?warnings=true; tests/regimens/test_dose_rows.py holds the two equal.

# The columns dose_rows reads, in the order it unpacks them: DoseSerializer.Meta.fields' columns (dose_amount and
# overdue are computed) and the patient's time zone.
DOSE_ROW_COLUMNS = (
    "id", "regimen_id", "patient_id", "phase", "phase_index", "sequence", "due_date", "appointment_time", "drug",
    "dose_mcg", "dose_unit", "route", "self_administered", "status", "administered_at", "lot_number", "expiry_date",
    "site", "given_route", "not_given_reason", "not_given_on", "recorded_at", "acknowledged_warnings_json",
    "error_reason", "error_recorded_at", "error_recorded_by_id", "patient_timezone",
)  # fmt: skip


@functools.cache
def patient_zone() -> Subquery:
    """The dose row's patient's time zone, as a subquery: built once (annotate resolves a copy of it each time)."""
    return Subquery(Patient.objects.filter(pk=OuterRef("patient_id")).order_by().values("timezone"))


class DoseRows:
    """A filtered, ordered dose queryset as the paginator reads it: its count on the dose rows alone (the worklist's
    index, no join to the patients) and a page of it as tuples of DOSE_ROW_COLUMNS, for dose_rows. The patient's
    time zone is a subquery, not a join: PostgreSQL looks it up for the page's rows alone, after the sort and the
    LIMIT, where a join would look up every row of the clinic's day before sorting them."""

    def __init__(self, queryset: QuerySet[ScheduledDose]) -> None:
        self.filtered = queryset
        # The warnings acknowledged as the column's JSON text: most are "[]", which dose_rows need not decode (the
        # ORM would decode each row's).
        self.queryset = queryset.annotate(
            patient_timezone=patient_zone(), acknowledged_warnings_json=Cast("acknowledged_warnings", TextField())
        )

    @property
    def ordered(self) -> bool:
        return self.queryset.ordered

    def count(self) -> int:
        # The rows before the zone's annotation: the same COUNT statement, but the ORM builds it in half the time
        # (it no longer checks whether the count needs the annotated subquery: issue 16).
        return self.filtered.count()

    def __getitem__(self, index: slice) -> QuerySet[Any]:
        return self.queryset[index].values_list(*DOSE_ROW_COLUMNS)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.queryset.values_list(*DOSE_ROW_COLUMNS))


def _date(value: date | None) -> str | None:
    return value.isoformat() if value else None  # as serializers.DateField (ISO 8601)


def _datetime(value: datetime | None, zone: tzinfo) -> str | None:
    """As serializers.DateTimeField: in the active time zone (UTC for the API), "Z" for UTC."""
    if not value:
        return None
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def dose_rows(rows: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Tuples of DOSE_ROW_COLUMNS (DoseRows) as DoseSerializer renders the same doses."""
    today = LocalToday()
    zone = djtz.get_current_timezone()  # USE_TZ is on: times are aware
    out = []
    for (
        pk, regimen, patient, phase, phase_index, sequence, due_date, appointment_time, drug, dose_mcg, dose_unit,
        route, self_administered, status, administered_at, lot_number, expiry_date, site, given_route,
        not_given_reason, not_given_on, recorded_at, acknowledged_warnings, error_reason, error_recorded_at,
        error_recorded_by, timezone,
    ) in rows:  # fmt: skip
        out.append(
            {
                "id": pk,
                "regimen": regimen,
                "patient": patient,
                "phase": phase,
                "phase_index": phase_index,
                "sequence": sequence,
                "due_date": _date(due_date),
                "appointment_time": None if appointment_time is None else appointment_time.strftime("%H:%M"),
                "drug": drug,
                "dose_amount": dose_amount(dose_mcg, dose_unit),
                "dose_mcg": dose_mcg,
                "dose_unit": dose_unit,
                "route": route,
                "drug_codes": drug_codes_json(drug, route),
                "self_administered": self_administered,
                "status": status,
                "overdue": status == "planned" and due_date < today(timezone),
                "administered_at": _datetime(administered_at, zone),
                "lot_number": lot_number,
                "expiry_date": _date(expiry_date),
                "site": site,
                "given_route": given_route,
                "not_given_reason": not_given_reason,
                "not_given_on": _date(not_given_on),
                "recorded_at": _datetime(recorded_at, zone),
                "acknowledged_warnings": [] if acknowledged_warnings == "[]" else json.loads(acknowledged_warnings),
                "error_reason": error_reason,
                "error_recorded_at": _datetime(error_recorded_at, zone),
                "error_recorded_by": error_recorded_by,
            }
        )
    return out


def dose_row(dose: ScheduledDose) -> dict[str, Any]:
    """One dose, its patient at hand (their time zone: `overdue`), as DoseSerializer renders it: the answer of a write
    on the dose, from the row the service wrote (dose_rows' work on one row, without DoseSerializer's field objects)."""
    row = [getattr(dose, name) for name in DOSE_ROW_COLUMNS[:_WARNINGS_COLUMN]]
    row.append(json.dumps(dose.acknowledged_warnings or []))
    row += [getattr(dose, name) for name in DOSE_ROW_COLUMNS[_WARNINGS_COLUMN + 1 : -1]]
    row.append(dose.patient.timezone)
    return dose_rows([tuple(row)])[0]


_WARNINGS_COLUMN = DOSE_ROW_COLUMNS.index("acknowledged_warnings_json")


def override_reason_field(
    help_text: str = "Why a hard-stop warning in `acknowledge` is overridden (RULES §4: required for hard stops).",
) -> serializers.CharField:
    return serializers.CharField(required=False, allow_blank=True, default="", max_length=2000, help_text=help_text)


class DoseAdministerSerializer(serializers.Serializer[Any]):
    administered_at = AwareDateTimeField(help_text="ISO 8601 with offset, e.g. 2027-01-04T10:30:00+00:00.")
    lot_number = serializers.CharField(max_length=60, required=False, allow_blank=True, default="")
    expiry_date = serializers.DateField(required=False, allow_null=True, default=None)
    site = serializers.CharField(max_length=60, required=False, allow_blank=True, default="")
    route = serializers.ChoiceField(
        choices=Route.choices, required=False, allow_null=True, default=None, help_text="Defaults to the planned route."
    )
    acknowledge = acknowledge_field()
    override_reason = override_reason_field()


class DoseAppointmentTimeSerializer(serializers.Serializer[Any]):
    appointment_time = ClinicTimeField(
        allow_null=True, help_text="HH:MM, clinic-local; null for the clinic's default (the start of its session)."
    )


class DoseNotGivenSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=200, help_text="Did not attend, refused, held, …")
    on = serializers.DateField(required=False, allow_null=True, default=None, help_text="Defaults to today.")


class EnteredInErrorSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        max_length=500, help_text="Why the record is wrong, e.g. recorded on the wrong patient (RULES §10 V-14)."
    )


class RecheckCompleteSerializer(serializers.Serializer[Any]):
    note = serializers.CharField(
        max_length=500, help_text="Where and when it was drawn, e.g. 'drawn at the GP surgery on 2027-02-01'."
    )


class RecheckCancelSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=500, help_text="Why the recheck is no longer needed.")


class LabRecheckSerializer(serializers.ModelSerializer[LabRecheck]):
    status = serializers.SerializerMethodField(help_text="due, done, overdue (window has passed) or cancelled.")

    class Meta:
        model = LabRecheck
        fields = [
            "id",
            "patient",
            "regimen",
            "rule",
            "due_date",
            "window_start",
            "window_end",
            "analytes",
            "description",
            "status",
            "completed_at",
            "close_note",
            "closed_by",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=RecheckStatus.choices))
    def get_status(self, recheck: LabRecheck) -> str:
        if recheck.status == RecheckStatus.DUE:
            today = _local_today(self.context)(recheck.patient.timezone)
            if recheck.window_end < today:
                return RecheckStatus.OVERDUE.value
        return recheck.status


# --- Regimens -------------------------------------------------------------------------------


class RegimenDecisionSerializer(serializers.ModelSerializer[RegimenDecision]):
    # Declared so the schema admits the "" that every decision other than a review carries.
    outcome = serializers.ChoiceField(choices=ReviewOutcome.choices, allow_blank=True, read_only=True)

    class Meta:
        model = RegimenDecision
        fields = ["id", "phase_index", "kind", "outcome", "decided_on", "decided_by", "note", "created_at"]
        read_only_fields = fields


class RegimenSerializer(serializers.ModelSerializer[Regimen]):
    # A plain string here: the detail component documents the choices, and one choice set
    # named in two components makes drf-spectacular warn about enum naming.
    status: serializers.Field = serializers.CharField(read_only=True, help_text="active, stopped or completed.")
    protocol: serializers.SlugRelatedField[Protocol] = serializers.SlugRelatedField(slug_field="code", read_only=True)
    current_phase_key = serializers.SerializerMethodField()

    class Meta:
        model = Regimen
        fields = [
            "id",
            "patient",
            "protocol",
            "start_date",
            "options",
            "override_reason",
            "status",
            "current_phase",
            "current_phase_key",
            "awaiting_gate",
            "stopped_at",
            "stop_reason",
            "acknowledged_warnings",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields

    def get_current_phase_key(self, regimen: Regimen) -> str | None:
        # The regimen's own copy of the protocol (what it is planned from), not today's protocol.
        keys = [p["key"] for p in regimen.protocol_snapshot.get("phases", [])] or [
            p.key for p in sorted(regimen.protocol.phases.all(), key=lambda p: p.order)
        ]
        if not keys:
            return None
        return keys[min(regimen.current_phase, len(keys) - 1)]


class RegimenDetailSerializer(RegimenSerializer):
    """A regimen with its schedule: doses (cancelled ones are left out; see GET /api/doses/),
    lab rechecks and clinician decisions."""

    status = serializers.ChoiceField(choices=RegimenStatus.choices, read_only=True)
    doses = DoseSerializer(many=True, read_only=True)
    lab_rechecks = LabRecheckSerializer(many=True, read_only=True)
    decisions = RegimenDecisionSerializer(many=True, read_only=True)

    class Meta(RegimenSerializer.Meta):
        fields = [*RegimenSerializer.Meta.fields, "doses", "lab_rechecks", "decisions"]
        read_only_fields = fields


class RegimenCreateSerializer(serializers.Serializer[Any]):
    patient = StaffPatientField()
    protocol = ProtocolCodeField(help_text="Protocol code, e.g. hydroxo-uk-standard.")
    start_date = serializers.DateField()
    options = serializers.DictField(required=False, default=dict)
    acknowledge = acknowledge_field()
    override_reason = override_reason_field()


class RegimenEndLoadingSerializer(serializers.Serializer[Any]):
    ended_on = serializers.DateField(required=False, allow_null=True, default=None)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=2000,
        help_text="Why the neurological loading phase (R-UK-2) ends before six loading doses were given: "
        "required then (RULES §10 V-5); kept on the decision's note.",
    )
    acknowledge = acknowledge_field()
    override_reason = override_reason_field()


class RegimenStopSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        max_length=2000,
        help_text="Why the regimen is stopped; with the S-5 hard stop acknowledged it is also the override reason "
        "(RULES §4), of at least COBALT_OVERRIDE_REASON_MIN_LENGTH characters.",
    )
    acknowledge = acknowledge_field()


class RegimenConfirmGateSerializer(serializers.Serializer[Any]):
    confirmed_on = serializers.DateField(required=False, allow_null=True, default=None)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class RegimenReviewSerializer(serializers.Serializer[Any]):
    outcome = serializers.ChoiceField(choices=ReviewOutcome.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class RegimenShortenIntervalSerializer(serializers.Serializer[Any]):
    spacing_value = serializers.IntegerField(
        help_text="The new interval of the phase in progress, in its unit (weeks for every N weeks, days for every N "
        "days, months for monthly): a whole number smaller than the current one (RULES R-UK-4: shorten only)."
    )
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=2000,
        help_text="Why the interval is shortened (e.g. symptoms back before the next injection); kept on the decision.",
    )
    override_reason = override_reason_field(
        "Required when the new value is outside the protocol's range (as at a regimen's start), of at "
        "least COBALT_OVERRIDE_REASON_MIN_LENGTH characters; kept on the decision and the regimen."
    )


class ReplanJobSerializer(serializers.ModelSerializer[ReplanJob]):
    """A large calendar change re-planned by a worker in batches (202 of `POST /api/clinics/{id}/calendar/`)."""

    regimens_total = serializers.IntegerField(help_text="Active regimens of the clinic when the calendar changed.")
    regimens_done = serializers.IntegerField(help_text="Regimens re-planned so far (committed batch by batch).")
    failure = serializers.CharField(source="error_message", help_text="Why a failed job stopped; empty otherwise.")

    class Meta:
        model = ReplanJob
        fields = [
            "id",
            "status",
            "clinic",
            "cause",
            "regimens_total",
            "regimens_done",
            "created_at",
            "started_at",
            "finished_at",
            "failure",
        ]
        read_only_fields = fields
