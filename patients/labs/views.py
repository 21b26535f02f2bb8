"""Lab results API: enter one result or a panel, import a CSV file, list and read, and the analyte
catalogue for integrators.

Results are clinical records: there is no update or delete; a wrong one is marked entered in error
(RULES §10 V-14) and stays listed. Any clinic staff role may enter and
import results (nurses transcribe lab reports); staff see and write only their own clinics' patients.
Views are thin: an input serializer checks the shape, a service (patients/labs/services.py,
patients/labs/importer.py) checks the clinical content and writes.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from patients.labs import analytes, jobs
from patients.labs.importer import clinic_for, import_lab_results, read_text
from patients.labs.serializers import (
    AnalyteSerializer,
    LabImportAcceptedSerializer,
    LabImportJobSerializer,
    LabImportReportSerializer,
    LabImportRequestSerializer,
    LabPanelCreateSerializer,
    LabResultCreateSerializer,
    LabResultEnteredInErrorSerializer,
    LabResultSerializer,
)
from patients.labs.services import ResultInput, lab_panel_create, lab_result_mark_entered_in_error, lab_result_record
from patients.models import Interpretation, LabImportJob, LabResult, ResultSource
from tracker.api import CheckedAPIView, PlausibleDateFilter
from tracker.permissions import is_prescriber, restrict_to_clinics, staff_clinic_ids

ERRORS = OpenApiResponse(description='Bad input: {"field": ["reason"]}, naming each field that was wrong.')
# Upload guard: a lab CSV of 100,000 rows is a few MB.
MAX_IMPORT_BYTES = 20 * 1024 * 1024


def _flatten(errors: Any, prefix: str = "") -> dict[str, Any]:
    """DRF's nested errors as flat names: {"results": [{}, {"unit": [...]}]} -> {"results[1].unit": [...]}."""
    if isinstance(errors, Mapping):
        flat: dict[str, Any] = {}
        for name, value in errors.items():
            if name == api_settings.NON_FIELD_ERRORS_KEY and prefix:
                key = prefix  # {"results": {"non_field_errors": [...]}} is about `results` itself
            elif isinstance(name, int) or (isinstance(name, str) and name.isdigit()):
                key = f"{prefix}[{name}]"  # ListField / ListSerializer errors keyed by index
            else:
                key = f"{prefix}.{name}" if prefix else str(name)
            if isinstance(value, Mapping) or (isinstance(value, Sequence) and value and not isinstance(value[0], str)):
                flat.update(_flatten(value, key))
            else:
                flat[key] = value
        return flat
    if isinstance(errors, Sequence) and not isinstance(errors, str):
        flat = {}
        for index, value in enumerate(errors):
            if value:
                flat.update(_flatten(value, f"{prefix}[{index}]"))
        return flat
    return {prefix: errors}


def _valid(body: serializers.Serializer[Any]) -> dict[str, Any]:
    if not body.is_valid():
        raise serializers.ValidationError(_flatten(body.errors))
    return dict(body.validated_data)


def _analyte_code(value: str) -> str:
    try:
        return analytes.resolve(value).code
    except analytes.AnalyteError as exc:
        raise serializers.ValidationError({"analyte": [exc.message]}) from None


def _day_starts(queryset: QuerySet[LabResult], day: date) -> Q:
    """ "Collected on or after `day`" in each patient's own time zone (one condition per zone)."""
    zones = queryset.order_by().values_list("patient__timezone", flat=True).distinct()
    condition = Q(pk__in=[])
    for name in zones:
        start = datetime.combine(day, time.min, tzinfo=zoneinfo.ZoneInfo(name))
        condition |= Q(patient__timezone=name, collected_at__gte=start)
    return condition


class LabResultFilter(django_filters.FilterSet):
    analyte = django_filters.CharFilter(method="filter_analyte", help_text="Analyte code or LOINC (any of its codes).")
    collected_from = PlausibleDateFilter(
        method="filter_collected_from", help_text="Collected on or after this date (the patient's time zone)."
    )
    collected_to = PlausibleDateFilter(
        method="filter_collected_to", help_text="Collected on or before this date (the patient's time zone)."
    )
    interpretation = django_filters.ChoiceFilter(choices=Interpretation.choices)
    source = django_filters.ChoiceFilter(choices=ResultSource.choices)
    import_batch = django_filters.CharFilter(help_text="The results of one CSV import.")

    class Meta:
        model = LabResult
        fields = ["patient", "analyte", "collected_from", "collected_to", "interpretation", "source", "import_batch"]

    def filter_analyte(self, queryset: QuerySet[LabResult], name: str, value: str) -> QuerySet[LabResult]:
        return queryset.filter(analyte=_analyte_code(value))

    def filter_collected_from(self, queryset: QuerySet[LabResult], name: str, value: date) -> QuerySet[LabResult]:
        return queryset.filter(_day_starts(queryset, value))

    def filter_collected_to(self, queryset: QuerySet[LabResult], name: str, value: date) -> QuerySet[LabResult]:
        return queryset.exclude(_day_starts(queryset, value + timedelta(days=1)))


class LabResultViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[LabResult],
):
    """Lab results of the user's clinics' patients, newest collection first. Results are clinical
    records: they cannot be changed or deleted through the API, only marked entered in error."""

    serializer_class = LabResultSerializer
    filterset_class = LabResultFilter
    ordering_fields = ["collected_at", "created_at", "id"]

    def get_queryset(self) -> QuerySet[LabResult]:
        queryset = LabResult.objects.select_related("entered_by", "error_recorded_by")
        return restrict_to_clinics(queryset, self.request.user, "patient__clinic")

    def _created(self, results: list[LabResult]) -> list[dict[str, Any]]:
        fresh = self.get_queryset().filter(pk__in=[r.pk for r in results]).order_by("id")
        return list(LabResultSerializer(fresh, many=True, context=self.get_serializer_context()).data)

    @extend_schema(
        request=LabResultCreateSerializer,
        responses={
            201: LabResultSerializer,
            200: OpenApiResponse(
                LabResultSerializer, description="The identical result was already stored: that row, unchanged."
            ),
            400: ERRORS,
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Enter one result. `analyte` is a code (hemoglobin) or LOINC (718-7); the value is converted to
        the analyte's canonical unit and interpreted. Repeating the POST of a result already stored (same
        patient, analyte, collection time, value and lab) answers 200 with that row instead of storing it twice."""
        data = _valid(LabResultCreateSerializer(data=request.data, context=self.get_serializer_context()))
        result, created = lab_result_record(entered_by=request.user, **data)
        if created:
            # The row as just written (its patient checked by the input serializer, entered by this user): the
            # same JSON as reading it back, without reading it back.
            body = LabResultSerializer(result, context=self.get_serializer_context()).data
            return Response(body, status=status.HTTP_201_CREATED)
        return Response(self._created([result])[0], status=status.HTTP_200_OK)

    @extend_schema(request=LabPanelCreateSerializer, responses={201: LabResultSerializer(many=True), 400: ERRORS})
    @action(detail=False, methods=["post"])
    def panel(self, request: Request) -> Response:
        """Enter the results of one sample at once: all of them are stored, or none (each bad result is
        named as results[i].field)."""
        data = _valid(LabPanelCreateSerializer(data=request.data, context=self.get_serializer_context()))
        items = [ResultInput(**item) for item in data.pop("results")]
        results = lab_panel_create(entered_by=request.user, results=items, **data)
        return Response(self._created(results), status=status.HTTP_201_CREATED)

    @extend_schema(
        request={"multipart/form-data": LabImportRequestSerializer},
        responses={
            201: LabImportReportSerializer,
            202: OpenApiResponse(
                LabImportAcceptedSerializer,
                description="A file of more rows than COBALT_IMPORT_SYNC_MAX_ROWS: imported by a worker; follow `job`.",
            ),
            400: OpenApiResponse(
                LabImportReportSerializer,
                description='Nothing written: the per-row errors (or {"file": [reason]} for an unreadable file).',
            ),
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[MultiPartParser, FormParser],
    )
    def import_csv(self, request: Request) -> Response:
        """Import a CSV file of results (columns in docs/lab-results.md). Every row is checked first; with
        any error nothing is written unless `keep_valid` is true. A file of more rows than
        COBALT_IMPORT_SYNC_MAX_ROWS (2,000 by default) is imported by a worker: the answer is 202 with the
        job's URL (`GET /api/lab-imports/{id}/`), whose report, once done, is the one described here."""
        data = _valid(LabImportRequestSerializer(data=request.data, context=self.get_serializer_context()))
        upload = data["file"]
        if upload.size is not None and upload.size > MAX_IMPORT_BYTES:
            raise serializers.ValidationError({"file": [f"is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB"]})
        clinic = clinic_for(request.user, data["clinic"], staff_clinic_ids(request.user))
        text = read_text(upload.read())
        if jobs.runs_as_job(text):
            job = jobs.import_job_create(text=text, clinic=clinic, user=request.user, keep_valid=data["keep_valid"])
            url = request.build_absolute_uri(reverse("lab-import-job-detail", args=[job.pk]))
            return Response({"job": url}, status=status.HTTP_202_ACCEPTED, headers={"Location": url})
        report = import_lab_results(data=text, clinic=clinic, user=request.user, keep_valid=data["keep_valid"])
        code = status.HTTP_201_CREATED if report.created else status.HTTP_400_BAD_REQUEST
        return Response(report.as_dict(), status=code)


    @extend_schema(
        request=LabResultEnteredInErrorSerializer,
        responses={
            200: LabResultSerializer,
            400: ERRORS,
            403: OpenApiResponse(description="Neither a clinician nor the person who entered it within 7 days."),
            409: OpenApiResponse(description='Already marked entered in error: {"entered_in_error": [reason]}.'),
        },
    )
    @action(detail=True, methods=["post"], url_path="entered-in-error")
    def entered_in_error(self, request: Request, pk: Any = None) -> Response:
        """Mark the result entered in error (RULES §10 V-14): it stays listed, with who and why, and no rule
        reads it any more; the patient is re-evaluated (alerts it opened resolve when nothing else holds
        them). A clinician may always; whoever entered it within 7 days [P]."""
        result = self.get_object()
        body = _valid(LabResultEnteredInErrorSerializer(data=request.data))
        marked = lab_result_mark_entered_in_error(
            result=result, user=request.user, clinician=is_prescriber(request.user, result.patient.clinic_id), **body
        )
        return Response(self._created([marked])[0])


class LabImportJobViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet[LabImportJob]):
    """A large CSV import run by a worker (202 of `POST /api/lab-results/import/`): poll it until `status`
    is done (then `report`) or failed (then `failure`; nothing was stored). A job whose worker stopped (no
    progress for COBALT_IMPORT_STALE_SECONDS) reads as failed, saying so: upload the file again. Your clinics'
    imports only."""

    serializer_class = LabImportJobSerializer

    def get_queryset(self) -> QuerySet[LabImportJob]:
        return restrict_to_clinics(LabImportJob.objects.all(), self.request.user, "clinic")

    def get_object(self) -> LabImportJob:
        # A job whose worker stopped reads as failed, saying so (patients/labs/jobs.py).
        return jobs.fail_if_stale(super().get_object())


class AnalyteCatalogueView(CheckedAPIView):
    """The analytes Cobalt accepts: codes, LOINC codes (preferred and alternates), the canonical unit and
    every accepted unit with its exact conversion factor. Static reference data for integrators."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: AnalyteSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(AnalyteSerializer(analytes.CATALOGUE, many=True).data)
