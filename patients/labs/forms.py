"""Forms of the lab pages: one sample's results (one or a panel), and the CSV upload.

They only parse the page's input; the services (patients/labs/services.py, importer.py) check the
clinical content exactly as for the API, and the pages put each refusal back on the field it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from patients.labs import analytes
from patients.labs.services import MAX_LENGTHS, ResultInput
from tracker.forms import DateTimeInput, NHSUKForm, style_widget
from tracker.middleware import StaffClinic


@dataclass(frozen=True)
class AnalyteRow:
    """One line of the entry table: an analyte with its value field and, if it has units, its unit field."""

    analyte: analytes.Analyte
    value: forms.BoundField
    unit: forms.BoundField | None


def value_field(code: str) -> str:
    return f"{code}_value"


def unit_field(code: str) -> str:
    return f"{code}_unit"


class LabEntryForm(NHSUKForm):
    """The results of one sample: a collection time, the lab, and a value for each analyte measured (a
    blank value is an analyte not measured). Each analyte offers only the units it accepts."""

    collected_at = forms.DateTimeField(
        label=_("Collected at"),
        widget=DateTimeInput(attrs={"data-width": "20"}),
        help_text=_("When the sample was taken, in the clinic's time."),
    )
    lab = forms.CharField(
        label=_("Lab (optional)"),
        required=False,
        max_length=MAX_LENGTHS["lab"],
        widget=forms.TextInput(attrs={"data-width": "20"}),
    )
    note = forms.CharField(
        label=_("Note (optional)"),
        required=False,
        max_length=MAX_LENGTHS["note"],
        help_text=_("Kept with every result of this sample, e.g. haemolysed sample."),
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, timezone_name: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if timezone_name:
            self.fields["collected_at"].help_text = _(
                "When the sample was taken, in the clinic's time (%(zone)s)."
            ) % {"zone": timezone_name}
        for analyte in analytes.CATALOGUE:
            if analyte.kind == analytes.QUALITATIVE:
                field: forms.Field = forms.ChoiceField(
                    label=_("%(analyte)s result") % {"analyte": analyte.name},
                    required=False,
                    choices=[("", _("Not measured")), (analytes.PRESENT, _("Present")), (analytes.ABSENT, _("Absent"))],
                )
            else:
                field = forms.CharField(
                    label=_("%(analyte)s value") % {"analyte": analyte.name},
                    required=False,
                    max_length=MAX_LENGTHS["value"],
                    widget=forms.TextInput(attrs={"inputmode": "decimal", "data-width": "5"}),
                )
            self.fields[value_field(analyte.code)] = field
            if analyte.units:
                self.fields[unit_field(analyte.code)] = forms.ChoiceField(
                    label=_("%(analyte)s unit") % {"analyte": analyte.name},
                    choices=[(symbol, symbol) for symbol in analyte.unit_symbols],
                    initial=analyte.canonical_unit,
                    required=False,
                )
            # NHSUKFormMixin styled the fields declared above; these are added per analyte.
            for name in (value_field(analyte.code), unit_field(analyte.code)):
                if name in self.fields:
                    widget = self.fields[name].widget
                    width = widget.attrs.pop("data-width", None)
                    style_widget(widget, f"nhsuk-input--width-{width}" if width else None)

    def rows(self) -> list[AnalyteRow]:
        return [
            AnalyteRow(
                analyte=analyte,
                value=self[value_field(analyte.code)],
                unit=self[unit_field(analyte.code)] if analyte.units else None,
            )
            for analyte in analytes.CATALOGUE
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.results():
            raise forms.ValidationError(_("Results: enter at least one value."), code="no_results")
        return cleaned

    def results(self) -> list[ResultInput]:
        """The analytes given a value, in catalogue order, as the services take them."""
        data = getattr(self, "cleaned_data", {})
        items = []
        for analyte in analytes.CATALOGUE:
            value = str(data.get(value_field(analyte.code)) or "").strip()
            if not value:
                continue
            unit = str(data.get(unit_field(analyte.code)) or "") if analyte.units else ""
            items.append(ResultInput(analyte=analyte.code, value=value, unit=unit, note=str(data.get("note") or "")))
        return items

    def field_for(self, service_field: str, items: list[ResultInput]) -> str | None:
        """The form field a service error names: "results[1].unit" -> "platelets_unit", "value" (one result)
        -> its analyte's value field, "collected_at" -> itself. None: a non-field error."""
        name = service_field
        index = 0
        if name.startswith("results[") and "]." in name:
            head, name = name.split("].", 1)
            index = int(head.removeprefix("results["))
        if name in ("collected_at", "reported_at"):
            return "collected_at"
        if name in ("lab", "note"):
            return name
        if index < len(items):
            code = items[index].analyte
            if name == "unit" and unit_field(code) in self.fields:
                return unit_field(code)
            if name in ("value", "analyte", "unit", "ref_low", "ref_high"):
                return value_field(code)
        return None


class LabImportForm(NHSUKForm):
    file = forms.FileField(label=_("CSV file"), help_text=_("UTF-8 text, a header row, one row per result."))
    clinic = forms.TypedChoiceField(label=_("Clinic whose MRNs the file uses"), coerce=int)
    keep_valid = forms.BooleanField(
        label=_("Store the valid rows even if other rows are refused"),
        required=False,
        help_text=_("Otherwise nothing is stored while any row is refused."),
    )

    def __init__(self, *args: Any, clinics: list[StaffClinic], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["clinic"]
        field.choices = [(c.id, c.name) for c in clinics]  # type: ignore[attr-defined]
        if len(clinics) == 1:
            # The user's only clinic: nothing to choose.
            field.initial = clinics[0].id
            field.required = False
            field.widget = forms.HiddenInput()
        self.only_clinic = clinics[0].id if len(clinics) == 1 else None

    def clinic_id(self) -> int:
        return int(self.cleaned_data.get("clinic") or self.only_clinic or 0)
