"""Bulk re-plans (a clinic calendar change, the horizons sweep) are linear: regimens are re-planned in
batches, each batch in a fixed number of queries, and rows move through a joined
`UPDATE ... FROM (VALUES ...)` (tracker/bulk.py), never bulk_update's CASE per row."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from patients.models import Clinic
from patients.services import clinic_update_calendar
from regimens.models import DoseStatus, LabRecheck, Protocol, Regimen, ScheduledDose
from regimens.services import dose_record_administration, regimen_plan, regimen_start, regimens_extend_horizons
from tests.factories import ClinicFactory, PatientFactory
from tracker import bulk

pytestmark = pytest.mark.django_db

PROTOCOLS = ("hydroxo-uk-standard", "hydroxo-uk-neuro", "cyano-us-label", "ileal-resection")
MONDAY = date(2027, 1, 4)
NO_WEDNESDAYS = [0, 1, 3, 4]
# Queries of one batch of a bulk re-plan: a savepoint and its release, the regimens locked with their
# patient, clinic and protocol, the protocol's phases and recheck steps, the decisions, the closed dates,
# the doses, the rechecks, the lab facts and results, and the writes (doses cancelled, moved, created;
# rechecks created, updated, cancelled; regimens' progress and its history), each one statement per
# 1,000 rows.
PER_BATCH = 20


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(datetime(2027, 1, 4, 9, tzinfo=UTC), tick=False) as traveller:
        yield traveller


def clinic_with_regimens(name: str, count: int) -> Clinic:
    """`count` active regimens at a new clinic, the four protocols in turn; every other one has its first dose given."""
    clinic = ClinicFactory(name=name)
    for n in range(count):
        regimen = regimen_start(
            patient=PatientFactory(clinic=clinic),
            protocol=Protocol.objects.get(code=PROTOCOLS[n % len(PROTOCOLS)]),
            start_date=MONDAY,
        )
        if n % 2:
            first = regimen.doses.filter(status=DoseStatus.PLANNED).order_by("due_date", "id").first()
            assert first is not None
            dose_record_administration(dose=first, administered_at=datetime(2027, 1, 4, 8, tzinfo=UTC))
    return clinic


def close_wednesdays(clinic: Clinic) -> CaptureQueriesContext:
    with CaptureQueriesContext(connection) as queries:
        clinic_update_calendar(clinic=clinic, open_weekdays=NO_WEDNESDAYS)
    return queries


def planned_dates(regimen: Regimen) -> list[tuple[int, int, date]]:
    rows = regimen.doses.filter(status=DoseStatus.PLANNED)
    return sorted(rows.values_list("phase_index", "sequence", "due_date"))


def test_a_calendar_change_costs_the_same_queries_at_4_and_16_regimens(clock: Any) -> None:
    small = close_wednesdays(clinic_with_regimens("Small", 4))
    large = close_wednesdays(clinic_with_regimens("Large", 16))

    # Both fit in one batch: the count of queries does not follow the count of regimens or doses.
    assert len(large) == len(small) <= 6 + PER_BATCH
    sql = [q["sql"] for q in large.captured_queries]
    # Doses move through one joined UPDATE, never a CASE per row.
    assert not any("CASE WHEN" in s for s in sql)
    assert sum('UPDATE "regimens_scheduleddose" SET' in s and "FROM (VALUES" in s for s in sql) == 1


def test_a_calendar_change_issues_a_fixed_number_of_queries_per_batch(clock: Any, settings: Any) -> None:
    settings.COBALT = {**settings.COBALT, "REPLAN_BATCH_SIZE": 5}
    clinic = clinic_with_regimens("Batched", 16)

    queries = close_wednesdays(clinic)

    # 16 regimens in batches of 5: 4 batches.
    assert len(queries) <= 6 + 4 * PER_BATCH
    assert sum("FOR UPDATE" in q["sql"] and '"regimens_regimen"' in q["sql"] for q in queries.captured_queries) == 4


def test_every_batch_of_a_calendar_change_costs_the_same_queries(clock: Any, settings: Any) -> None:
    settings.COBALT = {**settings.COBALT, "REPLAN_BATCH_SIZE": 4}
    # 1, 2 and 3 batches of 4 alike regimens (the four protocols, every other one with its first dose given).
    counts = [len(close_wednesdays(clinic_with_regimens(f"Clinic {n}", 4 * n))) for n in (1, 2, 3)]

    # Each further batch adds exactly the queries of one batch: the cost is linear in the batches, and no
    # batch reads more because of the batches before it.
    per_batch = counts[1] - counts[0]
    assert 0 < per_batch <= PER_BATCH
    assert counts[2] - counts[1] == per_batch


def test_a_calendar_change_leaves_every_regimen_as_its_own_replan_would(clock: Any, settings: Any) -> None:
    settings.COBALT = {**settings.COBALT, "REPLAN_BATCH_SIZE": 3}
    clinic = clinic_with_regimens("Riverside", 8)
    given = set(ScheduledDose.objects.filter(status=DoseStatus.GIVEN).values_list("id", "due_date"))

    close_wednesdays(clinic)

    for regimen in Regimen.objects.filter(patient__clinic=clinic):
        stored = planned_dates(regimen)
        # No planned dose from today on lands on a Wednesday any more
        assert stored and all(on.weekday() != 2 for _, _, on in stored)
        # and the rows are exactly the plan a one-regimen re-plan computes now.
        fresh = regimen_plan(Regimen.objects.get(pk=regimen.pk))
        assert stored == sorted((d.phase_index, d.sequence, d.due_date) for d in fresh.planned)
        assert all(r.status != "cancelled" for r in LabRecheck.objects.filter(regimen=regimen, key__startswith="L-"))
    # Doses already given never move.
    assert set(ScheduledDose.objects.filter(status=DoseStatus.GIVEN).values_list("id", "due_date")) == given


def test_a_calendar_change_leaves_other_clinics_alone(clock: Any) -> None:
    clinic = clinic_with_regimens("Riverside", 2)
    other = clinic_with_regimens("Hilltop", 2)
    before = {r.pk: planned_dates(r) for r in Regimen.objects.filter(patient__clinic=other)}

    close_wednesdays(clinic)

    assert {r.pk: planned_dates(r) for r in Regimen.objects.filter(patient__clinic=other)} == before


def test_the_horizons_sweep_costs_the_same_queries_at_4_and_16_due_regimens(clock: Any) -> None:
    counts = []
    for name, size in (("Small", 4), ("Large", 16)):
        clinic = clinic_with_regimens(name, size)
        due = Regimen.objects.filter(patient__clinic=clinic)
        # Every regimen's horizon is due today (as after an outage of the beat schedule).
        due.update(extend_on=MONDAY)
        Regimen.objects.exclude(patient__clinic=clinic).update(extend_on=date(2099, 1, 1))
        with CaptureQueriesContext(connection) as queries:
            result = regimens_extend_horizons(at=datetime(2027, 1, 4, 12, tzinfo=UTC))
        assert result == {"extended": size}
        counts.append(len(queries))
        # Re-planned: extend_on moved past today, so a second run finds nothing.
        assert regimens_extend_horizons(at=datetime(2027, 1, 4, 12, tzinfo=UTC)) == {"extended": 0}

    assert counts[0] == counts[1] <= 1 + PER_BATCH


# --- tracker.bulk.update_rows ----------------------------------------------------------------------


def test_update_rows_writes_each_row_its_own_values_in_one_statement_per_batch(clock: Any) -> None:
    clinic = clinic_with_regimens("Riverside", 2)
    rechecks = list(LabRecheck.objects.filter(patient__clinic=clinic).order_by("id"))
    assert len(rechecks) >= 5
    for n, recheck in enumerate(rechecks):
        recheck.due_date = date(2028, 1, 1 + n)
        recheck.analytes = ["hemoglobin", f"x{n}"]  # a JSON column
        recheck.description = "" if n % 2 else f"moved {n}"

    with CaptureQueriesContext(connection) as queries:
        updated = bulk.update_rows(LabRecheck, rechecks, ["due_date", "analytes", "description"], batch_size=2)

    assert updated == len(rechecks)
    assert len(queries) == (len(rechecks) + 1) // 2
    for n, row in enumerate(LabRecheck.objects.filter(patient__clinic=clinic).order_by("id")):
        assert (row.due_date, row.analytes, row.description) == (
            date(2028, 1, 1 + n),
            ["hemoglobin", f"x{n}"],
            "" if n % 2 else f"moved {n}",
        )


def test_update_rows_off_postgresql_writes_each_row_its_own_values_and_honours_where(
    clock: Any, monkeypatch: Any
) -> None:
    """The path SQLite takes under `make run` (one UPDATE per row through executemany), asked here of the test
    database by making it look like another vendor."""
    clinic = clinic_with_regimens("Riverside", 1)
    doses = list(ScheduledDose.objects.filter(patient__clinic=clinic, status=DoseStatus.PLANNED).order_by("id"))
    ScheduledDose.objects.filter(pk=doses[0].pk).update(status=DoseStatus.CANCELLED)  # changed meanwhile
    old, old_day = doses[0].dose_mcg, doses[0].due_date
    for n, dose in enumerate(doses):
        dose.dose_mcg = 900 + n
        dose.due_date = date(2028, 1, 1 + n)
    monkeypatch.setattr(connection, "vendor", "sqlite")

    with CaptureQueriesContext(connection) as queries:
        updated = bulk.update_rows(ScheduledDose, doses, ["dose_mcg", "due_date"], where={"status": DoseStatus.PLANNED})

    assert updated == len(doses) - 1
    assert len(queries) == 1  # one executemany
    stored = {
        row[0]: row[1:]
        for row in ScheduledDose.objects.filter(id__in=[d.id for d in doses]).values_list("id", "dose_mcg", "due_date")
    }
    assert stored[doses[0].id] == (old, old_day)
    assert {d.id: stored[d.id] for d in doses[1:]} == {
        d.id: (900 + n, date(2028, 1, 1 + n)) for n, d in enumerate(doses) if n
    }


def test_update_rows_refuses_no_fields() -> None:
    with pytest.raises(ValueError, match="at least one field"):
        bulk.update_rows(LabRecheck, [LabRecheck(pk=1)], [])


def test_update_rows_leaves_alone_the_rows_that_no_longer_match_where(clock: Any) -> None:
    clinic = clinic_with_regimens("Riverside", 1)
    first, second = ScheduledDose.objects.filter(patient__clinic=clinic, status=DoseStatus.PLANNED).order_by("id")[:2]
    ScheduledDose.objects.filter(pk=first.pk).update(status=DoseStatus.CANCELLED)  # changed meanwhile
    old = first.dose_mcg
    first.dose_mcg = second.dose_mcg = 999

    updated = bulk.update_rows(ScheduledDose, [first, second], ["dose_mcg"], where={"status": DoseStatus.PLANNED})

    assert updated == 1
    assert ScheduledDose.objects.get(pk=first.pk).dose_mcg == old
    assert ScheduledDose.objects.get(pk=second.pk).dose_mcg == 999
