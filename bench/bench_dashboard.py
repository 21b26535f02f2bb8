"""Benchmark of the clinic admin's dashboard selector (monitoring/dashboard.py) and the first page of the
audit log (monitoring/audit.py) on PostgreSQL.

Run from the project root with DATABASE_URL set:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cobalt .venv/bin/python bench/bench_dashboard.py
    ... bench/bench_dashboard.py --patients 1000

Uses (and creates) the sibling database "<name>_bench_dashboard", fills it with the monitoring sweep
bench's clinic (bench/bench_sweep.py: N patients with regimens, doses given and overdue, rechecks,
results), runs the sweep once so alerts are open, then times `dashboard_for` (median of --runs) and counts
its queries, against the bare database work it needs at least: one COUNT over the clinic's doses and
one over its alerts. The tables are ANALYZEd first, as autovacuum would have. A script, not a test: it
asserts nothing about speed.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import bench_sweep, benchdb  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    parser = benchdb.parser(__doc__)
    benchdb.add_size(parser, "--patients", default=10_000, what="patients")
    benchdb.add_seed(parser, default=bench_sweep.SEED)
    parser.add_argument("--runs", type=benchdb.at_least_one, default=5, help="timed runs (default 5)")
    args = parser.parse_args(argv)
    url = benchdb.setup_sibling_database("bench_dashboard")
    bench_sweep.reset()
    with benchdb.timed() as building:
        sizes = bench_sweep.populate(args.patients, random.Random(args.seed))
    bench_sweep.timed_sweep()  # open the alerts the data calls for
    from django.db import connection

    # Fresh bulk inserts have no planner statistics yet (autovacuum has not run): without them
    # PostgreSQL guesses 4 patients per clinic and picks nested loops a live database would not.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    from monitoring.audit import AuditQuery, audit_page
    from monitoring.dashboard import dashboard_for
    from notifications.models import Alert
    from patients.models import Clinic
    from regimens.models import ScheduledDose

    clinic = Clinic.objects.get(name="Bench clinic")
    now = bench_sweep.AT

    def timing(work: object) -> tuple[float, int]:
        times, queries = [], 0
        for _ in range(args.runs):
            with benchdb.counting_queries(detailed=False) as log:
                started = time.perf_counter()
                work()  # type: ignore[operator]
                times.append(time.perf_counter() - started)
            queries = log.count
        return statistics.median(times), queries

    dashboard, dashboard_queries = timing(lambda: dashboard_for(clinic=clinic, now=now))
    baseline, baseline_queries = timing(
        lambda: (
            ScheduledDose.objects.filter(clinic=clinic).count(),  # the clinic on the dose row: its index
            Alert.objects.filter(patient__clinic=clinic).count(),
        )
    )
    audit, audit_queries = timing(lambda: audit_page(AuditQuery(clinic=clinic), limit=50))
    figures = dashboard_for(clinic=clinic, now=now)
    print(f"Dashboard benchmark as of {now.isoformat()} on {benchdb.database_name(url)}")
    print(f"  data: {', '.join(f'{k}={v:,}' for k, v in sizes.items())} (built in {building.seconds:.1f} s)")
    runs = f"(median of {args.runs})"
    print(f"  dashboard_for            {benchdb.ms(dashboard):>10}  {dashboard_queries:3} queries {runs}")
    print(f"  bare counts (baseline)   {benchdb.ms(baseline):>10}  {baseline_queries:3} queries")
    print(f"  ratio                    {dashboard / baseline:10.1f} x")
    print(f"  audit log, first page    {benchdb.ms(audit):>10}  {audit_queries:3} queries")
    work = figures["work"]
    print(
        f"  figures: overdue={work['overdue']:,} due in 8 weeks={work['due_next_8_weeks']:,} "
        f"open alerts={figures['outcomes']['open_alerts']:,} on time={figures['adherence']['on_time_share']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
