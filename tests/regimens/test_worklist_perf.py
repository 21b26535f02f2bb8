"""The worklist (`/api/doses/` by clinic and day, or overdue) reads the clinic on the dose row (kept equal to the
patient's clinic) through its own indexes, in a fixed number of queries whatever the clinic's size."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from patients.models import Clinic
from regimens import services
from regimens.models import DoseStatus, Protocol, ScheduledDose
from tests.factories import ClinicFactory, PatientFactory

pytestmark = pytest.mark.django_db

TODAY = "2027-01-20 09:00:00+00:00"
DAY = "2027-01-22"  # a Friday
WORKLIST = ("?clinic={clinic}&due_from={day}&due_to={day}", "?clinic={clinic}&overdue=true")


def populate(clinic: Clinic, n: int) -> None:
    """n patients of `clinic`, in three time zones, on loading courses started on 4 January (overdue doses by the
    20th) or on the 18th (doses due on the 22nd)."""
    zones = ("Europe/London", "Pacific/Auckland", "America/New_York")
    with time_machine.travel("2027-01-04 09:00:00+00:00", tick=False):
        for i in range(n):
            services.regimen_start(
                patient=PatientFactory(clinic=clinic, timezone=zones[i % 3]),
                protocol=Protocol.objects.get(code="hydroxo-uk-standard"),
                start_date=date(2027, 1, 4) if i % 2 else date(2027, 1, 18),
            )


def queries_of(api: APIClient, url: str) -> tuple[int, Any]:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url)
    assert response.status_code == 200, response.json()
    return len(queries), response.json()


@time_machine.travel(TODAY, tick=False)
@pytest.mark.parametrize("query", WORKLIST)
def test_the_worklist_takes_the_same_few_queries_at_3_and_15_patients(
    api: APIClient, clinic: Clinic, query: str, django_assert_max_num_queries: Any
) -> None:
    url = "/api/doses/" + query.format(clinic=clinic.pk, day=DAY)
    populate(clinic, 3)
    api.get(url)  # the first request of a client also loads what it then keeps (its user's clinics)
    few, small = queries_of(api, url)
    populate(clinic, 12)
    many, large = queries_of(api, url)

    assert 0 < small["count"] < large["count"]
    assert many == few
    with django_assert_max_num_queries(8):
        api.get(url)


@time_machine.travel(TODAY, tick=False)
def test_the_worklist_lists_exactly_the_clinics_doses_of_the_day_and_the_overdue_ones(
    api: APIClient, clinic: Clinic
) -> None:
    populate(clinic, 6)
    populate(ClinicFactory(name="Elsewhere"), 2)  # not this user's clinic
    mine = ScheduledDose.objects.filter(patient__clinic=clinic)

    day = api.get(f"/api/doses/?clinic={clinic.pk}&due_from={DAY}&due_to={DAY}&page_size=500").json()
    overdue = api.get(f"/api/doses/?clinic={clinic.pk}&overdue=true&page_size=500").json()

    on_the_day = mine.filter(due_date=date(2027, 1, 22)).values_list("id", flat=True)
    assert {d["id"] for d in day["results"]} == set(on_the_day)
    # Overdue: planned and due before each patient's own today (20 January everywhere at 09:00 UTC).
    expected = set(mine.filter(status=DoseStatus.PLANNED, due_date__lt=date(2027, 1, 20)).values_list("id", flat=True))
    assert expected and {d["id"] for d in overdue["results"]} == expected
    assert all(d["overdue"] for d in overdue["results"])


@time_machine.travel(TODAY, tick=False)
@pytest.mark.parametrize(
    ("query", "index"), zip(WORKLIST, ("dose_clinic_", "dose_clinic_planned_due_idx"), strict=True)
)
def test_the_worklist_reads_the_doses_through_the_clinic_indexes(
    api: APIClient, clinic: Clinic, query: str, index: str
) -> None:
    populate(clinic, 3)
    with CaptureQueriesContext(connection) as queries:
        api.get("/api/doses/" + query.format(clinic=clinic.pk, day=DAY))
    page = next(
        q["sql"] for q in queries.captured_queries if "LIMIT" in q["sql"] and "regimens_scheduleddose" in q["sql"]
    )
    with connection.cursor() as cursor:
        # A test table is tiny: forbid sequential scans to see which index the planner can use for this query.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + page)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan, plan
    assert "Seq Scan on regimens_scheduleddose" not in plan, plan


@time_machine.travel(TODAY, tick=False)
def test_a_dose_row_carries_its_patients_clinic_and_moves_with_the_patient(clinic: Clinic) -> None:
    populate(clinic, 1)
    patient = ScheduledDose.objects.filter(patient__clinic=clinic).first().patient  # type: ignore[union-attr]
    assert set(patient.doses.values_list("clinic_id", flat=True)) == {clinic.pk}

    other = ClinicFactory(name="Hilltop")
    patient.clinic = other
    patient.save()

    assert set(patient.doses.values_list("clinic_id", flat=True)) == {other.pk}
