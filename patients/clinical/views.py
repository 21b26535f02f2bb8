"""Medications and patient facts/events API).

Any clinic staff role may record them (nurses transcribe orders and histories); staff see and write
only their own clinics' patients (another clinic's patient is "not found"). Medications and facts are
clinical records: a medication only gets a stop date, a fact only an end date; nothing is deleted.
Recording folic acid before B12 (S-1), cyanocobalamin with Leber's disease (S-10), B12 with a
recorded allergy (S-11) or a wrong B12 route (S-12) answers 400 with the warning codes until the
request lists them in `acknowledge` (docs/safety-and-alerts.md).
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone as djtz
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from patients.clinical import services as clinical_services
from patients.clinical.serializers import (
    MedicationCreateSerializer,
    MedicationSerializer,
    MedicationUpdateSerializer,
    PatientFactCreateSerializer,
    PatientFactEndSerializer,
    PatientFactSerializer,
)
from patients.models import FactKind, Medication, MedicationKind, PatientFact
from tracker.permissions import restrict_to_clinics

ERRORS = OpenApiResponse(
    description='Bad input: {"field": ["reason"]}, naming each field that was wrong. Unacknowledged safety '
    'warnings: {"acknowledge": ["..."], "warnings": [{"code", "rule", "message", "details"}]}; nothing is written.'
)
CONFLICT = OpenApiResponse(description='Conflicts with what is recorded: {"field": ["reason"]}.')


class MedicationFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=MedicationKind.choices)
    active = django_filters.BooleanFilter(
        method="filter_active", help_text="true: no stop date or a stop date today or later; false: stopped."
    )

    class Meta:
        model = Medication
        fields = ["patient", "kind", "active"]

    def filter_active(self, queryset: QuerySet[Medication], name: str, value: bool) -> QuerySet[Medication]:
        current = Q(stop_date__isnull=True) | Q(stop_date__gte=djtz.localdate())
        return queryset.filter(current) if value else queryset.exclude(current)


class PatientFactFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=FactKind.choices)
    absent = django_filters.BooleanFilter()

    class Meta:
        model = PatientFact
        fields = ["patient", "kind", "absent"]


def _valid(serializer: serializers.Serializer[Any]) -> dict[str, Any]:
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class MedicationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Medication],
):
    """Concomitant medications of the user's clinics' patients (folic acid, B12 given elsewhere, iron),
    newest start first."""

    serializer_class = MedicationSerializer
    filterset_class = MedicationFilter
    # Actions that can answer 400 with safety warnings to acknowledge (documented by tracker.schema.AutoSchema).
    safety_warning_actions: ClassVar[frozenset[str]] = frozenset({"create"})
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Medication]:
        queryset = Medication.objects.select_related("patient", "created_by")
        return restrict_to_clinics(queryset, self.request.user, "patient__clinic")

    def _render(self, medication: Medication, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=medication.pk)
        return Response(MedicationSerializer(fresh, context=self.get_serializer_context()).data, status=code)

    @extend_schema(request=MedicationCreateSerializer, responses={201: MedicationSerializer, 400: ERRORS})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Record a medication. Safety warnings (S-1, S-10, S-11, S-12) must be listed in `acknowledge`;
        the hard stops also need `override_reason`. An acknowledged override opens its alert."""
        data = _valid(MedicationCreateSerializer(data=request.data, context=self.get_serializer_context()))
        medication = clinical_services.medication_create(user=request.user, **data)
        return self._render(medication, status.HTTP_201_CREATED)

    @extend_schema(request=MedicationUpdateSerializer, responses={200: MedicationSerializer, 400: ERRORS})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Set (or clear) the stop date. Nothing else of a recorded medication can change: record a new
        one instead."""
        medication = self.get_object()
        other = sorted(set(request.data) - {"stop_date"})
        if other:
            raise serializers.ValidationError(
                {name: ["cannot be changed; only stop_date can. Record a new medication instead."] for name in other}
            )
        data = _valid(MedicationUpdateSerializer(data=request.data))
        medication = clinical_services.medication_set_stop_date(
            medication=medication, stop_date=data["stop_date"], user=request.user
        )
        return self._render(medication)


class PatientFactViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[PatientFact],
):
    """Clinical facts and events of the user's clinics' patients (transfusion, neurological symptoms,
    pregnancy, Leber's disease, cobalamin allergy, ...), most recently recorded first."""

    serializer_class = PatientFactSerializer
    filterset_class = PatientFactFilter

    def get_queryset(self) -> QuerySet[PatientFact]:
        queryset = PatientFact.objects.select_related("patient", "recorded_by")
        return restrict_to_clinics(queryset, self.request.user, "patient__clinic")

    def _render(self, fact: PatientFact, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=fact.pk)
        return Response(PatientFactSerializer(fresh, context=self.get_serializer_context()).data, status=code)

    @extend_schema(request=PatientFactCreateSerializer, responses={201: PatientFactSerializer, 400: ERRORS})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Record a fact (from `onset_date`), an event (a transfusion on `onset_date`), or with
        `absent: true` that the fact was checked and is not present."""
        data = _valid(PatientFactCreateSerializer(data=request.data, context=self.get_serializer_context()))
        fact = clinical_services.fact_create(user=request.user, **data)
        return self._render(fact, status.HTTP_201_CREATED)

    @extend_schema(request=PatientFactEndSerializer, responses={200: PatientFactSerializer, 400: ERRORS, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def end(self, request: Request, pk: Any = None) -> Response:
        """End a present fact on `end_date` (today by default): pregnancy ended, allergy disproved."""
        fact = self.get_object()
        data = _valid(PatientFactEndSerializer(data=request.data))
        end_date: date | None = data["end_date"]
        fact = clinical_services.fact_end(fact=fact, end_date=end_date, user=request.user)
        return self._render(fact)
