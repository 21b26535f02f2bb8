"""Run the sweep and bulk re-plan measurements with their bare counterparts in one go and write the table
(operation, Cobalt, bare, ratio, queries, peak RSS) to bench/RESULTS.md.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cobalt .venv/bin/python bench/results.py --patients 10000
    make bench-quick      # 10,000 patients
    make bench            # 100,000 patients (builds the database: a long run on a small machine)

Uses the sibling database "<name>_bench_results". The monitoring sweep's bare counterpart replays the very
SELECTs the sweep sent (the reading it needs) and writes the same rows it wrote (alerts, their history rows,
staff deliveries) with one multi-row INSERT per 1,000 rows, all without the ORM; for the steady state (a
second run at the same instant, nothing to write) the bare work is the replay alone. The calendar change is
measured by bench/bench_replan.py's `measure` (its bare counterpart reads the clinic's planned doses and moves
the same rows with a joined UPDATE). Peak RSS is the process's peak so far (it only grows; read it as "at
most"). A script, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import benchdb  # noqa: E402

SEED = 20270105
RESULTS = ROOT / "bench" / "RESULTS.md"


@contextmanager
def recording_selects() -> Iterator[list[tuple[str, Any]]]:
    """Every SELECT Django sends in the block, with its parameters (to replay as bare SQL)."""
    from django.db import connection

    seen: list[tuple[str, Any]] = []

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.lstrip().upper().startswith("SELECT") and "FOR UPDATE" not in sql:
            seen.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield seen


def replay(selects: Sequence[tuple[str, Any]]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for sql, params in selects:
            cursor.execute(sql, params)
            cursor.fetchall()


def bare_insert(model: Any, rows: list[dict[str, Any]]) -> int:
    """Multi-row INSERTs of `rows` (column -> value), 1,000 per statement; the number of statements."""
    from django.db import connection
    from psycopg.types.json import Jsonb

    if not rows:
        return 0
    columns = list(rows[0])
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    statements = 0
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 1000):
            batch = rows[start : start + 1000]
            values = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(batch))
            params = [Jsonb(r[c]) if isinstance(r[c], dict | list) else r[c] for r in batch for c in columns]
            cursor.execute(f"INSERT INTO {table} ({names}) VALUES {values}", params)  # noqa: S608
            statements += 1
    return statements


def sweep_rows(patients: int, seed: int) -> list[dict[str, Any]]:
    from django.db import transaction

    from bench.bench_sweep import AT, populate, reset
    from monitoring.sweep import monitoring
    from notifications.models import Alert, Delivery

    reset()
    with benchdb.timed() as building:
        sizes = populate(patients, random.Random(seed))
    print(f"  built {sizes} in {building.seconds:.0f} s", file=sys.stderr)
    out: list[dict[str, Any]] = []
    for label in ("first run", "steady state"):
        alerts_before = set(Alert.objects.values_list("id", flat=True))
        with recording_selects() as selects, benchdb.counting_queries(detailed=False) as log, benchdb.timed() as t:
            counts = monitoring(AT)
        opened = sum(v for k, v in counts.items() if k.endswith("_raised"))
        rss = benchdb.max_rss()
        # Bare: the same reads, and the same rows written (copied out, deleted, then inserted raw), in one
        # transaction that is rolled back so the next measurement starts from the sweep's own result.
        new_alerts = list(Alert.objects.exclude(id__in=alerts_before).values())
        history = list(Alert.history.filter(id__in=[a["id"] for a in new_alerts]).values())
        deliveries = list(Delivery.objects.filter(alert_id__in=[a["id"] for a in new_alerts]).values())
        statements = len(selects)
        with transaction.atomic():
            Delivery.objects.filter(id__in=[d["id"] for d in deliveries]).delete()
            Alert.history.filter(id__in=[a["id"] for a in new_alerts]).delete()
            Alert.objects.filter(id__in=[a["id"] for a in new_alerts]).delete()
            started = time.perf_counter()
            replay(selects)
            statements += bare_insert(Alert, new_alerts)
            statements += bare_insert(Alert.history.model, history)
            statements += bare_insert(Delivery, deliveries)
            bare = time.perf_counter() - started
            transaction.set_rollback(True)
        out.append(
            {
                "operation": f"monitoring sweep, {label}, {patients:,} patients (opens {opened:,} alerts)",
                "cobalt": t.seconds,
                "bare": bare,
                "queries": f"{log.count:,} vs {statements:,}",
                "rss": rss,
            }
        )
    return out


def write(rows: list[dict[str, Any]], patients: int, replan_patients: int) -> None:
    lines = [
        "# Benchmark results",
        "",
        f"Written by `bench/results.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC (load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} cores; the machine is shared, so "
        "read ratios, not absolute times). Monitoring sweep at "
        f"{patients:,} patients; calendar change at one clinic of {replan_patients:,} patients.",
        "",
        "| operation | Cobalt | bare | ratio | queries (Cobalt vs bare) | peak RSS |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        bare = r.get("bare")
        ratio = f"{r['cobalt'] / bare:.1f}x" if bare else "-"
        lines.append(
            f"| {r['operation']} | {r['cobalt']:.2f} s | {f'{bare:.2f} s' if bare else '-'} | {ratio} | "
            f"{r['queries']} | {benchdb.mib(float(r['rss']))} |"
        )
    lines.append("")
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    parser = benchdb.parser(__doc__)
    benchdb.add_size(parser, "--patients", default=10_000, what="patients for the monitoring sweep")
    benchdb.add_size(parser, "--replan-patients", default=2_000, what="patients of the clinic whose calendar changes")
    benchdb.add_seed(parser, default=SEED)
    args = parser.parse_args(argv)
    benchdb.setup_sibling_database("bench_results")
    from bench.bench_replan import measure

    rows = sweep_rows(args.patients, args.seed)
    for r in measure(args.replan_patients, args.seed, 0):
        if r.get("bare") is None:
            continue  # the preparation (every regimen re-planned once) has no bare counterpart
        bare_queries = r.get("bare_queries")
        rows.append({**r, "queries": f"{r['queries']:,} vs {bare_queries}"})
    write(rows, args.patients, args.replan_patients)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
