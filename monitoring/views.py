"""A patient's PLASMIC score and lab trends, and the clinic dashboard's figures (read-only)."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring.audit import KINDS as AUDIT_KINDS
from monitoring.audit import MAX_PAGE_SIZE as AUDIT_MAX_PAGE_SIZE
from monitoring.audit import AuditQuery, audit_page
from monitoring.dashboard import check_period, dashboard_for
from monitoring.normalization import ANALYTES as NORMALIZATION_ANALYTES
from monitoring.normalization import normalization_rows
from monitoring.prompts import patient_prompts_data
from monitoring.selectors import b12_status_for, plasmic_for, trends_for
from patients.labs.analytes import AnalyteError
from patients.models import Patient
from patients.staff import admin_clinic
from tracker.api import PLAUSIBLE_DATE_SCHEMA, CheckedAPIView, PlausibleDateSerializerField
from tracker.clock import local_date
from tracker.errors import ServiceError
from tracker.permissions import restrict_to_clinics


def _patient(request: Request, pk: int) -> Patient:
    return get_object_or_404(restrict_to_clinics(Patient.objects.all(), request.user, "clinic"), pk=pk)


class PlasmicQuery(serializers.Serializer[Any]):
    since = PlausibleDateSerializerField(required=False, help_text="Day TTP was first suspected (RULES §6.2).")


class PlasmicView(CheckedAPIView):
    query_parameters = {"get": ["since"]}

    @extend_schema(
        parameters=[OpenApiParameter("since", PLAUSIBLE_DATE_SCHEMA, description="Use values from this day on.")],
        responses=OpenApiTypes.OBJECT,
        summary="The patient's PLASMIC score (RULES §6)",
        description=(
            "Standard PLASMIC from the earliest value of each input (§6.2). With inputs missing the status is "
            "'incomplete' with min_score and max_score; missing is never counted as 0. `applicable` says "
            "whether §6.2's conditions (platelets < 150 and schistocytes seen) hold. "
            "`experimental_retic_variant` is the §6.5 variant: not validated, do not use for decisions."
        ),
    )
    def get(self, request: Request, pk: int) -> Response:
        patient = _patient(request, pk)
        query = PlasmicQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(plasmic_for(patient, query.validated_data.get("since")))


class TrendsView(CheckedAPIView):
    query_parameters = {"get": ["analytes"]}
    text_query_parameters = frozenset({"analytes"})

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "analytes", OpenApiTypes.STR, description="Comma-separated analyte codes or LOINC (default: all)."
            )
        ],
        responses=OpenApiTypes.OBJECT,
        summary="The patient's lab trends",
        description=(
            "Per analyte: the series in the canonical unit with day since T0 (first dose), the reference band "
            "(the reporting lab's, else RULES §5.2 defaults), time in range since T0 by Rosendaal linear "
            "interpolation, and the time to normalization. Total B12, active B12 and MMA also carry `b12_status`, "
            "the pre-treatment B12 status of /b12-status/ (with `functional` when a raised MMA decided it), which "
            "the B12 levels' normalization follows. Values are for people "
            "(no exponent, no trailing zeros)."
        ),
    )
    def get(self, request: Request, pk: int) -> Response:
        patient = _patient(request, pk)
        raw = request.query_params.get("analytes", "")
        analytes = [a.strip() for a in raw.split(",") if a.strip()]
        try:
            return Response(trends_for(patient, analytes or None))
        except AnalyteError as exc:
            raise serializers.ValidationError({"analytes": [exc.message]}) from exc


class B12StatusView(CheckedAPIView):
    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        summary="The patient's diagnostic B12 status (RULES §5.1)",
        description=(
            "deficient, indeterminate, unlikely or unknown, from the latest total and active B12 taken before the "
            "first dose, each read with its reporting lab's cut-off set (COBALT_B12_LAB_CUTOFFS) or the default "
            "(COBALT_B12_CUTOFFS, NG239). With both results the more concerning one wins. An MMA taken before the "
            "first dose above its upper limit (the lab's, else COBALT_MMA_FALLBACK_ULN) makes it deficient "
            "(functional deficiency, `functional_deficiency`). The trends' B12 entries give the same answer; S-3 "
            "reads the B12 levels alone (RULES §10 V-7; MMA also rises with kidney impairment)."
        ),
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(b12_status_for(_patient(request, pk)))


class PromptSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(
        help_text=(
            "age_75_or_over, pregnancy_active_b12, nitrous_oxide_homocysteine_or_mma or ethnicity_reference_ranges."
        )
    )
    rule = serializers.CharField(help_text="RULES id: S-7 or S-14.")
    severity = serializers.CharField(help_text="Always info: a prompt never changes a dose.")
    message = serializers.CharField()
    details = serializers.DictField()


class PromptsView(CheckedAPIView):
    @extend_schema(
        responses=PromptSerializer(many=True),
        summary="Information prompts for the patient record and the lab request (RULES S-7, S-14)",
        description=(
            "INFO prompts, recomputed from the record: age 75 or over (S-7: screening, a lower threshold to act on "
            "borderline results); pregnancy → active B12 as the initial test; nitrous oxide as the cause → "
            "homocysteine or MMA as the initial test; the note that reference ranges may be higher for people of "
            "Black ethnicity (S-14; shown on every record, as Cobalt records no ethnicity). They never change a dose "
            "and open no alert (§10 V-15)."
        ),
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(patient_prompts_data(_patient(request, pk)))


NOT_YOUR_CLINIC = "`clinic` is not one of your clinics."
CLINIC_HELP = "Clinic id (default: your first clinic as admin)."
FROM_HELP = (
    "First day of the period (default: the first of the month five months back). The period, with a day not given "
    "at its default, runs forwards and is at most 731 days long (400 naming the day given)."
)
TO_HELP = "Last day of the period (default: today), on or after `from` and at most 731 days after it."


class DashboardQuery(serializers.Serializer[Any]):
    clinic = serializers.IntegerField(required=False, min_value=1, help_text=CLINIC_HELP)
    from_ = PlausibleDateSerializerField(required=False, help_text=FROM_HELP)
    to = PlausibleDateSerializerField(required=False, help_text=TO_HELP)

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")  # `from` is a Python keyword
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            check_period(attrs.get("from"), attrs.get("to"))
        except ServiceError as exc:
            raise serializers.ValidationError({exc.field: [exc.message]}) from exc
        return attrs


def dashboard_query(user: Any, params: Any) -> dict[str, Any]:
    """The clinic and period of a dashboard request (API or page), validated; the figures of
    monitoring.dashboard.dashboard_for."""
    query = DashboardQuery(data=params)
    query.is_valid(raise_exception=True)
    clinic = admin_clinic(user, query.validated_data.get("clinic"), "read the dashboard")
    return dashboard_for(clinic=clinic, start=query.validated_data.get("from"), end=query.validated_data.get("to"))


class DashboardView(CheckedAPIView):
    query_parameters = {"get": ["clinic", "from", "to"]}

    @extend_schema(
        parameters=[
            OpenApiParameter("clinic", OpenApiTypes.INT, description=CLINIC_HELP),
            OpenApiParameter("from", PLAUSIBLE_DATE_SCHEMA, description=FROM_HELP),
            OpenApiParameter("to", PLAUSIBLE_DATE_SCHEMA, description=TO_HELP),
        ],
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(description=NOT_YOUR_CLINIC)},
        summary="The clinic's dashboard figures (clinic admins only)",
        description=(
            "The numbers the /dashboard/ page shows. work: planned doses per day from today for 8 weeks with "
            "the clinic's open days, overdue doses by days overdue (bands cut at RULES S-4's thresholds), "
            "rechecks due and overdue. adherence: per month of the period, doses due, given, given on time "
            "(within S-4's grace), not given and still planned; not given by reason. outcomes: open alerts "
            "by severity and kind, the median hours to acknowledge, patients with an unresolved A-H4, A-P2 or "
            "A-H7 alert, and time_to_normalization: per analyte (hemoglobin, platelets) the patients below the "
            "range at T0, normalized (first result at or above the LLN, the target of A-H4 and A-P2) or not yet, "
            "the median days, normalized by the target day, patients per band (list: /api/dashboard/normalization/). "
            "delivery: patient reminders sent and failed in the period, patients opted out, the "
            "oldest undelivered reminder, and the whole outbox's health (manage.py queue_health)."
        ),
    )
    def get(self, request: Request) -> Response:
        return Response(dashboard_query(request.user, request.query_params))


class NormalizationQuery(serializers.Serializer[Any]):
    clinic = serializers.IntegerField(required=False, min_value=1, help_text=CLINIC_HELP)
    analyte = serializers.ChoiceField(choices=list(NORMALIZATION_ANALYTES), required=False, help_text="Default: all.")
    band = serializers.CharField(required=False, max_length=20, help_text="A band of `bands`, or `not_yet`.")


class DashboardNormalizationView(CheckedAPIView):
    query_parameters = {"get": ["clinic", "analyte", "band"]}
    text_query_parameters = frozenset({"band"})

    @extend_schema(
        parameters=[
            OpenApiParameter("clinic", OpenApiTypes.INT, description=CLINIC_HELP),
            OpenApiParameter("analyte", OpenApiTypes.STR, enum=list(NORMALIZATION_ANALYTES)),
            OpenApiParameter("band", OpenApiTypes.STR, description="A band key (e.g. `1-16`) or `not_yet`."),
        ],
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(description=NOT_YOUR_CLINIC)},
        summary="The patients behind the dashboard's time to normalization (clinic admins only)",
        description=(
            "Per patient whose Hb or platelets were below the normal range at T0 (the first dose of the current "
            "regimen): T0, the baseline, the first result at or above the lower limit of normal (the target of "
            "RULES A-H4 and A-P2) and the days to it (`days`), or `days_so_far` when not yet normalized; `band` "
            "as in the dashboard's outcomes.time_to_normalization."
        ),
    )
    def get(self, request: Request) -> Response:
        query = NormalizationQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        clinic = admin_clinic(request.user, query.validated_data.get("clinic"), "read the dashboard")
        analyte, band = query.validated_data.get("analyte"), query.validated_data.get("band")
        rows = normalization_rows(clinic, local_date(timezone.now(), clinic.timezone))
        results = [r.as_json() for r in rows if (not analyte or r.analyte == analyte) and (not band or r.band == band)]
        return Response({"count": len(results), "results": results})


class AuditQuerySerializer(serializers.Serializer[Any]):
    clinic = serializers.IntegerField(required=False, min_value=1, help_text=CLINIC_HELP)
    person = serializers.IntegerField(required=False, min_value=1, help_text="User id: what this person did.")
    patient = serializers.IntegerField(required=False, min_value=1, help_text="Patient id: events of this patient.")
    kind = serializers.ListField(
        child=serializers.ChoiceField(choices=list(AUDIT_KINDS)), required=False, help_text="Repeat for several."
    )
    from_ = PlausibleDateSerializerField(required=False, help_text="First day (clinic's days).")
    to = PlausibleDateSerializerField(required=False, help_text="Last day (clinic's days).")
    page = serializers.IntegerField(required=False, min_value=1, default=1)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=AUDIT_MAX_PAGE_SIZE, default=50)

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")  # `from` is a Python keyword
        return fields

    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "getlist"):  # query parameters: `kind` may repeat
            data = {**{k: v for k, v in data.items()}, **({"kind": data.getlist("kind")} if "kind" in data else {})}
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("from"), attrs.get("to")
        if start and end and start > end:
            raise serializers.ValidationError({"to": ["must be on or after `from`."]})
        return attrs


class AuditView(CheckedAPIView):
    query_parameters = {"get": ["clinic", "person", "patient", "kind", "from", "to", "page", "page_size"]}

    @extend_schema(
        parameters=[
            OpenApiParameter("clinic", OpenApiTypes.INT, description=CLINIC_HELP),
            OpenApiParameter("person", OpenApiTypes.INT, description="User id: what this person did."),
            OpenApiParameter("patient", OpenApiTypes.INT, description="Patient id: the events of this patient."),
            OpenApiParameter("kind", OpenApiTypes.STR, many=True, enum=list(AUDIT_KINDS), description="Repeat."),
            OpenApiParameter("from", PLAUSIBLE_DATE_SCHEMA, description="First day (the clinic's days)."),
            OpenApiParameter("to", PLAUSIBLE_DATE_SCHEMA, description="Last day (the clinic's days)."),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter(
                "page_size",
                {"type": "integer", "minimum": 1, "maximum": AUDIT_MAX_PAGE_SIZE},
                description=f"At most {AUDIT_MAX_PAGE_SIZE}.",
            ),
        ],
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(description=NOT_YOUR_CLINIC)},
        summary="The clinic's audit log (clinic admins only)",
        description=(
            "Newest first: every change to the clinic's clinical records (created, changed, deleted: the field "
            "changes from and to) and every sign-in, failed sign-in and staff change. Each event: id, at, actor "
            "{id, username} (null: the system), kind, action, record {model, id, label}, patient {id, name, mrn}, "
            "changes [{field, from, to}], reason."
        ),
    )
    def get(self, request: Request) -> Response:
        query = AuditQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        clinic = admin_clinic(request.user, data.get("clinic"), "read the audit log")
        size, page = data["page_size"], data["page"]
        body = audit_page(
            AuditQuery(
                clinic=clinic,
                person=data.get("person"),
                patient=data.get("patient"),
                kinds=tuple(data.get("kind") or ()),
                start=data.get("from"),
                end=data.get("to"),
            ),
            offset=(page - 1) * size,
            limit=size,
        )
        return Response(
            {
                "count": body["count"],
                "page": page,
                "next": page + 1 if page * size < body["count"] else None,
                "previous": page - 1 if page > 1 else None,
                "results": body["results"],
            }
        )
