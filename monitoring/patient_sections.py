"""Monitoring's sections of the patient page: the warnings to see before the next dose (RULES §4 safety
warnings, §10 V-12) with the information prompts (S-7, S-14), and the lab results as trend charts
(reference band shaded, time in range, the first dose T0 marked) beside the table of every result. And
the same information prompts above the lab entry form (`/patients/{id}/labs/new/`, the nearest Cobalt has to
the "lab-request view" of RULES §10 V-15), from the same partial (sections/_prompts.html).

Everything here is computed by the same rule code as the API (monitoring/selectors.py trends_from, prompts.py,
safety.py, regimens/selectors.py), from the rows the page reads once for all its sections
(patients.pages.PatientRecord: facts and lab results; regimens.pages.page_regimens: regimens and doses), so
these sections send no query of their own whatever the number of results.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from monitoring.charts import interpretation_label, svg_chart
from monitoring.prompts import patient_prompts
from monitoring.safety import AdministrationData
from monitoring.selectors import B12_ANALYTES, trends_from
from patients.labs.analytes import CATALOGUE, format_value
from patients.models import Interpretation, LabResult, Patient, PatientFact
from patients.selectors import pregnant_on
from regimens.models import DoseStatus, Regimen, ScheduledDose
from regimens.pages import page_regimens
from regimens.selectors import current_among, dose_pending_warnings, regimen_t0
from tracker.display import day, moment
from tracker.pages import PageSection

RESULTS_SHOWN = 60
CRITICAL = frozenset({Interpretation.CRITICALLY_LOW, Interpretation.CRITICALLY_HIGH})
NAMES = {analyte.code: analyte.name for analyte in CATALOGUE}


class PageAdministrationData(AdministrationData):
    """What the warnings of the next dose read (monitoring.safety.AdministrationData), answered from the
    patient page's rows (patients.pages.PatientRecord, regimens.pages.page_regimens) with no query of its own:
    the same answers as the queries of AdministrationData."""

    def __init__(self, record: Any, regimens: list[Regimen]) -> None:
        self.record = record
        self.regimens = {regimen.pk: regimen for regimen in regimens}

    def last_platelet(self, patient: Patient, at: datetime) -> LabResult | None:
        # As last_platelet_count: the latest count collected by `at`, with a value, not entered in error.
        results: list[LabResult] = self.record.lab_results  # the latest first
        return next(
            (
                r
                for r in results
                if r.analyte == "platelets"
                and r.collected_at <= at
                and r.value_canonical is not None
                and r.error_recorded_at is None
            ),
            None,
        )

    def fact(self, patient: Patient, kind: str, on: date) -> PatientFact | None:
        # As present_fact: the latest recorded of `kind`, not marked absent, not ended before `on`.
        facts: list[PatientFact] = self.record.facts  # the latest recorded first
        return next(
            (f for f in facts if f.kind == kind and not f.absent and (f.end_date is None or f.end_date >= on)), None
        )

    def regimen_acknowledged(self, dose: ScheduledDose) -> set[str]:
        # As _regimen_acknowledged: the codes acknowledged at the regimen's start or at its other doses.
        regimen = self.regimens[dose.regimen_id]
        codes = set(regimen.acknowledged_warnings or [])
        for other in regimen.doses.all():
            if other.pk != dose.pk:
                codes.update(other.acknowledged_warnings or [])
        return codes


def next_dose(regimens: list[Regimen]) -> ScheduledDose | None:
    """The patient's next planned dose (the earliest due, then the first entered) among their regimens' doses."""
    planned = [d for r in regimens for d in r.doses.all() if d.status == DoseStatus.PLANNED]
    return min(planned, key=lambda d: (d.due_date, d.pk), default=None)


def interpretation_tag(interpretation: str) -> str:
    """The tag colour of an interpretation the tables flag ("" for none or normal): red when critical."""
    if not interpretation or interpretation == Interpretation.NORMAL:
        return ""
    return "red" if interpretation in CRITICAL else "orange"


def lab_rows(results: list[LabResult]) -> list[dict[str, Any]]:
    """The table of every result (`results`: the latest collected first), the latest RESULTS_SHOWN, with their
    texts made here rather than by the template's filters and branches (docs/scaling.md)."""
    return [
        {
            "result": r,
            "collected": moment(r.collected_at),
            "name": NAMES.get(r.analyte, r.analyte),
            "value": r.presence or format_value(r.value_canonical, r.analyte),
            "in_error": r.error_recorded_at is not None,
            "tag": interpretation_tag(r.interpretation),
        }
        for r in results[:RESULTS_SHOWN]
    ]


def charts(patient: Patient, record: Any, regimens: list[Regimen]) -> tuple[str | None, list[dict[str, Any]]]:
    """The trends of monitoring.selectors.trends_for (as GET /api/patients/{id}/trends/), drawn, from the page's
    rows: T0 of the current regimen (RULES §10 V-1), the numeric results not entered in error. Returns T0 as the
    page writes a date, and each analyte's entry, chart and table rows."""
    current = current_among(regimens)
    t0 = None if current is None else regimen_t0(current, current.doses.all())
    results: list[LabResult] = record.lab_results
    charted = [r for r in reversed(results) if r.value_canonical is not None and r.error_recorded_at is None]
    b12_rows = [r for r in results if r.analyte in B12_ANALYTES]
    today = timezone.localdate()
    trends = trends_from(patient, charted, t0, pregnant_on(record.facts, today), b12_rows, today)
    return day(t0) if t0 else None, [
        {
            "entry": entry,
            "svg": mark_safe(svg_chart(entry, trends["t0"])),  # noqa: S308 (escaped in svg_chart)
            # The table beside the chart, the latest first, dated as the page dates everything ("4 Jan 2027").
            "rows": [
                {
                    "on": day(date.fromisoformat(point["on"])),
                    "day": point["day"],
                    "value": point["value"],
                    "tag": interpretation_tag(point["interpretation"]),
                    "label": interpretation_label(point["interpretation"]),
                }
                for point in reversed(entry["points"])
            ],
        }
        for entry in trends["analytes"]
    ]


def patient_sections(*, patient: Patient, request: HttpRequest, record: Any) -> list[PageSection]:
    regimens = page_regimens(record)
    dose = next_dose(regimens)
    warnings = [] if dose is None else dose_pending_warnings(dose, PageAdministrationData(record, regimens))
    t0, drawn = charts(patient, record, regimens)
    return [
        PageSection(
            order=5,
            anchor="warnings",
            title=_("Warnings"),
            template="monitoring/sections/warnings.html",
            context={"dose": dose, "warnings": warnings, "prompts": patient_prompts(patient, facts=record.facts)},
        ),
        PageSection(
            order=30,
            anchor="labs",
            title=_("Lab results"),
            template="monitoring/sections/labs.html",
            context={"t0": t0, "charts": drawn, "results": lab_rows(record.lab_results)},
        ),
    ]


def lab_entry_sections(*, patient: Patient) -> list[PageSection]:
    """What the lab entry page shows above its form: the S-7 and S-14 prompts (RULES §10 V-15) of
    monitoring.prompts.patient_prompts, as the patient page and GET /api/patients/{id}/prompts/ show them (one
    query: the patient's pregnancies)."""
    return [
        PageSection(
            order=10,
            anchor="prompts",
            title=_("For information"),
            template="monitoring/sections/_prompts.html",
            context={"prompts": patient_prompts(patient)},
        )
    ]
