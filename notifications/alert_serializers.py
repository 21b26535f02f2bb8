"""Serializers of the alerts API: an alert with its evidence, suggested action and who did what."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from notifications.models import Alert, AlertKind, AlertStatus, Severity


def _enum(values: list[str], description: str) -> dict[str, Any]:
    # Inline enums (no shared component): "kind" and "status" mean different things on other models.
    return {"type": "string", "enum": values, "description": description}


class AlertAcknowledgementSerializer(serializers.Serializer[Any]):
    by = serializers.CharField(allow_null=True, help_text="Username of who acknowledged it.")
    at = serializers.DateTimeField()
    note = serializers.CharField(allow_blank=True, help_text="What they did.")


class AlertResolutionSerializer(serializers.Serializer[Any]):
    at = serializers.DateTimeField()
    resolution = serializers.CharField(allow_blank=True)


class AlertSerializer(serializers.ModelSerializer[Alert]):
    kind = serializers.SerializerMethodField()
    severity = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    kind_display = serializers.CharField(source="get_kind_display", read_only=True)
    clinic = serializers.IntegerField(source="patient.clinic_id", read_only=True)
    patient_name = serializers.SerializerMethodField()
    acknowledged = serializers.SerializerMethodField()
    resolved = serializers.SerializerMethodField()

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
            "resolved",
            "escalated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(_enum(list(AlertKind.values), "RULES.md rule name."))
    def get_kind(self, alert: Alert) -> str:
        return alert.kind

    @extend_schema_field(_enum(list(Severity.values), "info, medium, high or critical."))
    def get_severity(self, alert: Alert) -> str:
        return alert.severity

    @extend_schema_field(_enum(list(AlertStatus.values), "open, acknowledged or resolved."))
    def get_status(self, alert: Alert) -> str:
        return alert.status

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
        help_text="What was done (RULES.md §3.6). Required for critical alerts.",
    )
