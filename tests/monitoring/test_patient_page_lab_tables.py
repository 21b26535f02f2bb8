"""The patient page's lab results section: the table beside each trend chart and the table of every result say
when (as the page writes dates, with the day since the first dose) and flag each value by its interpretation's
label, in the clinic's time zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client

from patients.models import Interpretation
from tests.conftest import page_text
from tests.factories import LabResultFactory
from tests.timeline import day, noon, start_treatment

pytestmark = pytest.mark.django_db


def labs_section(body: str) -> str:
    found = re.search(r'<section aria-labelledby="labs".*?</section>', body, re.S)
    assert found
    return found.group(0)


def test_the_chart_table_and_the_results_table_read_as_a_nurse_reads_them(nurse: Any, patient: Any, clock: Any) -> None:
    start_treatment(patient)  # T0: 4 Jan 2027
    LabResultFactory(
        patient=patient, collected_at=noon(day(-3)), value_as_entered="58", interpretation=Interpretation.CRITICALLY_LOW
    )
    LabResultFactory(
        patient=patient, collected_at=datetime(2027, 1, 11, 23, 30, tzinfo=UTC),  # 11 Jan in London
        value_as_entered="104", interpretation=Interpretation.LOW,
    )  # fmt: skip
    clock.move_to(noon(day(8)))
    client = Client()
    client.force_login(nurse)
    section = labs_section(client.get(f"/patients/{patient.pk}/").content.decode())
    text = " ".join(page_text(section).split())

    # Beside the chart: the latest first, with the day since the first dose and the interpretation's label.
    assert "11 Jan 2027 (day 7) 104 Low 1 Jan 2027 (day -3) 58 Critically low" in text
    assert "Dashed line: first dose (T0) 4 Jan 2027." in text
    assert re.search(r'nhsuk-tag--red">Critically low<', section)
    assert re.search(r'nhsuk-tag--orange">Low<', section)
    # Every result: collected at, in the clinic's zone.
    assert "11 Jan 2027 23:30 Hemoglobin 104 g/L Low" in text
    assert "Criticallylow" not in text and "2027-01" not in text


def test_time_in_range_says_it_counts_from_the_first_dose(nurse: Any, patient: Any, clock: Any) -> None:
    """Results only before the first dose give no time in range (it counts from T0): the page says why, not that
    the patient lacks two results."""
    start_treatment(patient)
    for days_before, value in ((-20, "92"), (-10, "101"), (-2, "112")):
        LabResultFactory(patient=patient, collected_at=noon(day(days_before)), value_as_entered=value)
    clock.move_to(noon(day(1)))
    client = Client()
    client.force_login(nurse)
    text = " ".join(page_text(labs_section(client.get(f"/patients/{patient.pk}/").content.decode())).split())
    assert "Time in range: needs two results on different days since the first dose." in text
