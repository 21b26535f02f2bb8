"""Serializers of the delivery log and the staff inbox. Recipients are masked in the log: it is read by
every member of the clinic and addresses are personal data."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from notifications.models import Channel, Delivery, DeliveryStatus, Purpose


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


def _enum(values: list[str], description: str) -> dict[str, Any]:
    return {"type": "string", "enum": values, "description": description}


class NotificationSerializer(serializers.ModelSerializer[Delivery]):
    purpose = serializers.SerializerMethodField()
    channel = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
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

    @extend_schema_field(_enum(list(Purpose.values), "What the message is for."))
    def get_purpose(self, delivery: Delivery) -> str:
        return delivery.purpose

    @extend_schema_field(_enum(list(Channel.values), "email, sms, inbox or webhook."))
    def get_channel(self, delivery: Delivery) -> str:
        return delivery.channel

    @extend_schema_field(_enum(list(DeliveryStatus.values), "pending, sending, sent, failed or cancelled."))
    def get_status(self, delivery: Delivery) -> str:
        return delivery.status

    @extend_schema_field(serializers.CharField(help_text="Masked address, e.g. j***@example.com, +44*******123."))
    def get_recipient(self, delivery: Delivery) -> str:
        return mask_recipient(delivery)

    @extend_schema_field(serializers.IntegerField(allow_null=True, help_text="The patient it is to or about."))
    def get_patient(self, delivery: Delivery) -> int | None:
        if delivery.patient_id is not None:
            return delivery.patient_id
        return delivery.alert.patient_id if delivery.alert is not None else None


class InboxMessageSerializer(serializers.ModelSerializer[Delivery]):
    purpose = serializers.SerializerMethodField()
    alert = serializers.IntegerField(source="alert_id", read_only=True, allow_null=True)

    class Meta:
        model = Delivery
        fields = ["id", "purpose", "subject", "body", "alert", "due_at", "read_at"]
        read_only_fields = fields

    @extend_schema_field(_enum(list(Purpose.values), "What the message is for."))
    def get_purpose(self, delivery: Delivery) -> str:
        return delivery.purpose
