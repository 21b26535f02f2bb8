"""Alerts API: list and read the alerts of the user's clinics' patients, and acknowledge one (RULES
§3.6: record who acknowledged it and what they did). Opening and resolving alerts is the rules'
work (monitoring/evaluation.py, monitoring/safety.py), never the client's."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db import transaction
from django.db.models import Case, IntegerField, QuerySet, Value, When
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from notifications.alert_serializers import AlertAcknowledgeSerializer, AlertSerializer
from notifications.alerts import alert_acknowledge
from notifications.models import SEVERITY_RANK, Alert, AlertKind, AlertStatus, Severity
from tracker.errors import ConflictError, ServiceError
from tracker.permissions import restrict_to_clinics

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
    clinic = django_filters.NumberFilter(field_name="patient__clinic", help_text="Clinic id.")
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


def _severity_rank() -> Case:
    return Case(
        *(When(severity=code, then=Value(rank)) for code, rank in SEVERITY_RANK.items()),
        default=Value(0),
        output_field=IntegerField(),
    )


class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Alert]):
    """Alerts of the user's clinics' patients, newest first (`ordering=most_severe` for critical first)."""

    serializer_class = AlertSerializer
    filterset_class = AlertFilter

    def get_queryset(self) -> QuerySet[Alert]:
        queryset = (
            Alert.objects.select_related("patient", "acknowledged_by")
            .annotate(severity_rank=_severity_rank())
            .order_by(*ORDERINGS["newest"])
        )
        return restrict_to_clinics(queryset, self.request.user, "patient__clinic")

    @extend_schema(
        request=AlertAcknowledgeSerializer,
        responses={200: AlertSerializer, 400: ERRORS, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: Any = None) -> Response:
        """Acknowledge the alert with a `note` of what was done (required for critical alerts). A
        resolved alert cannot be acknowledged (409); repeating the same acknowledgement is a no-op."""
        alert = self.get_object()
        body = AlertAcknowledgeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        note = str(body.validated_data["note"]).strip()
        with transaction.atomic():
            alert = Alert.objects.select_for_update().get(pk=alert.pk)
            if alert.status == AlertStatus.RESOLVED:
                when = f" on {alert.resolved_at:%Y-%m-%d %H:%M %Z}" if alert.resolved_at else ""
                raise ConflictError("status", f"the alert was resolved{when}; there is nothing to acknowledge")
            if alert.status == AlertStatus.ACKNOWLEDGED:
                if alert.acknowledged_by_id == request.user.pk and alert.acknowledgement_note == note:
                    return self._render(alert)
                who = alert.acknowledged_by.get_username() if alert.acknowledged_by else "someone"
                raise ConflictError("status", f"the alert was already acknowledged by {who}")
            if alert.severity == Severity.CRITICAL and not note:
                raise ServiceError("note", "a critical alert needs a note saying what was done")
            alert = alert_acknowledge(alert=alert, user=request.user, note=note)
        return self._render(alert)

    def _render(self, alert: Alert) -> Response:
        fresh = self.get_queryset().get(pk=alert.pk)
        return Response(AlertSerializer(fresh, context=self.get_serializer_context()).data, status=status.HTTP_200_OK)
