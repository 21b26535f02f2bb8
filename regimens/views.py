"""Protocols, schedule preview, regimens, doses and lab rechecks API.

Views are thin: an input serializer checks the request, one service does the
write (services are atomic and raise ServiceError, which tracker.api turns into a 4xx naming
the field), and an output serializer renders the result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from patients.staff import admin_clinic
from regimens import jobs, services
from regimens.filters import DoseFilter, LabRecheckFilter, RegimenFilter
from regimens.models import (
    DoseStatus,
    LabRecheck,
    Protocol,
    ProtocolPhase,
    Regimen,
    ReplanJob,
    ScheduledDose,
)
from regimens.selectors import protocols_for
from regimens.serializers import (
    DoseAdministerSerializer,
    DoseAppointmentTimeSerializer,
    DoseDetailSerializer,
    DoseNotGivenSerializer,
    DoseRows,
    DoseSerializer,
    EnteredInErrorSerializer,
    LabRecheckSerializer,
    ProtocolCopySerializer,
    ProtocolPhaseChangeSerializer,
    ProtocolRetireSerializer,
    ProtocolSerializer,
    RecheckCancelSerializer,
    RecheckCompleteSerializer,
    RegimenConfirmGateSerializer,
    RegimenCreateSerializer,
    RegimenDetailSerializer,
    RegimenEndLoadingSerializer,
    RegimenReviewSerializer,
    RegimenSerializer,
    RegimenShortenIntervalSerializer,
    RegimenStopSerializer,
    ReplanJobSerializer,
    SchedulePreviewRequestSerializer,
    SchedulePreviewSerializer,
    dose_row,
    dose_rows,
)
from tracker.api import CheckedAPIView
from tracker.permissions import CLINIC_ADMINS, PRESCRIBERS, is_prescriber, require_role, restrict_to_clinics

ERRORS = OpenApiResponse(description='Bad input: {"field": ["reason"]}, naming each field that was wrong.')
CONFLICT = OpenApiResponse(description='Conflicts with what is recorded: {"field": ["reason"]}.')


CODE = OpenApiParameter("code", str, OpenApiParameter.PATH, description="Protocol code (or numeric id).")
NOT_ALLOWED = OpenApiResponse(
    description="Not a clinic admin of the protocol's clinic, or a shared protocol (superusers change those)."
)


@extend_schema_view(retrieve=extend_schema(parameters=[CODE]))
class ProtocolViewSet(viewsets.ReadOnlyModelViewSet[Protocol]):
    """The protocols (regimen templates) with their phases and lab-recheck steps: the shared ones (`clinic`
    null; superusers edit them in the Django admin) and your clinics' own copies, which a clinic admin makes
    (`copy`), localises (`phases/{key}`) and retires (`retire`). Another clinic's copy is not found (404)."""

    serializer_class = ProtocolSerializer
    lookup_field = "code"
    lookup_value_regex = "[^/]+"
    filterset_fields = ["active", "is_builtin", "clinic"]

    def get_queryset(self) -> QuerySet[Protocol]:
        return protocols_for(self.request.user)

    def get_object(self) -> Protocol:
        value = str(self.kwargs["code"])
        # isascii: "¹".isdigit() is True but int("¹") fails (a 500 the fuzzer found); such a code is just unknown.
        lookup: dict[str, int | str] = {"pk": int(value)} if value.isascii() and value.isdigit() else {"code": value}
        protocol: Protocol = get_object_or_404(self.get_queryset(), **lookup)
        return protocol

    def _protocol(self, protocol: Protocol, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=protocol.pk)
        return Response(ProtocolSerializer(fresh, context=self.get_serializer_context()).data, status=code)

    @extend_schema(
        parameters=[CODE],
        request=ProtocolCopySerializer,
        responses={201: ProtocolSerializer, 400: ERRORS, 403: NOT_ALLOWED},
    )
    @action(detail=True, methods=["post"])
    def copy(self, request: Request, code: str | None = None) -> Response:
        """A clinic admin makes their clinic's own copy of a shared protocol: same phases, ranges and recheck
        steps, a new code (`<code>-<clinic>`). Their clinic's staff then see and use it; no other clinic does."""
        protocol = self.get_object()
        body = ProtocolCopySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        clinic = admin_clinic(request.user, data.get("clinic"), "copy a protocol")
        copy = services.protocol_copy(
            protocol=protocol, clinic=clinic, by=request.user, name=data["name"], reason=data["reason"]
        )
        return self._protocol(copy, status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[CODE, OpenApiParameter("key", str, OpenApiParameter.PATH, description="The phase's key.")],
        request=ProtocolPhaseChangeSerializer,
        responses={200: ProtocolSerializer, 400: ERRORS, 403: NOT_ALLOWED},
    )
    @action(detail=True, methods=["patch"], url_path=r"phases/(?P<key>[^/]+)")
    def phase(self, request: Request, code: str | None = None, key: str | None = None) -> Response:
        """Localise a phase of your clinic's copy: `dose_mcg`, `spacing_value` and `end_value` within the phase's
        ranges (as copied; a number with no range stays as it is), `review_every_days` where the phase has a
        review prompt, `prompt`. A 400 names every field refused; nothing is written then."""
        protocol = self.get_object()
        phase = get_object_or_404(ProtocolPhase, protocol=protocol, key=key)
        body = ProtocolPhaseChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        changes = dict(body.validated_data)
        reason = changes.pop("reason", "")
        services.protocol_phase_update(phase=phase, by=request.user, reason=reason, **changes)
        return self._protocol(protocol)

    @extend_schema(
        parameters=[CODE],
        request=ProtocolRetireSerializer,
        responses={200: ProtocolSerializer, 400: ERRORS, 403: NOT_ALLOWED},
    )
    @action(detail=True, methods=["post"])
    def retire(self, request: Request, code: str | None = None) -> Response:
        """Retire your clinic's copy: no new regimen starts on it; running regimens keep their snapshot."""
        protocol = self.get_object()
        body = ProtocolRetireSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.protocol_retire(protocol=protocol, by=request.user, reason=body.validated_data["reason"])
        return self._protocol(protocol)


class SchedulePreviewView(CheckedAPIView):
    """The schedule a regimen would get; nothing is stored."""

    @extend_schema(request=SchedulePreviewRequestSerializer, responses={200: SchedulePreviewSerializer, 400: ERRORS})
    def post(self, request: Request) -> Response:
        body = SchedulePreviewRequestSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        plan = services.schedule_preview(**body.validated_data)
        return Response(SchedulePreviewSerializer(plan).data)


class RegimenViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Regimen],
):
    """Regimens of the user's clinics' patients. Creating one plans its doses and rechecks at
    once; the actions record clinician decisions, each re-planning the schedule."""

    filterset_class = RegimenFilter
    # Actions that can answer 400 with safety warnings to acknowledge (documented by tracker.schema.AutoSchema).
    safety_warning_actions: ClassVar[frozenset[str]] = frozenset({"create", "end_loading", "stop"})

    def get_queryset(self) -> QuerySet[Regimen]:
        queryset = Regimen.objects.select_related("patient", "protocol").prefetch_related(
            Prefetch("protocol__phases", queryset=ProtocolPhase.objects.order_by("order"))
        )
        if self.action != "list":
            # The detail view carries the schedule; the list stays light.
            queryset = queryset.prefetch_related(
                Prefetch(
                    "doses",
                    queryset=ScheduledDose.objects.exclude(status=DoseStatus.CANCELLED).select_related("patient"),
                ),
                Prefetch("lab_rechecks", queryset=LabRecheck.objects.select_related("patient")),
                "decisions",
            )
        return restrict_to_clinics(queryset, self.request.user, "patient__clinic")

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
        return RegimenSerializer if self.action == "list" else RegimenDetailSerializer

    def _detail(self, regimen: Regimen, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=regimen.pk)
        return Response(RegimenDetailSerializer(fresh, context=self.get_serializer_context()).data, status=code)

    @extend_schema(request=RegimenCreateSerializer, responses={201: RegimenDetailSerializer, 400: ERRORS})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = RegimenCreateSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        require_role(request.user, body.validated_data["patient"].clinic_id, PRESCRIBERS, "start a regimen")
        regimen = services.regimen_start(user=request.user, **body.validated_data)
        return self._detail(regimen, status.HTTP_201_CREATED)

    def _decide(
        self, request: Request, body_class: type[BaseSerializer[Any]], service: Callable[..., object], doing: str
    ) -> Response:
        """One clinician decision: prescribers only, the body checked by `body_class`, the
        write done by `service`, the regimen rendered as it is afterwards."""
        regimen = self.get_object()
        require_role(request.user, regimen.patient.clinic_id, PRESCRIBERS, doing)
        body = body_class(data=request.data)
        body.is_valid(raise_exception=True)
        service(regimen=regimen, user=request.user, **body.validated_data)
        return self._detail(regimen)

    @extend_schema(
        request=RegimenEndLoadingSerializer,
        responses={200: RegimenDetailSerializer, 400: ERRORS, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"], url_path="end-loading")
    def end_loading(self, request: Request, pk: Any = None) -> Response:
        """A clinician ends the open-ended phase in progress: no further improvement (R-UK-2). Ending the
        last phase of lifelong therapy for an irreversible cause needs the S-5 hard stop
        `lifelong_therapy_stopped` in `acknowledge` and an `override_reason`."""
        return self._decide(request, RegimenEndLoadingSerializer, services.regimen_end_phase, "end a loading phase")

    @extend_schema(
        request=RegimenStopSerializer,
        responses={200: RegimenDetailSerializer, 400: ERRORS, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: Any = None) -> Response:
        """Stop the regimen; stopping lifelong therapy for an irreversible cause needs the S-5
        warning `lifelong_therapy_stopped` in `acknowledge`, and then a `reason` long enough to be the
        hard stop's override reason."""
        return self._decide(request, RegimenStopSerializer, services.regimen_stop, "stop a regimen")

    @extend_schema(
        request=RegimenConfirmGateSerializer,
        responses={200: RegimenDetailSerializer, 400: ERRORS, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"], url_path="confirm-gate")
    def confirm_gate(self, request: Request, pk: Any = None) -> Response:
        """A clinician confirms the condition that opens the next phase (R-US-1)."""
        return self._decide(
            request, RegimenConfirmGateSerializer, services.regimen_confirm_gate, "confirm a phase gate"
        )

    @extend_schema(
        request=RegimenReviewSerializer,
        responses={200: RegimenDetailSerializer, 400: ERRORS, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def review(self, request: Request, pk: Any = None) -> Response:
        """Record a §1.3 review of the open-ended phase; `plateau_reached` ends it."""
        return self._decide(request, RegimenReviewSerializer, services.regimen_record_review, "record a phase review")

    @extend_schema(
        request=RegimenShortenIntervalSerializer,
        responses={200: RegimenDetailSerializer, 400: ERRORS, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"], url_path="shorten-interval")
    def shorten_interval(self, request: Request, pk: Any = None) -> Response:
        """Shorten the interval of the phase in progress (RULES R-UK-4, NG239: at any time; never longer): the
        regimen goes on (same T0) with `spacing_value` in its `options`, the decision is recorded and the planned
        doses move at once (the next one new interval after the last dose of the phase, not before today). Equal or
        longer is a 400; outside the protocol's range needs `override_reason`; a phase given daily, on alternate
        days or N times a week, or a regimen not active, is a 409."""
        return self._decide(
            request,
            RegimenShortenIntervalSerializer,
            lambda *, regimen, user, **body: services.regimen_shorten_interval(regimen=regimen, by=user, **body),
            "shorten a regimen's interval",
        )


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(
                "warnings",
                str,
                enum=["true", "false"],
                description=(
                    "true: each row is a DoseDetail, carrying `warnings` as in the dose detail (RULES §10 V-12). "
                    "Costs a few queries per planned dose: filter the list to today's doses first (due_to)."
                ),
            )
        ],
    ),
    retrieve=extend_schema(responses=DoseDetailSerializer),
)
class DoseViewSet(viewsets.ReadOnlyModelViewSet[ScheduledDose]):
    """Scheduled doses of the user's clinics' patients: the nurse's worklist. The dose detail (and the
    list with ?warnings=true) shows the safety warnings giving a planned dose now would raise."""

    serializer_class = DoseSerializer
    filterset_class = DoseFilter
    ordering_fields = ["due_date", "administered_at", "recorded_at", "id"]
    query_parameters = {"list": ["warnings"]}
    # Actions that can answer 400 with safety warnings to acknowledge (documented by tracker.schema.AutoSchema).
    safety_warning_actions: ClassVar[frozenset[str]] = frozenset({"administer"})

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
        if self.action == "retrieve":
            return DoseDetailSerializer
        if self.action == "list" and self._warnings_asked():
            return DoseDetailSerializer
        return DoseSerializer

    def _warnings_asked(self) -> bool:
        """The list's ?warnings=: true or false (the default); any other value is a 400."""
        asked = self.request.query_params.get("warnings", "false")
        if asked not in ("true", "false"):
            raise ValidationError({"warnings": ["must be true or false"]})
        return asked == "true"

    def get_queryset(self) -> QuerySet[ScheduledDose]:
        # The patient is needed for `overdue` (their time zone): joined, not fetched per row; with their clinic for a
        # write on one dose (its re-plan reads the clinic's calendar; the dose services take the patient as read here).
        queryset = ScheduledDose.objects.select_related("patient__clinic" if self.detail else "patient")
        # The dose row's own clinic (kept equal to the patient's): the worklist's index, no join to filter.
        return restrict_to_clinics(queryset, self.request.user, "clinic")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # The worklist (issue 16): the page's rows read as tuples and rendered by dose_rows, the same JSON as
        # DoseSerializer's without a model instance and a field object per value. ?warnings=true keeps the
        # serializer (each planned dose's warnings).
        if request.query_params.get("warnings") == "true":
            return super().list(request, *args, **kwargs)
        rows = DoseRows(self.filter_queryset(self.get_queryset()))
        page: list[Any] | None = self.paginate_queryset(rows)  # type: ignore[arg-type]
        # Any other value than false is a 400 here, after the filters and the page, as the serializer's list checks.
        self._warnings_asked()
        return self.get_paginated_response(dose_rows(page)) if page is not None else Response(dose_rows(rows))

    def _dose(self, dose: ScheduledDose) -> Response:
        # The row as the service wrote it under its lock, with its patient (their time zone: `overdue`): the same JSON
        # as reading it back, without reading it back; a dose without its patient at hand is read again.
        if not ScheduledDose.patient.is_cached(dose):
            dose = self.get_queryset().get(pk=dose.pk)
        return Response(dose_row(dose))

    def _record(
        self, request: Request, body_class: type[BaseSerializer[Any]], service: Callable[..., ScheduledDose]
    ) -> Response:
        """Record what happened to the dose: the body checked by `body_class`, the write done by `service`."""
        dose = self.get_object()
        body = body_class(data=request.data)
        body.is_valid(raise_exception=True)
        return self._dose(service(dose=dose, user=request.user, **body.validated_data))

    @extend_schema(
        request=DoseAdministerSerializer,
        responses={200: DoseSerializer, 400: ERRORS, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def administer(self, request: Request, pk: Any = None) -> Response:
        """Record the dose as given; later doses are re-planned from the actual date. Repeating
        the same request changes nothing (200); a different one for a given dose is a 409."""
        return self._record(request, DoseAdministerSerializer, services.dose_record_administration)

    @extend_schema(
        request=DoseNotGivenSerializer,
        responses={200: DoseSerializer, 400: ERRORS, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"], url_path="not-given")
    def not_given(self, request: Request, pk: Any = None) -> Response:
        """Record the dose as not given (did not attend, refused, held); a replacement is planned."""
        return self._record(request, DoseNotGivenSerializer, services.dose_record_not_given)

    @extend_schema(
        request=DoseAppointmentTimeSerializer,
        responses={200: DoseSerializer, 400: ERRORS, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"], url_path="appointment-time")
    def appointment_time(self, request: Request, pk: Any = None) -> Response:
        """Set the time of a planned clinic dose's appointment (null: the clinic's session start). Reminders
        and the patient's calendar show it."""
        return self._record(request, DoseAppointmentTimeSerializer, services.dose_set_appointment_time)

    @extend_schema(
        request=EnteredInErrorSerializer,
        responses={
            200: DoseSerializer,
            400: ERRORS,
            403: OpenApiResponse(description="Neither a clinician nor the nurse who recorded it within 7 days."),
            409: CONFLICT,
        },
    )
    @action(detail=True, methods=["post"], url_path="entered-in-error")
    def entered_in_error(self, request: Request, pk: Any = None) -> Response:
        """Mark a dose recorded as given or not given as entered in error (RULES §10 V-14): the record stays,
        struck through with who and why; the dose is planned again and the later doses re-planned. A
        clinician may always; the nurse who recorded it within 7 days [P]."""
        dose = self.get_object()
        body = EnteredInErrorSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        clinician = is_prescriber(request.user, dose.patient.clinic_id)
        marked = services.dose_mark_entered_in_error(
            dose=dose, user=request.user, clinician=clinician, **body.validated_data
        )
        return self._dose(marked)


class LabRecheckViewSet(viewsets.ReadOnlyModelViewSet[LabRecheck]):
    """Planned lab rechecks of the user's clinics' patients. A clinician can always close one by hand
    (RULES §10 V-10): completed (drawn elsewhere, with a note) or cancelled (with a reason)."""

    serializer_class = LabRecheckSerializer
    filterset_class = LabRecheckFilter
    ordering_fields = ["due_date", "window_start", "window_end", "id"]

    def get_queryset(self) -> QuerySet[LabRecheck]:
        queryset = LabRecheck.objects.select_related("patient")
        return restrict_to_clinics(queryset, self.request.user, "patient__clinic")

    def _close(
        self, request: Request, body_class: type[BaseSerializer[Any]], service: Callable[..., LabRecheck], doing: str
    ) -> Response:
        recheck = self.get_object()
        require_role(request.user, recheck.patient.clinic_id, PRESCRIBERS, doing)
        body = body_class(data=request.data)
        body.is_valid(raise_exception=True)
        closed = service(recheck=recheck, user=request.user, **body.validated_data)
        fresh = self.get_queryset().get(pk=closed.pk)
        return Response(LabRecheckSerializer(fresh, context=self.get_serializer_context()).data)

    @extend_schema(
        request=RecheckCompleteSerializer, responses={200: LabRecheckSerializer, 400: ERRORS, 409: CONFLICT}
    )
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: Any = None) -> Response:
        """A clinician marks the recheck done without a result here (drawn elsewhere), with a note."""
        return self._close(request, RecheckCompleteSerializer, services.recheck_complete, "complete a lab recheck")

    @extend_schema(request=RecheckCancelSerializer, responses={200: LabRecheckSerializer, 400: ERRORS, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: Any = None) -> Response:
        """A clinician cancels the recheck, with a reason. The re-plan never reopens it."""
        return self._close(request, RecheckCancelSerializer, services.recheck_cancel, "cancel a lab recheck")


class ReplanJobViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet[ReplanJob]):
    """A large clinic calendar change re-planned by a worker (202 of `POST /api/clinics/{id}/calendar/`): poll it
    until `status` is done. A failed or stopped job resumes after the last batch it committed. Your clinics' jobs."""

    serializer_class = ReplanJobSerializer

    def get_queryset(self) -> QuerySet[ReplanJob]:
        return restrict_to_clinics(ReplanJob.objects.all(), self.request.user, "clinic")

    @extend_schema(request=None, responses={202: ReplanJobSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: Any = None) -> Response:
        """Queue a failed or stopped job again (a clinic admin): it goes on where it stopped. A done job: 409."""
        job = self.get_object()
        require_role(request.user, job.clinic_id, CLINIC_ADMINS, "resume a re-plan job")
        resumed = jobs.replan_job_resume(job=job)
        return Response(ReplanJobSerializer(resumed).data, status=status.HTTP_202_ACCEPTED)
