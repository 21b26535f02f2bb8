"""Notifications API.

- Alerts: list and read the alerts of the user's clinics' patients, and acknowledge one (RULES §3.6:
  record who acknowledged it and what they did). Opening and resolving alerts is the rules' work
  (patients/evaluation.py, patients/safety.py), never the client's.
- Notifications: the delivery log of the user's clinics (staff only; SPEC "Public interface") and the
  user's own staff inbox.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from notifications.alerts import alert_acknowledge_by_staff
from notifications.models import (
    Alert,
    AlertKind,
    AlertStatus,
    Channel,
    Delivery,
    DeliveryStatus,
    Purpose,
    Severity,
)
from notifications.selectors import severity_rank
from notifications.serializers import (
    AlertAcknowledgeSerializer,
    AlertSerializer,
    InboxMessageSerializer,
    NotificationSerializer,
)
from tracker.api import IdFilter
from tracker.permissions import restrict_to_clinics, staff_clinic_ids

ERRORS = OpenApiResponse(description='Bad input: {"field": ["reason"]}.')
CONFLICT = OpenApiResponse(description='The alert is resolved or already acknowledged: {"status": ["reason"]}.')

ORDERINGS = {
    "newest": ("-opened_at", "-id"),
    "oldest": ("opened_at", "id"),
    "most_severe": ("-severity_rank", "-opened_at", "-id"),
}


class AlertFilter(django_filters.FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=AlertKind.choices, help_text="Repeat for several kinds.")
    status = django_filters.MultipleChoiceFilter(
        choices=AlertStatus.choices, help_text="Repeat for several, e.g. status=open&status=acknowledged."
    )
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices)
    clinic = IdFilter(field_name="patient__clinic", help_text="Clinic id.")
    ordering = django_filters.ChoiceFilter(
        choices=[(k, k.replace("_", " ")) for k in ORDERINGS],
        method="filter_ordering",
        help_text="newest (default), oldest, or most_severe (critical first, then newest).",
    )

    class Meta:
        model = Alert
        fields = ["patient", "kind", "status", "severity", "clinic", "ordering"]

    def filter_ordering(self, queryset: QuerySet[Alert], name: str, value: str) -> QuerySet[Alert]:
        return queryset.order_by(*ORDERINGS[value])


class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Alert]):
    """Alerts of the user's clinics' patients, newest first (`ordering=most_severe` for critical first)."""

    serializer_class = AlertSerializer
    filterset_class = AlertFilter

    def get_queryset(self) -> QuerySet[Alert]:
        queryset = (
            Alert.objects.select_related("patient", "acknowledged_by")
            .annotate(severity_rank=severity_rank())
            .order_by(*ORDERINGS["newest"])
        )
        return restrict_to_clinics(queryset, self.request.user, "patient__clinic")

    @extend_schema(
        request=AlertAcknowledgeSerializer,
        responses={200: AlertSerializer, 400: ERRORS, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: Any = None) -> Response:
        """Acknowledge the alert with a `note` of what was done (required for critical alerts). A critical
        alert whose target a later result met (`target_met`) is closed by it (RULES §10 V-2). A resolved alert
        cannot be acknowledged (409); repeating the same acknowledgement is a no-op."""
        alert = self.get_object()
        body = AlertAcknowledgeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        alert = alert_acknowledge_by_staff(alert=alert, user=request.user, note=str(body.validated_data["note"]))
        return self._render(alert)

    def _render(self, alert: Alert) -> Response:
        fresh = self.get_queryset().get(pk=alert.pk)
        return Response(AlertSerializer(fresh, context=self.get_serializer_context()).data, status=status.HTTP_200_OK)


# --- The delivery log and the staff inbox ----------------------------------------------------------------


class IsClinicStaffOrSuperuser(BasePermission):
    """Clinic staff, or a superuser (who sees every clinic's log)."""

    message = "Only clinic staff may use this endpoint."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (user.is_superuser or staff_clinic_ids(user)))


class UTCDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time that must carry an offset, turned into UTC here: the database refuses offsets
    such as +21:22 and years that fall outside its range once converted."""

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        try:
            parsed = parse_datetime(str(value).strip())
        except ValueError:  # well-formed but impossible, e.g. month 13
            parsed = None
        if parsed is None:
            raise ValidationError("enter an ISO 8601 date-time, e.g. 2027-01-04T09:00:00+00:00", code="invalid")
        if timezone.is_naive(parsed):
            raise ValidationError("give a time zone offset, e.g. 2027-01-04T09:00:00+00:00", code="invalid")
        try:
            return parsed.astimezone(UTC)
        except OverflowError as exc:
            raise ValidationError("is out of range", code="invalid") from exc


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCDateTimeField


class NotificationFilter(django_filters.FilterSet):
    patient = IdFilter(method="filter_patient", help_text="Patient id (to or about them).")
    status = django_filters.MultipleChoiceFilter(choices=DeliveryStatus.choices, help_text="Repeat for several.")
    channel = django_filters.MultipleChoiceFilter(choices=Channel.choices)
    purpose = django_filters.MultipleChoiceFilter(choices=Purpose.choices)
    due_from = UTCDateTimeFilter(
        field_name="due_at", lookup_expr="gte", help_text="Due at or after (ISO 8601 with offset)."
    )
    due_to = UTCDateTimeFilter(
        field_name="due_at", lookup_expr="lte", help_text="Due at or before (ISO 8601 with offset)."
    )

    class Meta:
        model = Delivery
        fields = ["patient", "status", "channel", "purpose", "due_from", "due_to"]

    def filter_patient(self, queryset: QuerySet[Delivery], name: str, value: int) -> QuerySet[Delivery]:
        return queryset.filter(Q(patient_id=value) | Q(alert__patient_id=value))


class NotificationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet[Delivery]):
    """The delivery log of the user's clinics, latest due first: patient reminders, and staff messages
    about their patients' alerts (plus the user's own digests). Recipients are masked."""

    serializer_class = NotificationSerializer
    filterset_class = NotificationFilter
    ordering_fields = ["due_at", "sent_at", "id"]
    permission_classes = [IsClinicStaffOrSuperuser]

    def get_queryset(self) -> QuerySet[Delivery]:
        user: Any = self.request.user
        queryset = Delivery.objects.select_related("user", "alert").order_by("-due_at", "-id")
        if getattr(self, "swagger_fake_view", False):
            return queryset.none()
        if self.action in ("inbox", "read"):
            return queryset.filter(channel=Channel.INBOX, user=user)
        if user.is_superuser:
            return queryset
        clinics = staff_clinic_ids(user)
        return queryset.filter(
            Q(patient__clinic_id__in=clinics) | Q(alert__patient__clinic_id__in=clinics) | Q(user=user)
        )

    @extend_schema(responses=InboxMessageSerializer(many=True), filters=False)
    @action(
        detail=False,
        methods=["get"],
        serializer_class=InboxMessageSerializer,
        filterset_class=None,
        ordering_fields=None,  # the inbox has its own order: unread first, then newest
    )
    def inbox(self, request: Request) -> Response:
        """Your own inbox messages (alerts, escalations, digests) that are due, unread first, newest first."""
        queryset = (
            self.filter_queryset(self.get_queryset())
            .filter(due_at__lte=timezone.now())
            .exclude(status__in=[DeliveryStatus.CANCELLED, DeliveryStatus.FAILED])
            .order_by(F("read_at").asc(nulls_first=True), "-due_at", "-id")
        )
        page = self.paginate_queryset(queryset)
        if page is not None:
            return self.get_paginated_response(InboxMessageSerializer(page, many=True).data)
        return Response(InboxMessageSerializer(queryset, many=True).data)

    @extend_schema(
        request=None,
        responses={200: InboxMessageSerializer, 404: OpenApiResponse(description="Not one of your inbox messages.")},
    )
    @action(detail=True, methods=["post"], serializer_class=InboxMessageSerializer, filterset_class=None)
    def read(self, request: Request, pk: Any = None) -> Response:
        """Mark one of your inbox messages as read (repeating it keeps the first read time)."""
        message = self.get_object()
        if message.read_at is None:
            Delivery.objects.filter(pk=message.pk, read_at__isnull=True).update(read_at=timezone.now())
            message.refresh_from_db(fields=["read_at"])
        return Response(InboxMessageSerializer(message).data)
