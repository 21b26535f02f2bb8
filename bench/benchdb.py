"""What every benchmark script shares: the command line, the bench database (a sibling of
DATABASE_URL's, never that database itself), bulk writes, query counting, timing, progress bars and
the report's formatting. Progress and set-up notes go to stderr, the report to stdout, so
`> report.txt` keeps a clean copy.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tqdm import tqdm

BATCH = 2000

# --- Command line -----------------------------------------------------------------------------


def parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of the script's docstring."""
    return argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])


def at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_size(parser: argparse.ArgumentParser, flag: str, *, default: int, what: str) -> None:
    """The run's size (`--patients`, `--regimens`, ...): a positive count."""
    parser.add_argument(flag, type=at_least_one, default=default, help=f"how many {what} (default {default:,})")


def add_seed(parser: argparse.ArgumentParser, *, default: int) -> None:
    parser.add_argument("--seed", type=int, default=default, help="random seed for the generated data")


# --- Database ---------------------------------------------------------------------------------


def bench_url(url: str, suffix: str) -> str:
    """`.../cobalt` -> `.../cobalt_<suffix>` (a name that already says "bench" is kept)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "cobalt"
    if "bench" not in name:
        name = f"{name}_{suffix}"
    return urlunsplit(parts._replace(path=f"/{name}"))


def ensure_database(url: str) -> str:
    """Create the bench database if it does not exist (connecting to `postgres`); its name."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "bench" not in name:
        # The benches empty their tables; never point one at real data.
        raise SystemExit(f"refusing to use database '{name}': its name must contain 'bench'")
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"  created database {name}", file=sys.stderr)
    return name


def setup_django(url: str, **environment: str) -> str:
    """Point Django at `url` (created if missing), set up and migrate; the database's name."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "tracker.settings.base"
    os.environ["DATABASE_URL"] = url
    os.environ.update(environment)
    os.environ.setdefault("DEBUG", "False")  # no in-memory query log: the benches count queries themselves
    name = ensure_database(url)
    import django
    from django.core.management import call_command

    django.setup()
    with timed() as migrate:
        call_command("migrate", verbosity=0, interactive=False)
    print(f"  migrate: {migrate.seconds:.1f} s", file=sys.stderr)
    return name


def setup_sibling_database(suffix: str, **environment: str) -> str:
    """Set Django up on `<DATABASE_URL's name>_<suffix>` beside DATABASE_URL's database; the URL."""
    url = os.environ.get("DATABASE_URL")
    if not url or not url.startswith("postgres"):
        raise SystemExit(f"set DATABASE_URL to a PostgreSQL URL (the bench uses <name>_{suffix} beside it)")
    url = bench_url(url, suffix)
    setup_django(url, **environment)
    return url


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def truncate(*models: Any, restart_identity: bool = False) -> None:
    """Empty the models' tables and every table that references them (only ever a bench database)."""
    from django.db import connection

    quoted = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in models)
    restart = " RESTART IDENTITY" if restart_identity else ""
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {quoted}{restart} CASCADE")


def bulk_create(model: Any, rows: Sequence[Any], desc: str, batch: int = BATCH) -> list[Any]:
    """`model.objects.bulk_create` in batches of `batch` rows, with a progress bar; the saved rows."""
    out: list[Any] = []
    for i in progress(range(0, len(rows), batch), desc=desc, unit="batch"):
        out.extend(model.objects.bulk_create(rows[i : i + batch]))
    return out


# --- Queries ----------------------------------------------------------------------------------


def query_kind(sql: str) -> str:
    """'SELECT patients_patient FOR UPDATE', 'INSERT regimens_scheduleddose', ..."""
    head = sql.lstrip()[:12].upper()
    verb = next(
        (v for v in ("SELECT", "INSERT", "UPDATE", "DELETE", "SAVEPOINT", "RELEASE") if head.startswith(v)),
        head.split(" ")[0],
    )
    if verb == "SELECT":
        match = re.search(r'\bFROM\s+"(\w+)"', sql)
    elif verb == "INSERT":
        match = re.search(r'INTO\s+"(\w+)"', sql)
    elif verb in ("UPDATE", "DELETE"):
        match = re.search(r'(?:UPDATE|FROM)\s+"(\w+)"', sql)
    else:
        match = None
    table = match.group(1) if match else ""
    suffix = " FOR UPDATE" if verb == "SELECT" and "FOR UPDATE" in sql[-200:] else ""
    return f"{verb} {table}{suffix}".strip()


@dataclass
class QueryLog:
    """Counts every query Django sends; `detailed` also times them and sorts them by kind.

    An execute wrapper, because CaptureQueriesContext keeps at most 9,000 queries
    (connection.queries_log), too few for a large run.
    """

    detailed: bool = True
    count: int = 0
    seconds: float = 0.0
    kinds: Counter[str] = field(default_factory=Counter)
    kind_seconds: Counter[str] = field(default_factory=Counter)

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if not self.detailed:
            self.count += 1
            return execute(sql, params, many, context)
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            took = time.perf_counter() - started
            kind = query_kind(sql)
            self.count += 1
            self.seconds += took
            self.kinds[kind] += 1
            self.kind_seconds[kind] += took


@contextmanager
def counting_queries(*, detailed: bool = True) -> Iterator[QueryLog]:
    from django.db import connection

    log = QueryLog(detailed=detailed)
    with connection.execute_wrapper(log):
        yield log


# --- Timing -----------------------------------------------------------------------------------


@dataclass
class Timing:
    seconds: float = 0.0


@contextmanager
def timed() -> Iterator[Timing]:
    """Wall time of the block, in `.seconds` once it ends."""
    timing = Timing()
    started = time.perf_counter()
    try:
        yield timing
    finally:
        timing.seconds = time.perf_counter() - started


def max_rss() -> int:
    """The process's peak resident set size so far, in bytes (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Start the peak RSS over from the current RSS (Linux: "5" to /proc/self/clear_refs), so that
    `peak_rss` reports one measurement's peak, not the process's; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def peak_rss() -> int:
    """The peak resident set size since `reset_peak_rss` (VmHWM), in bytes; else the process's peak."""
    try:
        with open("/proc/self/status") as status:
            for text in status:
                if text.startswith("VmHWM:"):
                    return int(text.split()[1]) * 1024
    except OSError:
        pass
    return max_rss()


# --- Progress and report ----------------------------------------------------------------------


def progress(iterable: Iterable[Any] | None = None, *, desc: str, unit: str = "it", total: int | None = None) -> Any:
    """A tqdm bar on stderr (stdout stays clean for the report), gone once done."""
    return tqdm(iterable, desc=desc, unit=unit, total=total, file=sys.stderr, leave=False, mininterval=0.5)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of `values` (pct in 0-100)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def mib(size: float) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def kib(size: float) -> str:
    return f"{size / 1024:.1f} KiB"


def line(label: str, value: str) -> None:
    print(f"  {label:<34} {value}")


def heading(text: str) -> None:
    print()
    print(text)
    print("-" * len(text))
