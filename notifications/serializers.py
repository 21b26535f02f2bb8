"""Serializers of the notifications API: alerts (with their evidence, suggested action and who did what),
the delivery log and the staff inbox. Recipients are masked in the log: it is read by every member of the
clinic and addresses are personal data."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from notifications.models import Alert, AlertKind, AlertStatus, Channel, Delivery, DeliveryStatus, Purpose, Severity


def enum_field(values: list[str], description: str) -> serializers.CharField:
    """A read-only string documented as an inline enum of `values`: no shared schema component, since
    "kind", "status" and "purpose" mean different things on other models. The schema hangs on a class of
    its own because DRF copies declared fields by re-creating them from their arguments."""
    schema = {"type": "string", "enum": values, "description": description}
    field_class = extend_schema_field(schema)(type("InlineEnumField", (serializers.CharField,), {}))
    field: serializers.CharField = field_class(read_only=True)
    return field


# --- Alerts --------------------------------------------------------------------------------------------


class AlertAcknowledgementSerializer(serializers.Serializer[Any]):
    by = serializers.CharField(allow_null=True, help_text="Username of who acknowledged it.")
    at = serializers.DateTimeField()
    note = serializers.CharField(allow_blank=True, help_text="What they did.")


class AlertResolutionSerializer(serializers.Serializer[Any]):
    at = serializers.DateTimeField()
    resolution = serializers.CharField(allow_blank=True)


# RULES §10 V-2: a CRITICAL alert whose target a later result met stays open until a person acknowledges it.
# An inline object schema with `nullable: true` (not `nullable` beside an `allOf`), which client generators
# read as "this object, or null".
TARGET_MET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "nullable": True,
    "readOnly": True,
    "description": (
        "Null, or: a later result met this critical alert's target; it stays open until a person acknowledges "
        "it, which closes it (RULES §10 V-2)."
    ),
    "properties": {
        "at": {"type": "string", "format": "date-time", "description": "When the target was found met."},
        "evidence": {
            "type": "object",
            "description": "What met it: the result (id, analyte, value and unit for people, collected_on), or "
            "a `reason` for an alert that a result does not close.",
            "properties": {
                "id": {"type": "integer", "description": "Lab result id."},
                "analyte": {"type": "string"},
                "value": {"type": "string", "description": "Canonical value for people, e.g. 120."},
                "unit": {"type": "string", "description": "Canonical unit, e.g. 10^9/L."},
                "collected_on": {"type": "string", "format": "date", "description": "Patient's local date."},
                "reason": {"type": "string"},
            },
        },
    },
    "required": ["at", "evidence"],
}


class AlertSerializer(serializers.ModelSerializer[Alert]):
    kind = enum_field(list(AlertKind.values), "RULES rule name.")
    severity = enum_field(list(Severity.values), "info, medium, high or critical.")
    status = enum_field(list(AlertStatus.values), "open, acknowledged or resolved.")
    kind_display = serializers.CharField(source="get_kind_display", read_only=True)
    clinic = serializers.IntegerField(source="patient.clinic_id", read_only=True)
    patient_name = serializers.SerializerMethodField()
    acknowledged = serializers.SerializerMethodField()
    resolved = serializers.SerializerMethodField()
    target_met = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = [
            "id",
            "patient",
            "patient_name",
            "clinic",
            "kind",
            "kind_display",
            "rule_id",
            "severity",
            "status",
            "message",
            "action_text",
            "evidence",
            "opened_at",
            "acknowledged",
            "target_met",
            "reopened_at",
            "resolved",
            "escalated_at",
        ]
        read_only_fields = fields

    def get_patient_name(self, alert: Alert) -> str:
        return f"{alert.patient.family_name}, {alert.patient.given_name} ({alert.patient.mrn})"

    @extend_schema_field(AlertAcknowledgementSerializer(allow_null=True))
    def get_acknowledged(self, alert: Alert) -> dict[str, Any] | None:
        if alert.acknowledged_at is None:
            return None
        user = alert.acknowledged_by
        return {
            "by": user.get_username() if user is not None else None,
            "at": serializers.DateTimeField().to_representation(alert.acknowledged_at),
            "note": alert.acknowledgement_note,
        }

    @extend_schema_field(TARGET_MET_SCHEMA)
    def get_target_met(self, alert: Alert) -> dict[str, Any] | None:
        if alert.target_met_at is None:
            return None
        return {
            "at": serializers.DateTimeField().to_representation(alert.target_met_at),
            "evidence": alert.target_met_evidence or {},
        }

    @extend_schema_field(AlertResolutionSerializer(allow_null=True))
    def get_resolved(self, alert: Alert) -> dict[str, Any] | None:
        if alert.resolved_at is None:
            return None
        return {
            "at": serializers.DateTimeField().to_representation(alert.resolved_at),
            "resolution": alert.resolution,
        }


class AlertAcknowledgeSerializer(serializers.Serializer[Any]):
    note = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        help_text="What was done (RULES §3.6). Required for critical alerts.",
    )


# --- The delivery log and the staff inbox ----------------------------------------------------------------


def mask_email(address: str) -> str:
    """j***@example.com"""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_phone(number: str) -> str:
    """+44*******123: the country code and the last three digits."""
    if len(number) <= 6:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 6) + number[-3:]


def mask_recipient(delivery: Delivery) -> str:
    if delivery.channel == Channel.EMAIL:
        return mask_email(delivery.address)
    if delivery.channel == Channel.SMS:
        return mask_phone(delivery.address)
    if delivery.channel == Channel.INBOX and delivery.user is not None:
        return str(delivery.user.get_username())
    return ""


class NotificationSerializer(serializers.ModelSerializer[Delivery]):
    purpose = enum_field(list(Purpose.values), "What the message is for.")
    channel = enum_field(list(Channel.values), "email, sms, inbox or webhook.")
    status = enum_field(list(DeliveryStatus.values), "pending, sending, sent, failed or cancelled.")
    recipient = serializers.SerializerMethodField()
    patient = serializers.SerializerMethodField()

    class Meta:
        model = Delivery
        fields = [
            "id",
            "purpose",
            "channel",
            "status",
            "recipient",
            "patient",
            "due_at",
            "sent_at",
            "attempts",
            "last_error",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(help_text="Masked address, e.g. j***@example.com, +44*******123."))
    def get_recipient(self, delivery: Delivery) -> str:
        return mask_recipient(delivery)

    @extend_schema_field(serializers.IntegerField(allow_null=True, help_text="The patient it is to or about."))
    def get_patient(self, delivery: Delivery) -> int | None:
        if delivery.patient_id is not None:
            return delivery.patient_id
        return delivery.alert.patient_id if delivery.alert is not None else None


class InboxMessageSerializer(serializers.ModelSerializer[Delivery]):
    purpose = enum_field(list(Purpose.values), "What the message is for.")
    alert = serializers.IntegerField(source="alert_id", read_only=True, allow_null=True)

    class Meta:
        model = Delivery
        fields = ["id", "purpose", "subject", "body", "alert", "due_at", "read_at"]
        read_only_fields = fields
