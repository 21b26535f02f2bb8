"""Monitoring's sections of the patient page: the warnings to see before the next dose (RULES §4 safety
warnings, §10 V-12) with the information prompts (S-7, S-14), and the lab results as trend charts
(reference band shaded, time in range, the first dose T0 marked) beside the table of every result.

Everything here is read through the same selectors as the API (monitoring/selectors.py, prompts.py,
regimens/selectors.py); a fixed number of queries whatever the number of results.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from monitoring.charts import svg_chart
from monitoring.prompts import patient_prompts
from monitoring.selectors import trends_for
from patients.labs.analytes import CATALOGUE, format_value
from patients.models import LabResult, Patient
from regimens.models import DoseStatus, ScheduledDose
from regimens.selectors import dose_pending_warnings
from tracker.pages import PageSection

RESULTS_SHOWN = 60
NAMES = {analyte.code: analyte.name for analyte in CATALOGUE}


def next_dose_warnings(patient: Patient) -> tuple[ScheduledDose | None, list[Any]]:
    """The patient's next planned dose and the warnings giving it now would raise (as GET /api/doses/{id}/)."""
    dose = (
        ScheduledDose.objects.filter(patient=patient, status=DoseStatus.PLANNED)
        .select_related("patient", "regimen")
        .order_by("due_date", "id")
        .first()
    )
    return dose, (dose_pending_warnings(dose) if dose is not None else [])


def lab_rows(patient: Patient) -> list[dict[str, Any]]:
    rows = LabResult.objects.filter(patient=patient).select_related("entered_by").order_by("-collected_at", "-id")
    return [
        {
            "result": r,
            "name": NAMES.get(r.analyte, r.analyte),
            "value": r.presence or format_value(r.value_canonical, r.analyte),
            "in_error": r.error_recorded_at is not None,
        }
        for r in rows[:RESULTS_SHOWN]
    ]


def charts(patient: Patient) -> tuple[str | None, list[dict[str, Any]]]:
    trends = trends_for(patient)
    return trends["t0"], [
        {"entry": entry, "svg": mark_safe(svg_chart(entry, trends["t0"]))}  # noqa: S308 (escaped in svg_chart)
        for entry in trends["analytes"]
    ]


def patient_sections(*, patient: Patient, request: HttpRequest) -> list[PageSection]:
    dose, warnings = next_dose_warnings(patient)
    t0, drawn = charts(patient)
    return [
        PageSection(
            order=5,
            anchor="warnings",
            title=_("Warnings"),
            template="monitoring/sections/warnings.html",
            context={"dose": dose, "warnings": warnings, "prompts": patient_prompts(patient)},
        ),
        PageSection(
            order=30,
            anchor="labs",
            title=_("Lab results"),
            template="monitoring/sections/labs.html",
            context={"t0": t0, "charts": drawn, "results": lab_rows(patient)},
        ),
    ]
