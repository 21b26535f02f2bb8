"""Benchmark of bulk re-plans (a clinic calendar change) on PostgreSQL, against the bare SQL that reads and
moves the same rows.

Run from the project root with DATABASE_URL set:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cobalt .venv/bin/python bench/bench_replan.py --patients 2000

Uses (and creates) the sibling database "<name>_bench_replan", fills it like bench/bench_sweep.py (one
clinic, N patients, one regimen each), re-plans every regimen once so each holds its full horizon (the
engine's 12 months of lifelong doses), then closes Wednesdays at the clinic (patients.services.
clinic_update_calendar, which re-plans every active regimen of the clinic through
regimens.services.planning.replan_regimens). The bare counterpart restores the old dates, reads the
clinic's planned doses in one query and moves the same rows to the same dates with one joined
`UPDATE ... FROM (VALUES ...)` per 1,000 rows. `--case-rows K` also times Django's `bulk_update` of the
first K and 2K moved rows in one statement (the CASE per row the re-plan used before) to show its
quadratic growth. A script, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import benchdb  # noqa: E402

SEED = 20270105


def measure(patients: int, seed: int, case_rows: int) -> list[dict[str, object]]:
    """Build the data, run the calendar change and its bare counterpart; the result rows."""
    import random

    import time_machine
    from django.db import connection, transaction

    from bench.bench_sweep import AT, populate, reset
    from patients.models import Clinic
    from patients.services import clinic_update_calendar
    from regimens.models import DoseStatus, Regimen, ScheduledDose
    from regimens.services.planning import replan_regimens

    reset()
    rows: list[dict[str, object]] = []
    with time_machine.travel(AT, tick=True):
        populate(patients, random.Random(seed))
        analyze()
        clinic = Clinic.objects.get(name="Bench clinic")
        ids = list(Regimen.objects.filter(patient__clinic=clinic).values_list("pk", flat=True))
        rss_before = benchdb.max_rss()
        with benchdb.counting_queries(detailed=False) as log, benchdb.timed() as first:
            replan_regimens(ids)
        # As autovacuum would after so many writes: without statistics PostgreSQL reads each batch's doses
        # with a sequential scan of the whole table, and the calendar change grows with the square of the clinic.
        analyze()
        planned = ScheduledDose.objects.filter(patient__clinic=clinic, status=DoseStatus.PLANNED).count()
        rows.append(
            {
                "operation": f"re-plan every regimen, {len(ids):,} regimens ({planned:,} planned doses after)",
                "cobalt": first.seconds,
                "bare": None,
                "queries": log.count,
                "rss": max(benchdb.max_rss(), rss_before),
            }
        )
        before = dict(
            ScheduledDose.objects.filter(patient__clinic=clinic, status=DoseStatus.PLANNED).values_list(
                "id", "due_date"
            )
        )
        with benchdb.counting_queries(detailed=False) as log, benchdb.timed() as change:
            # The whole re-plan within the call (a clinic this large would otherwise get a background job).
            clinic_update_calendar(clinic=clinic, open_weekdays=[0, 1, 3, 4], background=False)
        after = dict(
            ScheduledDose.objects.filter(patient__clinic=clinic, status=DoseStatus.PLANNED).values_list(
                "id", "due_date"
            )
        )
        moved = [(pk, on) for pk, on in after.items() if pk in before and before[pk] != on]

        # Bare: put the old dates back (untimed), then read the planned doses and move the same rows.
        restore = [ScheduledDose(pk=pk, due_date=before[pk]) for pk, _ in moved]
        from tracker import bulk

        bulk.update_rows(ScheduledDose, restore, ["due_date"])
        with benchdb.timed() as bare, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT d.id, d.regimen_id, d.phase_index, d.sequence, d.due_date FROM regimens_scheduleddose d "
                "JOIN patients_patient p ON p.id = d.patient_id WHERE p.clinic_id = %s AND d.status = 'planned'",
                [clinic.pk],
            )
            cursor.fetchall()
            for batch in bulk.batches(moved, bulk.BATCH_SIZE):
                values = ", ".join(["(%s::bigint, %s::date)"] * len(batch))
                cursor.execute(
                    f"UPDATE regimens_scheduleddose SET due_date = v.due_date FROM (VALUES {values}) "  # noqa: S608
                    "AS v(id, due_date) WHERE regimens_scheduleddose.id = v.id",
                    [x for pair in batch for x in pair],
                )
        rows.append(
            {
                "operation": f"calendar change, {len(ids):,} regimens, {len(before):,} planned doses "
                f"({len(moved):,} moved)",
                "cobalt": change.seconds,
                "bare": bare.seconds,
                "queries": log.count,
                "bare_queries": 1 + -(-len(moved) // bulk.BATCH_SIZE),
                "rss": benchdb.max_rss(),
            }
        )
        if case_rows:
            for k in (case_rows, 2 * case_rows):
                subset = [ScheduledDose(pk=pk, due_date=on) for pk, on in moved[:k]]
                with benchdb.timed() as case, transaction.atomic():
                    ScheduledDose.objects.bulk_update(subset, ["due_date"])
                with benchdb.timed() as joined, transaction.atomic():
                    bulk.update_rows(ScheduledDose, subset, ["due_date"], batch_size=len(subset) or 1)
                rows.append(
                    {
                        "operation": f"move {len(subset):,} doses in one statement: bulk_update CASE vs "
                        "UPDATE FROM VALUES",
                        "cobalt": joined.seconds,
                        "bare": None,
                        "case": case.seconds,
                        "queries": 1,
                        "rss": benchdb.max_rss(),
                    }
                )
    return rows


def analyze() -> None:
    """VACUUM ANALYZE the bench database, as autovacuum would have after a bulk load (untimed)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def main(argv: Sequence[str] | None = None) -> int:
    parser = benchdb.parser(__doc__)
    benchdb.add_size(parser, "--patients", default=2_000, what="patients (one regimen each, all at one clinic)")
    benchdb.add_seed(parser, default=SEED)
    parser.add_argument("--case-rows", type=int, default=0, help="also time bulk_update's CASE on K and 2K rows")
    args = parser.parse_args(argv)
    url = benchdb.setup_sibling_database("bench_replan")
    print(f"Bulk re-plan benchmark on {benchdb.database_name(url)} (load average {load()})")
    for row in measure(args.patients, args.seed, args.case_rows):
        bare = row.get("bare")
        ratio = f"{row['cobalt'] / bare:.1f}x" if isinstance(bare, float) and bare else "-"  # type: ignore[operator]
        extra = f"  bare {bare:.2f} s ({row.get('bare_queries')} queries)  ratio {ratio}" if bare else ""
        if "case" in row:
            extra = f"  bulk_update CASE {row['case']:.2f} s"
        print(
            f"  {row['operation']}: {row['cobalt']:.2f} s, {row['queries']:,} queries{extra}, "
            f"peak RSS {benchdb.mib(float(row['rss']))}"  # type: ignore[arg-type]
        )
    return 0


def load() -> str:
    import os

    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    raise SystemExit(main())
