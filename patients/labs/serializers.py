"""Serializers for lab results, panels, the CSV import and the analyte catalogue.

Input serializers check the shape of a request (types, offsets, the user's clinics); the checks
that need the analyte catalogue (unit, plausible value, ranges) are the service's
(patients/labs/services.py), so the API and the CSV import refuse exactly the same things.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from patients.labs.analytes import Analyte
from patients.labs.services import ResultInput
from patients.models import Interpretation, LabImportJob, LabResult
from patients.serializers import StaffClinicField, StaffPatientField
from tracker.api import AwareDateTimeField

VALUE_HELP = (
    'The value as the lab reported it: a number (12.1 or "12.1"), or for schistocytes present/absent '
    "(also seen, not seen, negative, ...)."
)
REF_HELP = "The reporting lab's {} limit, in the same unit as the value. When given, the lab's range is used."


@extend_schema_field({"oneOf": [{"type": "number"}, {"type": "string", "maxLength": 40}]})
class LabValueField(serializers.Field):  # type: ignore[type-arg]
    """A number or a string, kept as sent: the service checks it against the analyte."""

    default_error_messages = {"invalid": "must be a number or a string, not {kind}"}

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, int | float | str):
            self.fail("invalid", kind=type(data).__name__)
        return data

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field({"oneOf": [{"type": "number"}, {"type": "string", "maxLength": 40}], "nullable": True})
class LabLimitField(LabValueField):
    pass


class _ResultFields(serializers.Serializer[Any]):
    analyte = serializers.CharField(
        max_length=30, help_text="Analyte code (e.g. hemoglobin) or a LOINC code (e.g. 718-7); see /api/analytes/."
    )
    value = LabValueField(help_text=VALUE_HELP)
    unit = serializers.CharField(
        max_length=30,
        allow_blank=True,
        required=False,
        default="",
        help_text="Unit of the value, one the analyte accepts (see /api/analytes/); empty for schistocytes.",
    )
    ref_low = LabLimitField(required=False, allow_null=True, default=None, help_text=REF_HELP.format("lower"))
    ref_high = LabLimitField(required=False, allow_null=True, default=None, help_text=REF_HELP.format("upper"))


class LabResultCreateSerializer(_ResultFields):
    patient = StaffPatientField()
    collected_at = AwareDateTimeField(help_text="When the sample was taken, ISO 8601 with offset.")
    reported_at = AwareDateTimeField(
        required=False, allow_null=True, default=None, help_text="When the lab reported it, ISO 8601 with offset."
    )
    lab = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default="", help_text="Reporting lab or assay."
    )
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class PanelResultSerializer(_ResultFields):
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    def to_input(self, data: dict[str, Any]) -> ResultInput:
        return ResultInput(**data)


class LabPanelCreateSerializer(serializers.Serializer[Any]):
    patient = StaffPatientField()
    collected_at = AwareDateTimeField(help_text="When the sample was taken, ISO 8601 with offset.")
    reported_at = AwareDateTimeField(
        required=False, allow_null=True, default=None, help_text="When the lab reported it, ISO 8601 with offset."
    )
    lab = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default="", help_text="Reporting lab or assay."
    )
    results = PanelResultSerializer(many=True, allow_empty=False, help_text="The results of this one sample.")



def canonical_decimal(help_text: str) -> serializers.DecimalField:
    """A stored value in the analyte's canonical unit (6 decimal places), as a JSON number."""
    return serializers.DecimalField(
        max_digits=18, decimal_places=6, coerce_to_string=False, allow_null=True, help_text=help_text
    )

class LabResultSerializer(serializers.ModelSerializer[LabResult]):
    value = serializers.CharField(source="value_as_entered", help_text="The value as entered or imported.")
    unit = serializers.CharField(source="unit_as_entered", help_text="The unit as entered or imported.")
    value_canonical = canonical_decimal("The value in unit_canonical (null for schistocytes: see presence).")
    ref_low = canonical_decimal("The reporting lab's lower limit in unit_canonical, if it sent one.")
    ref_high = canonical_decimal("The reporting lab's upper limit in unit_canonical, if it sent one.")
    interpretation = serializers.ChoiceField(
        choices=Interpretation.choices,
        help_text="Against the lab's range when sent, else the RULES §5.2 default for the patient's sex, "
        "age and pregnancy on the collection date; empty when there is no range.",
    )
    entered_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Who entered or imported it."
    )
    entered_in_error = serializers.SerializerMethodField(
        help_text="Marked entered in error (RULES §10 V-14): shown struck through; no rule reads it."
    )
    error_recorded_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Who marked it entered in error."
    )

    class Meta:
        model = LabResult
        fields = [
            "id",
            "patient",
            "analyte",
            "loinc",
            "value",
            "unit",
            "value_canonical",
            "unit_canonical",
            "presence",
            "interpretation",
            "ref_low",
            "ref_high",
            "collected_at",
            "reported_at",
            "source",
            "lab",
            "note",
            "import_batch",
            "entered_by",
            "created_at",
            "entered_in_error",
            "error_reason",
            "error_recorded_at",
            "error_recorded_by",
        ]
        read_only_fields = fields

    def get_entered_in_error(self, result: LabResult) -> bool:
        return result.error_recorded_at is not None


class LabResultEnteredInErrorSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        max_length=500, help_text="Why the result is wrong, e.g. entered on the wrong patient (RULES §10 V-14)."
    )


class LabImportRequestSerializer(serializers.Serializer[Any]):
    file = serializers.FileField(help_text="CSV, UTF-8; columns in docs/lab-results.md.")
    # Not nullable: a multipart form has no null (the text "null" would be a clinic id that is not one).
    clinic = StaffClinicField(
        required=False,
        default=None,
        help_text="Clinic whose MRNs the file uses; required when you work in more than one clinic.",
    )
    keep_valid = serializers.BooleanField(
        required=False, default=False, help_text="Write the valid rows even when other rows have errors."
    )


class ImportErrorSerializer(serializers.Serializer[Any]):
    row = serializers.IntegerField(help_text="Spreadsheet row number: the header is row 1.")
    field = serializers.CharField(help_text="The column (or `file`) that was wrong.")
    message = serializers.CharField()


class LabImportReportSerializer(serializers.Serializer[Any]):
    rows = serializers.IntegerField(help_text="Result rows read (the header not counted).")
    created = serializers.IntegerField(help_text="Results written.")
    import_batch = serializers.CharField(help_text="Id shared by the results written; empty when none were.")
    errors = ImportErrorSerializer(many=True)  # type: ignore[assignment]  # a field, popped by DRF's metaclass


class LabImportAcceptedSerializer(serializers.Serializer[Any]):
    job = serializers.URLField(help_text="GET it for the import's status, progress and, once done, its report.")


class LabImportJobSerializer(serializers.ModelSerializer[LabImportJob]):
    """A large import run by a worker: its progress, then the same report as a synchronous import."""

    stage = serializers.CharField(help_text="checking (rows_done counts the rows checked), then writing.")
    rows_total = serializers.IntegerField(
        help_text="Result rows in the file (an estimate from its lines until checking starts)."
    )
    rows_done = serializers.IntegerField(help_text="Rows checked so far.")
    report = serializers.SerializerMethodField(help_text="When done: the report a synchronous import answers.")
    failure = serializers.SerializerMethodField(
        help_text='When failed (an unreadable file, or the worker stopped; nothing stored): {"file": [reason]}, '
        "as a synchronous import says."
    )

    class Meta:
        model = LabImportJob
        fields = ["id", "status", "stage", "rows_total", "rows_done", "clinic", "created_at", "finished_at",
                  "report", "failure"]
        read_only_fields = fields

    @extend_schema_field(LabImportReportSerializer(allow_null=True))
    def get_report(self, job: LabImportJob) -> dict[str, Any] | None:
        if not job.report:
            return None
        return {key: job.report[key] for key in ("rows", "created", "import_batch", "errors")}

    @extend_schema_field(
        serializers.DictField(child=serializers.ListField(child=serializers.CharField()), allow_null=True)
    )
    def get_failure(self, job: LabImportJob) -> dict[str, list[str]] | None:
        if not job.error_message:
            return None
        return {job.error_field or "file": [job.error_message]}


class AnalyteUnitSerializer(serializers.Serializer[Any]):
    symbol = serializers.CharField()
    factor = serializers.CharField(help_text="canonical value = value x factor (exact; a fraction where needed).")
    aliases = serializers.ListField(child=serializers.CharField(), help_text="Other spellings of the same unit.")


class AnalyteSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    name = serializers.CharField()
    loinc = serializers.CharField(help_text="Preferred LOINC code.")
    alternate_loinc = serializers.ListField(child=serializers.CharField(), help_text="Also accepted (RULES §7.1).")
    kind = serializers.ChoiceField(choices=[("quantitative", "quantitative"), ("qualitative", "qualitative")])
    canonical_unit = serializers.CharField()
    units = serializers.SerializerMethodField(help_text="Units accepted, with the conversion to the canonical unit.")
    plausible_max = serializers.SerializerMethodField(
        help_text="Values above this (canonical unit) are refused as physically impossible; null when none is set."
    )

    @extend_schema_field(AnalyteUnitSerializer(many=True))
    def get_units(self, analyte: Analyte) -> list[dict[str, Any]]:
        return [{"symbol": u.symbol, "factor": str(u.factor), "aliases": list(u.aliases)} for u in analyte.units]

    @extend_schema_field({"type": "number", "nullable": True})
    def get_plausible_max(self, analyte: Analyte) -> Decimal | None:
        return analyte.plausible_max
