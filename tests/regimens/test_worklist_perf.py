"""The worklist (`/api/doses/` by clinic and day, or overdue) reads the clinic on the dose row (kept equal to the
patient's clinic) through its own indexes, in a fixed number of queries whatever the clinic's size."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from patients.models import Clinic, ClinicMembership, Patient, Role
from patients.selectors import clinic_patient_zones
from regimens import services
from regimens.models import DoseStatus, Protocol, Regimen, ScheduledDose
from tests.factories import ClinicFactory, PatientFactory, RegimenFactory

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


def a_dose(regimen: Regimen, person: Patient, sequence: int, due: date, *, given: bool) -> ScheduledDose:
    """An unsaved loading dose of `regimen`, due on `due`: planned, or given at 10:00 UTC that day."""
    return ScheduledDose(
        regimen=regimen,
        patient=person,
        clinic_id=person.clinic_id,
        phase_index=0,
        phase="loading",
        sequence=sequence,
        due_date=due,
        drug="hydroxocobalamin",
        dose_mcg=1000,
        route="IM",
        status=DoseStatus.GIVEN if given else DoseStatus.PLANNED,
        administered_at=datetime(due.year, due.month, due.day, 10, tzinfo=UTC) if given else None,
    )


def populate_in_bulk(clinics: list[Clinic], patients: int) -> None:
    """`patients` patients in each clinic with a dose every other day from 1 November 2026 (60 each, to 27 February
    2027): the past ones given but one in ten still planned (overdue), the later ones planned."""
    today = date(2027, 1, 20)
    people = Patient.objects.bulk_create(
        [PatientFactory.build(clinic=c, mrn=f"{c.pk}-{n}") for c in clinics for n in range(patients)]
    )
    regimens = Regimen.objects.bulk_create([RegimenFactory.build(patient=p) for p in people])
    doses = []
    for regimen, person in zip(regimens, people, strict=True):
        for sequence in range(1, 61):
            due = date(2026, 11, 1) + timedelta(days=2 * (sequence - 1))
            doses.append(a_dose(regimen, person, sequence, due, given=bool(due < today and sequence % 10)))
    ScheduledDose.objects.bulk_create(doses, batch_size=2000)


@time_machine.travel(TODAY, tick=False)
@pytest.mark.parametrize(
    ("query", "index"), zip(WORKLIST, ("dose_clinic_", "dose_clinic_planned_due_idx"), strict=True)
)
def test_the_worklist_reads_the_doses_through_the_clinic_indexes(
    api: APIClient, clinic: Clinic, query: str, index: str
) -> None:
    """On 4 clinics of 40 patients (9,600 doses) with planner statistics (ANALYZE, as autovacuum would), the
    plans PostgreSQL chooses for the page and its count read one clinic's rows through a clinic index: no
    sequential scan of the doses table (without the clinic on the dose row there is no index for a clinic's day,
    and the overdue doses would come through every clinic's planned doses)."""
    populate_in_bulk([clinic, *(ClinicFactory(name=f"Clinic {n}") for n in range(3))], 40)
    assert ScheduledDose.objects.count() == 9600
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE regimens_scheduleddose")
        cursor.execute("ANALYZE patients_patient")
    with CaptureQueriesContext(connection) as queries:
        response = api.get("/api/doses/" + query.format(clinic=clinic.pk, day=DAY))
    assert response.status_code == 200 and response.json()["count"] > 0
    reads = [q["sql"] for q in queries.captured_queries if 'FROM "regimens_scheduleddose"' in q["sql"]]
    assert len(reads) >= 2  # the page's count and the page (overdue: and the time zones on the edge of today)
    for sql in reads:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        if "LIMIT" in sql:  # the page: the first entries of the clinic index in the page's order
            assert index in plan, plan
        else:
            # The count: a clinic index, or on this small table (its statistics depend on the tests before) every
            # clinic's planned doses by date, filtered; at 100,000 patients PostgreSQL counts from
            # dose_clinic_planned_due_idx alone (an index-only scan; docs/scaling.md).
            assert any(name in plan for name in ("dose_clinic_", "dose_planned_due_idx")), plan
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


def populate_around_midnight(clinic: Clinic, zones: tuple[str, ...]) -> dict[str, dict[date, int]]:
    """A patient of `clinic` in each zone, with a dose due on each day from 1 to 6 January 2027, planned but the
    one of the 2nd (given): {zone: {due date: dose id}} of the planned ones."""
    doses = {}
    for n, zone in enumerate(zones):
        person = PatientFactory(clinic=clinic, mrn=f"Z{n}", timezone=zone)
        regimen = RegimenFactory(patient=person)
        made = ScheduledDose.objects.bulk_create(
            [a_dose(regimen, person, day, date(2027, 1, day), given=day == 2) for day in range(1, 7)]
        )
        doses[zone] = {d.due_date: d.pk for d in made if d.status == DoseStatus.PLANNED}
    return doses


# 10:30 UTC on 4 January: 23:30 on the 3rd in Pago Pago (UTC-11), the 4th in London and Honolulu (UTC-10, 00:30),
# already 00:30 on the 5th in Kiritimati (UTC+14): three local dates at once, two of them on a boundary.
ZONES = ("Pacific/Pago_Pago", "Pacific/Honolulu", "Europe/London", "Pacific/Kiritimati")
AROUND_MIDNIGHT = "2027-01-04 10:30:00+00:00"


@time_machine.travel(AROUND_MIDNIGHT, tick=False)
def test_overdue_is_judged_in_each_patients_zone_when_three_dates_are_today(api: APIClient, clinic: Clinic) -> None:
    doses = populate_around_midnight(clinic, ZONES)
    today = {"Pacific/Pago_Pago": 3, "Pacific/Honolulu": 4, "Europe/London": 4, "Pacific/Kiritimati": 5}
    expected = {pk for zone, by_day in doses.items() for day, pk in by_day.items() if day.day < today[zone]}

    overdue = api.get(f"/api/doses/?clinic={clinic.pk}&overdue=true&page_size=500").json()
    others = api.get(f"/api/doses/?clinic={clinic.pk}&overdue=false&page_size=500").json()
    everything = api.get(f"/api/doses/?clinic={clinic.pk}&page_size=500").json()

    # Pago Pago's doses of the 3rd and London's and Honolulu's of the 4th are due today; Kiritimati's of the 4th
    # is overdue there.
    assert {d["id"] for d in overdue["results"]} == expected and overdue["count"] == len(expected) == 8
    assert {d["id"] for d in everything["results"] if d["overdue"]} == expected
    assert {d["id"] for d in others["results"]} == {d["id"] for d in everything["results"]} - expected
    assert others["count"] + overdue["count"] == everything["count"]


@time_machine.travel(AROUND_MIDNIGHT, tick=False)
def test_the_overdue_count_reads_the_dose_rows_alone_and_the_zones_only_on_the_boundary(
    api: APIClient, clinic: Clinic
) -> None:
    """The count of the overdue worklist (in a clinic whose patients are in one zone, then also in four zones around
    midnight) is one range of a planned-dose index; the patients' zones are looked up for the rows
    dated between the earliest and the latest of today's dates alone, never by joining every patient."""
    populate_in_bulk([clinic, ClinicFactory(name="Other")], 40)  # all in London
    for zones in ((), ZONES):
        populate_around_midnight(clinic, zones)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE regimens_scheduleddose")
            cursor.execute("ANALYZE patients_patient")
        with CaptureQueriesContext(connection) as queries:
            response = api.get(f"/api/doses/?clinic={clinic.pk}&overdue=true")
        assert response.status_code == 200 and response.json()["count"] > 0
        (count,) = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT COUNT(*)")]
        # One set of the clinic's patients in the zones past each boundary date, or none: matched as a set
        # (`patient_id IN (...)`), not by an EXISTS ... LIMIT 1 that PostgreSQL runs for every dose of the date.
        assert count.count("patients_patient") == (2 if zones else 0)
        assert "EXISTS" not in count
        with connection.cursor() as cursor:
            # On the suite's small doses table (its size and statistics depend on the tests before: autovacuum may
            # be off) a sequential scan can cost less; discouraged, the plan shows which index serves the count.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + count)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            cursor.execute("SET LOCAL enable_seqscan = on")
        # One range of a worklist index: the clinic's planned doses (as at 100,000 patients) or, on this small
        # table (its statistics and size depend on the tests before), the clinic's doses or every clinic's planned
        # doses by date, filtered.
        worklist_indexes = ("dose_clinic_planned_due_idx", "dose_clinic_due_idx", "dose_planned_due_idx")
        assert any(name in plan for name in worklist_indexes), plan
        assert "Seq Scan on regimens_scheduleddose" not in plan, plan
        assert "Join" not in plan, plan  # (a tiny patients table may be hashed for the EXISTS: not a join)


@time_machine.travel(AROUND_MIDNIGHT, tick=False)
def test_the_overdue_count_around_midnight_can_be_answered_from_the_indexes_alone(
    api: APIClient, clinic: Clinic
) -> None:
    """While a clinic's patients straddle midnight, the count matches the doses of the boundary date against the
    clinic's patients in the zones past it: the dose index carries the patient and the zone index the patient's id
    (INCLUDE), so neither side has to visit its table rows (at 100,000 patients: 100 -> 30 ms, docs/scaling.md)."""
    populate_in_bulk([clinic, ClinicFactory(name="Other")], 40)
    populate_around_midnight(clinic, ZONES)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE regimens_scheduleddose")
        cursor.execute("ANALYZE patients_patient")
    with CaptureQueriesContext(connection) as queries:
        assert api.get(f"/api/doses/?clinic={clinic.pk}&overdue=true").json()["count"] > 0
    (count,) = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT COUNT(*)")]
    with connection.cursor() as cursor:
        # The small tables of the suite would be read whole or by bitmap: both discouraged, to see which index can
        # serve each side on its own.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN " + count)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET LOCAL enable_seqscan = on")
        cursor.execute("SET LOCAL enable_bitmapscan = on")
    assert "Index Only Scan using patient_clinic_zone_idx" in plan, plan
    assert "Index Only Scan using dose_clinic_planned_due_idx" in plan, plan


@time_machine.travel(AROUND_MIDNIGHT, tick=False)
def test_overdue_is_exact_when_the_clinics_have_patients_in_zones_with_no_dose_on_the_edge_of_today(
    api: APIClient, clinic: Clinic, nurse: Any
) -> None:
    """The overdue filter takes the zones of the user's clinics' patients (a few index lookups) for those of the doses
    on the edge of today: a patient in Kiritimati (already the 5th) with no dose then changes no answer, in the clinic
    asked for or across the user's two clinics (the other one's patient in Pago Pago, still on the 3rd)."""
    doses = populate_around_midnight(clinic, ("Europe/London",))["Europe/London"]
    RegimenFactory(patient=PatientFactory(clinic=clinic, mrn="far", timezone="Pacific/Kiritimati"))  # no doses
    second = ClinicFactory(name="Hilltop")
    ClinicMembership.objects.create(user=nurse, clinic=second, role=Role.NURSE)
    elsewhere = populate_around_midnight(second, ("Pacific/Pago_Pago",))["Pacific/Pago_Pago"]
    expected = {pk for day, pk in doses.items() if day.day < 4}  # the 4th in London
    expected_elsewhere = {pk for day, pk in elsewhere.items() if day.day < 3}  # the 3rd in Pago Pago

    mine = api.get(f"/api/doses/?clinic={clinic.pk}&overdue=true&page_size=500").json()
    both = api.get("/api/doses/?overdue=true&page_size=500").json()
    others = api.get(f"/api/doses/?clinic={clinic.pk}&overdue=false&page_size=500").json()

    assert {d["id"] for d in mine["results"]} == expected and mine["count"] == 2
    assert {d["id"] for d in both["results"]} == expected | expected_elsewhere and both["count"] == 3
    assert not expected & {d["id"] for d in others["results"]} and others["count"] == 6 - 2  # the given one too


def test_the_zones_of_a_clinics_patients_are_read_from_an_index_not_from_every_patient(clinic: Clinic) -> None:
    """clinic_patient_zones skips along patient_clinic_zone_idx: a few lookups, whatever the number of patients."""
    populate_in_bulk([clinic, ClinicFactory(name="Other")], 40)
    Patient.objects.filter(pk__in=Patient.objects.filter(clinic=clinic).values("pk")[:5]).update(
        timezone="Pacific/Auckland"
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE patients_patient")
    with CaptureQueriesContext(connection) as queries:
        zones = clinic_patient_zones([clinic.pk])

    assert zones == {"Europe/London", "Pacific/Auckland"}
    assert clinic_patient_zones([]) == set()
    (sql,) = [q["sql"] for q in queries.captured_queries]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "patient_clinic_zone_idx" in plan, plan
    assert "Seq Scan on patients_patient" not in plan, plan
