"""Patients and clinics API. Views are thin: validate, call a service (or save), serialize."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import SearchFilter
from rest_framework.request import Request
from rest_framework.response import Response

from patients.models import Clinic, Patient
from patients.serializers import (
    CalendarJobAcceptedSerializer,
    CalendarLinkSerializer,
    ClinicCalendarSerializer,
    ClinicSerializer,
    PatientSerializer,
)
from patients.services import clinic_change_calendar, patient_rotate_ical_token
from tracker.api import ClinicScopedFilterBackend, KnownQueryParameters, Ordering
from tracker.permissions import CLINIC_ADMINS, require_role, restrict_to_clinics, staff_clinic_ids


class PatientViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[Patient],
):
    """Patients of the clinics the user works in. Patients are never deleted through the API:
    their treatment record must stay."""

    serializer_class = PatientSerializer
    filter_backends = [KnownQueryParameters, ClinicScopedFilterBackend, SearchFilter, Ordering]
    filterset_fields = ["clinic", "sex", "deficiency_cause", "reminder_channel"]
    search_fields = ["given_name", "family_name", "mrn"]
    ordering_fields = ["family_name", "given_name", "mrn", "birth_date", "created_at", "id"]

    def get_queryset(self) -> QuerySet[Patient]:
        return restrict_to_clinics(Patient.objects.all(), self.request.user, "clinic")

    @extend_schema(request=None, responses=CalendarLinkSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-calendar-link")
    def rotate_calendar_link(self, request: Request, pk: Any = None) -> Response:
        """Give the patient a new calendar feed address (e.g. they shared it by mistake): the old one stops
        working at once. Answers the new address to pass on to the patient."""
        patient = self.get_object()
        token = patient_rotate_ical_token(patient=patient, user=request.user, reason="calendar link renewed by staff")
        return Response({"ical_url": request.build_absolute_uri(reverse("ical-feed", args=[token]))})


class ClinicViewSet(viewsets.ReadOnlyModelViewSet[Clinic]):
    """The clinics the user works in, with their calendars."""

    serializer_class = ClinicSerializer

    def get_queryset(self) -> QuerySet[Clinic]:
        return Clinic.objects.filter(id__in=staff_clinic_ids(self.request.user)).prefetch_related("closed_dates")

    @extend_schema(
        request=ClinicCalendarSerializer,
        responses={
            200: ClinicSerializer,
            202: OpenApiResponse(
                CalendarJobAcceptedSerializer,
                description="More active regimens than COBALT_CALENDAR_SYNC_MAX_REGIMENS: the calendar is saved and "
                "a worker re-plans the doses in batches; follow `job`.",
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def calendar(self, request: Request, pk: Any = None) -> Response:
        """Set the open weekdays and/or closed dates; planned doses of active regimens are re-planned, within the
        request, or at a clinic of more than COBALT_CALENDAR_SYNC_MAX_REGIMENS (200) active regimens by a worker:
        then the answer is 202 with the job's URL (`GET /api/replan-jobs/{id}/`)."""
        clinic = self.get_object()
        require_role(request.user, clinic.pk, CLINIC_ADMINS, "change the clinic calendar")
        body = ClinicCalendarSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        change = clinic_change_calendar(clinic=clinic, user=request.user, **body.validated_data)
        data = ClinicSerializer(self.get_queryset().get(pk=clinic.pk)).data
        if change.job is None:
            return Response(data)
        url = request.build_absolute_uri(reverse("replan-job-detail", args=[change.job.pk]))
        return Response({"job": url, "clinic": data}, status=status.HTTP_202_ACCEPTED, headers={"Location": url})
