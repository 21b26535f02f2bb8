"""Run every sweep, the bulk re-plan, the busiest reads and the lab-result POST, each with its bare counterpart in
the same run, and write the table (operation, Cobalt, bare, ratio, queries, peak RSS, growth) to bench/RESULTS.md.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cobalt .venv/bin/python bench/results.py --patients 10000
    make bench-quick      # 10,000 patients
    make bench            # 100,000 patients (builds the database: a long run on a small machine)

Uses the sibling database "<name>_bench_results" (a name that already contains "bench" is used as it is) and
leaves the large clinic in it, with a staff login, for bench/load.py (`make bench-load`).

Bare counterparts:
- a sweep: the very SELECTs it sent, replayed, plus the rows it wrote (found by their transaction id, `xmin`)
  written again with one multi-row INSERT or one joined UPDATE per 1,000 rows, without the ORM, in a
  transaction rolled back afterwards (rows it deleted are not counted);
- the calendar change: bench/bench_replan.py's `measure` (reads the clinic's planned doses, moves the same rows
  with a joined UPDATE);
- a read (the worklist, the patient page, the dashboard): the indexed SQL of the same rows written by hand, plus
  the JSON encoding of what it read (the dashboard: `bare_dashboard`, hand-written SQL computing the same figures,
  checked equal to the API's before it is timed, plus their JSON), served by a bare view behind the same
  middleware and authentication as the page or endpoint (bench/bare_views.py: a token for the API, the session
  for the page); the ratio is against that request, and the label gives the same work done in-process, without a
  request. The patient page's label also gives its templates alone (`templates_alone`: rendered again from the
  contexts the view built) and the bare view's JSON encoding alone, the figures of docs/scaling.md's floor;
- a lab-result POST over the Django test client (token authentication, the whole request): the same POST to a
  bare DRF create view over the same model (bench/bare_views.py), and, for scale, one INSERT of the same row.
Peak RSS is each measurement's own peak (Linux: reset through /proc/self/clear_refs before it). Each size's
figures are kept in bench/results-<patients>.json; the growth column divides this run's time by the other
size's. A script, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import json
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import benchdb  # noqa: E402

SEED = 20270105
RESULTS = ROOT / "bench" / "RESULTS.md"
STAFF_PASSWORD = "bench-load-password"  # noqa: S105 (a bench login on a bench database)
TABLE_BEGIN, TABLE_END = "<!-- results.py -->", "<!-- /results.py -->"
READ_KEYS = ("worklist-day", "worklist-overdue", "worklist-overdue-midnight", "patient-page", "dashboard")
WRITE_KEYS = ("lab-post", "lab-post-replan", "dose-post")
KEYS = (
    "engine",
    "calendar-change",
    "monitoring-first",
    "monitoring-steady",
    "horizons",
    "reminders-first",
    "reminders-steady",
    "staff",
    "outbox",
    *READ_KEYS,
    *WRITE_KEYS,
)


@dataclass
class Row:
    key: str  # stable across sizes: the growth column matches rows by it
    operation: str
    cobalt: float  # seconds (a request: the median of its runs)
    bare: float | None
    queries: str
    rss: int
    # When the row was measured ("YYYY-MM-DD HH:MM" UTC); rows re-measured alone (--only) say so in the table.
    measured: str = ""

    def ratio(self) -> str:
        return f"{self.cobalt / self.bare:.1f}x" if self.bare else "-"


# --- Sweeps and their bare counterparts -------------------------------------------------------------


@dataclass
class Sent:
    selects: list[tuple[str, Any]]  # every SELECT (not FOR UPDATE), with its parameters, to replay as bare SQL
    set_columns: dict[str, set[str]]  # table -> the columns its UPDATEs set


UPDATE_TABLE = re.compile(r'^\s*UPDATE\s+"(\w+)"\s+SET\s+(.*?)(?:\sFROM\s|\sWHERE\s|$)', re.S | re.I)


@contextmanager
def recording() -> Iterator[Sent]:
    """What Django sends in the block: its SELECTs, and which columns of which tables its UPDATEs write."""
    from django.db import connection

    sent = Sent([], {})

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        head = sql.lstrip()[:6].upper()
        if head == "SELECT" and "FOR UPDATE" not in sql:
            sent.selects.append((sql, params))
        elif head == "UPDATE" and (match := UPDATE_TABLE.match(sql)):
            columns = re.findall(r'"(\w+)"\s*=', match.group(2))
            sent.set_columns.setdefault(match.group(1), set()).update(columns)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield sent


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


def tracked_models() -> list[Any]:
    """Every model with a table of its own and an integer primary key (history models included)."""
    from django.apps import apps
    from django.db import models

    return [
        m
        for m in apps.get_models()
        if m._meta.managed
        and not m._meta.proxy
        and isinstance(m._meta.pk, models.AutoField | models.BigAutoField | models.SmallAutoField)
    ]


def current_xid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT txid_current() % 4294967296")
        return int(cursor.fetchone()[0])


def max_ids(models: list[Any]) -> dict[Any, int]:
    from django.db.models import Max

    return {m: m._base_manager.aggregate(top=Max("pk"))["top"] or 0 for m in models}


@dataclass
class Written:
    model: Any
    inserted: list[dict[str, Any]]
    updated: list[dict[str, Any]]


def written_since(xid: int, before: dict[Any, int]) -> list[Written]:
    """The rows written by transactions after `xid` (PostgreSQL's xmin), split into inserted (a primary key
    above the table's maximum before) and updated."""
    out = []
    for model, top in before.items():
        newer = f'"{model._meta.db_table}".xmin::text::bigint > %s'
        rows = list(model._base_manager.extra(where=[newer], params=[xid]).order_by().values())  # noqa: S610
        if rows:
            pk = model._meta.pk.attname
            inserted = [r for r in rows if r[pk] > top]
            updated = [r for r in rows if r[pk] <= top]
            out.append(Written(model, inserted, updated))
    return out


def bare_sweep(sent: Sent, written: list[Written], before: dict[Any, int]) -> tuple[float, int]:
    """The sweep's bare work, timed in a transaction that is rolled back: its reads replayed, its inserted rows
    inserted again (after they are deleted, untimed) and the columns its UPDATEs set written again in its
    updated rows."""
    from django.db import connection, transaction

    from tracker import bulk

    selects = sent.selects
    statements = len(selects)
    with transaction.atomic():
        with connection.cursor() as cursor:
            for w in written:
                if w.inserted:
                    table = connection.ops.quote_name(w.model._meta.db_table)
                    pk = connection.ops.quote_name(w.model._meta.pk.column)
                    cursor.execute(f"DELETE FROM {table} WHERE {pk} > %s", [before[w.model]])  # noqa: S608
        started = time.perf_counter()
        replay(selects)
        for w in written:
            statements += bare_insert(w.model, w.inserted)
            if w.updated:
                columns = sent.set_columns.get(w.model._meta.db_table) or set()
                fields = [f.name for f in w.model._meta.concrete_fields if not f.primary_key and f.column in columns]
                fields = fields or [f.name for f in w.model._meta.concrete_fields if not f.primary_key]
                instances = [w.model(**row) for row in w.updated]
                bulk.update_rows(w.model, instances, fields)
                statements += -(-len(instances) // bulk.BATCH_SIZE)
        bare = time.perf_counter() - started
        transaction.set_rollback(True)
    return bare, statements


def sweep_row(key: str, label: str, name: str, at: datetime, describe: Callable[[dict[str, int]], str]) -> Row:
    """Run the sweep `name` once for `at`, then its bare counterpart; the table row."""
    from tracker import sweeps

    models = tracked_models()
    before = max_ids(models)
    xid = current_xid()
    benchdb.reset_peak_rss()
    with recording() as sent, benchdb.counting_queries(detailed=False) as log, benchdb.timed() as t:
        counts = sweeps.run(name, at)
    rss = benchdb.peak_rss()
    written = written_since(xid, before)
    bare, statements = bare_sweep(sent, written, before)
    rows = sum(len(w.inserted) + len(w.updated) for w in written)
    print(f"  {label}: {t.seconds:.2f} s, bare {bare:.2f} s, {rows:,} rows written, {counts}", file=sys.stderr)
    return Row(
        key,
        f"{label} ({describe(counts)}; {rows:,} rows written)",
        t.seconds,
        bare,
        f"{log.count:,} vs {statements:,}",
        rss,
    )


@contextmanager
def no_broker() -> Iterator[list[str]]:
    """Celery tasks are not sent (the outbox sweep's dispatch is the broker's work, bench/bench_delivery.py
    measures it with workers); their names are collected."""
    from celery.app.task import Task

    sent: list[str] = []
    original = Task.apply_async

    def apply_async(self: Any, *args: Any, **kwargs: Any) -> None:
        sent.append(self.name)

    Task.apply_async = apply_async  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        Task.apply_async = original  # type: ignore[method-assign]


# --- The data --------------------------------------------------------------------------------------


def build(patients: int, seed: int) -> dict[str, int]:
    """bench/bench_sweep.py's clinic of `patients`, plus what the other sweeps and the pages need: an email
    address for 9 patients in 10 (the others have none: contact_missing), 1 regimen in 100 due for a horizon
    extension at AT, and the clinic's staff (a nurse, a clinician, an admin, with email)."""
    from django.db import connection

    from bench.bench_sweep import AT, populate, reset
    from patients.models import Clinic, Patient
    from regimens.models import Regimen

    reset()
    with benchdb.timed() as building:
        sizes = populate(patients, random.Random(seed))
    print(f"  built {sizes} in {building.seconds:.0f} s", file=sys.stderr)
    Patient.objects.extra(where=["id %% 10 <> 0"]).update(email="bench@example.org")
    Regimen.objects.extra(where=["id %% 100 = 0"]).update(extend_on=AT.date())
    ensure_staff(Clinic.objects.get(name="Bench clinic"))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # as autovacuum would have after a bulk load (index-only scans need it)
    return sizes


def ensure_staff(clinic: Any) -> dict[str, Any]:
    """The bench clinic's nurse, clinician and admin (created once; the clinic's memberships are re-made, since
    the bench empties the clinics)."""
    from django.contrib.auth import get_user_model

    from patients.models import ClinicMembership, Role

    users = {}
    for role in (Role.NURSE, Role.CLINICIAN, Role.ADMIN):
        user, created = get_user_model().objects.get_or_create(
            username=f"bench-{role}", defaults={"email": f"bench-{role}@example.org"}
        )
        if created:
            user.set_password(STAFF_PASSWORD)
            user.save()
        ClinicMembership.objects.get_or_create(user=user, clinic=clinic, defaults={"role": role})
        users[str(role)] = user
    return users


# --- Requests and their bare counterparts ----------------------------------------------------------


def median_patient(clinic: Any) -> tuple[int, int]:
    """A patient of the clinic with a typical history (the median number of doses): (id, doses)."""
    from django.db.models import Count

    from regimens.models import ScheduledDose

    counts = ScheduledDose.objects.filter(clinic=clinic).values_list("patient_id").annotate(n=Count("id")).order_by()
    by_doses = sorted(counts, key=lambda c: (c[1], c[0]))
    patient_id, doses = by_doses[len(by_doses) // 2]
    return patient_id, doses


def token_client(user: Any, at: datetime) -> Any:
    """An API client that authenticates as `user` with a token made at `at`."""
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {fresh_token(user, at)}")
    return api


def fresh_token(user: Any, at: datetime) -> str:
    """A new API token of `user` (knox, as POST /api/auth/token/ issues), made at `at` and valid for
    settings.TOKEN_TTL from then; the user's other tokens are deleted."""
    from django.conf import settings
    from knox.models import AuthToken

    AuthToken.objects.filter(user=user).delete()
    _row, key = AuthToken.objects.create(user=user, expiry=settings.TOKEN_TTL)
    AuthToken.objects.filter(user=user).update(created=at, expiry=at + settings.TOKEN_TTL)
    return str(key)


# A read row measures `runs` requests of Cobalt, then `runs` of the bare view, this many times over.
INTERLEAVED_BLOCKS = 5


def times_of(call: Callable[[], Any], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def median_time(call: Callable[[], Any], runs: int) -> float:
    return statistics.median(times_of(call, runs))


@contextmanager
def captured_renders() -> Iterator[list[tuple[Any, Any, Any]]]:
    """Every template rendered through Django's template backend inside the block (a page's layout and each section
    it renders on its own), with the context and request it was given, in order. Only the outermost renders: a
    template rendered while another renders (a form's widgets, inside the section that shows the form) is part of
    that one's rendering, and rendering it again on its own would count it twice."""
    from django.template.backends.django import Template

    original = Template.render
    seen: list[tuple[Any, Any, Any]] = []
    depth = 0

    def render(self: Any, context: Any = None, request: Any = None) -> Any:
        nonlocal depth
        if depth == 0:
            seen.append((self, context, request))
        depth += 1
        try:
            return original(self, context, request)
        finally:
            depth -= 1

    Template.render = render  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        Template.render = original  # type: ignore[method-assign]


def templates_alone(call: Callable[[], Any], runs: int) -> float:
    """The median time of rendering again every template that one `call()` (a page request) rendered, from the
    very context objects the view built: the page's templates alone, without its reads, its section code or the
    request stack. Checked to send no query (the contexts hold rows already read), so it is a floor of the page
    for as long as it is made with these templates."""
    with captured_renders() as renders:
        call()

    def render_again() -> None:
        for template, context, request in renders:
            template.render(context, request)

    render_again()
    with benchdb.counting_queries(detailed=False) as log:
        render_again()
    assert renders and log.count == 0, f"{len(renders)} templates rendered again sent {log.count} queries"
    return median_time(render_again, runs * INTERLEAVED_BLOCKS)


def request_row(
    key: str, label: str, call: Callable[[], Any], bare: Callable[[], str], statements: int, served: Callable[[], Any],
    runs: int, served_html: Callable[[], Any] | None = None,
) -> Row:  # fmt: skip
    """`call` (a request), `bare` (its bare SQL and JSON, in-process) and `served` (a request for the same bare
    work through the same middleware and authentication, bench/bare_views.py), each warmed once, then the median
    of `runs` requests taken INTERLEAVED_BLOCKS times in turn with the bare view's. The ratio is against `served`;
    the in-process figure is given in the label for scale. `served_html` (an HTML page's): the same bare SQL through
    a minimal Django template (bench/bare_views.py bare_page_html), taken in the same turns and given in the label
    with the page's ratio to it (docs/scaling.md, option 3)."""
    from django.test import override_settings

    from bench.bare_views import BARE_READS

    BARE_READS[key] = bare
    call()
    benchdb.reset_peak_rss()
    with benchdb.counting_queries(detailed=False) as log:
        call()
    # Cobalt and the bare view take turns in blocks (each warmed after the switch), so that a change of the
    # machine's load during the row weighs on both alike.
    ours: list[float] = []
    theirs: list[float] = []
    html: list[float] = []
    for _ in range(INTERLEAVED_BLOCKS):
        ours.extend(times_of(call, runs))
        with override_settings(ROOT_URLCONF="bench.bare_urls"):
            served()
            theirs.extend(times_of(served, runs))
            if served_html is not None:
                served_html()
                html.extend(times_of(served_html, runs))
        call()
    cobalt, bare_time = statistics.median(ours), statistics.median(theirs)
    rss = benchdb.peak_rss()
    alone = median_time(bare, runs)
    print(f"  {label}: {cobalt * 1000:.1f} ms, bare view {bare_time * 1000:.1f} ms, alone {alone * 1000:.1f} ms",
          file=sys.stderr)  # fmt: skip
    as_html = ""
    if html:
        html_time = statistics.median(html)
        as_html = (
            f"; the same bare SQL through a minimal Django template (the layout and a table per table read), served "
            f"the same way: {html_time * 1000:.1f} ms, the page {cobalt / html_time:.2f}x of it"
        )
        print(f"  bare SQL + minimal template {html_time * 1000:.1f} ms", file=sys.stderr)
    return Row(
        key,
        f"{label} (median of {runs * INTERLEAVED_BLOCKS}, in {INTERLEAVED_BLOCKS} turns with the bare view; bare SQL + "
        f"JSON alone: {alone * 1000:.1f} ms{as_html})",
        cobalt,
        bare_time,
        f"{log.count} vs {statements}",
        rss,
    )


def fetch(sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[dict[str, Any]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [c.name for c in cursor.description or []]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def encode(data: Any) -> str:
    return json.dumps(data, default=str)


DOSE_COLUMNS = (
    "d.id, d.regimen_id, d.patient_id, d.phase, d.phase_index, d.sequence, d.due_date, d.appointment_time, d.drug, "
    "d.dose_mcg, d.dose_unit, d.route, d.self_administered, d.status, d.administered_at, d.lot_number, "
    "d.expiry_date, d.site, d.given_route, d.not_given_reason, d.not_given_on, d.recorded_at"
)


def bare_page(where: str, params: list[Any]) -> Callable[[], str]:
    """One page of the clinic's doses by the worklist's index, its count, and the JSON of its rows (2 statements)."""
    from tracker.api import DEFAULT_PAGE_SIZE

    def work() -> str:
        count = fetch(f"SELECT COUNT(*) AS n FROM regimens_scheduleddose d WHERE {where}", params)  # noqa: S608
        # The patient's zone for the page's rows only: looked up after the LIMIT, not joined before the sort.
        rows = fetch(
            f"SELECT {DOSE_COLUMNS}, (SELECT p.timezone FROM patients_patient p WHERE p.id = d.patient_id) AS timezone "  # noqa: S608
            f"FROM regimens_scheduleddose d WHERE {where} ORDER BY d.due_date, d.id LIMIT {DEFAULT_PAGE_SIZE}",
            params,
        )
        return encode({"count": count[0]["n"], "results": rows})

    return work


PATIENT_TABLES = (
    ("patients_patient", "id"),
    ("regimens_regimen", "patient_id"),
    ("regimens_scheduleddose", "patient_id"),
    ("regimens_labrecheck", "patient_id"),
    ("patients_labresult", "patient_id"),
    ("patients_patientfact", "patient_id"),
    ("patients_medication", "patient_id"),
    ("notifications_alert", "patient_id"),
    ("notifications_delivery", "patient_id"),
)
# The clinician decisions the regimen cards show (no patient column: through the patient's regimens, by their index).
PATIENT_DECISIONS = """
SELECT * FROM regimens_regimendecision WHERE regimen_id IN (SELECT id FROM regimens_regimen WHERE patient_id = %s)
"""


# The staff the page names by username (who started, gave, entered, recorded), in one statement.
PATIENT_USERS = """
SELECT id, username FROM auth_user WHERE id IN (
    SELECT created_by_id FROM regimens_regimen WHERE patient_id = %(p)s
    UNION SELECT administered_by_id FROM regimens_scheduleddose WHERE patient_id = %(p)s
    UNION SELECT entered_by_id FROM patients_labresult WHERE patient_id = %(p)s
    UNION SELECT recorded_by_id FROM patients_patientfact WHERE patient_id = %(p)s
)
"""


def bare_patient(patient_id: int) -> Callable[[], str]:
    """The patient's rows of every table the page shows (medications and clinician decisions too, also when there are
    none: the page has to ask), each by its patient index, and the usernames of the staff they name, and their JSON
    (one statement per table, one for the users)."""

    return lambda: encode(patient_rows(patient_id))


def patient_rows(patient_id: int) -> dict[str, list[dict[str, Any]]]:
    """bare_patient's rows, by table."""
    rows = {t: fetch(f"SELECT * FROM {t} WHERE {c} = %s", [patient_id]) for t, c in PATIENT_TABLES}  # noqa: S608
    rows["regimens_regimendecision"] = fetch(PATIENT_DECISIONS, [patient_id])
    rows["auth_user"] = fetch(PATIENT_USERS, {"p": patient_id})
    return rows


def bare_dashboard(clinic_id: int, now: datetime) -> tuple[dict[str, Any], int]:
    """The dashboard's figures (monitoring/dashboard.py, default period) from SQL written by hand, one statement per
    group of figures, each through the best index there is, shaped into the API's JSON; and the statement count.
    The time to normalization is one hand-written statement already (monitoring/normalization.py): it runs as it
    is. The constants (grace days, bands, labels) are the application's."""
    import zoneinfo

    from monitoring.dashboard import NOT_NORMALIZING_KINDS, PATIENT_REMINDERS, WORKLOAD_DAYS, Grace, default_period
    from monitoring.normalization import normalization_summary
    from notifications.models import AlertKind, Severity
    from patients.models import Clinic

    ran = 0

    def rows(sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        nonlocal ran
        ran += 1
        return fetch(sql, params)

    def one(sql: str, params: Sequence[Any]) -> dict[str, Any]:
        return rows(sql, params)[0]

    def share(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    clinic = one("SELECT id, name, timezone, open_weekdays::text FROM patients_clinic WHERE id = %s", [clinic_id])
    zone, open_weekdays = clinic["timezone"], json.loads(clinic["open_weekdays"])
    today = now.astimezone(zoneinfo.ZoneInfo(zone)).date()
    start, end = default_period(today)
    last = today + timedelta(days=WORKLOAD_DAYS - 1)
    yesterday = min(end, today - timedelta(days=1))
    grace = Grace.from_settings()
    bands = grace.overdue_bands()

    per_day = {
        r["due_date"]: r["n"]
        for r in rows(
            "SELECT due_date, COUNT(*) AS n FROM regimens_scheduleddose "
            "WHERE clinic_id = %s AND status = 'planned' AND due_date BETWEEN %s AND %s GROUP BY due_date",
            [clinic_id, today, last],
        )
    }
    closed = {
        r["date"]
        for r in rows(
            "SELECT date FROM patients_closeddate WHERE clinic_id = %s AND date BETWEEN %s AND %s",
            [clinic_id, today, last],
        )
    }
    counts, bounds = [], []
    for i, (_, low, high) in enumerate(bands):
        if high is None:
            counts.append(f"COUNT(*) FILTER (WHERE due_date <= %s) AS b{i}")
            bounds.append(today - timedelta(days=low))
        else:
            counts.append(f"COUNT(*) FILTER (WHERE due_date <= %s AND due_date >= %s) AS b{i}")
            bounds += [today - timedelta(days=low), today - timedelta(days=high)]
    overdue = one(
        f"SELECT {', '.join(counts)} FROM regimens_scheduleddose "  # noqa: S608 (the bands' SQL is ours)
        "WHERE clinic_id = %s AND status = 'planned' AND due_date < %s",
        [*bounds, clinic_id, today],
    )
    rechecks = one(
        "SELECT COUNT(*) FILTER (WHERE r.status = 'due' AND r.window_start <= %s AND r.window_end >= %s) AS due, "
        "COUNT(*) FILTER (WHERE r.status = 'overdue' OR r.window_end < %s) AS overdue "
        "FROM regimens_labrecheck r JOIN patients_patient p ON p.id = r.patient_id "
        "WHERE p.clinic_id = %s AND r.status IN ('due', 'overdue')",
        [today, today, today, clinic_id],
    )
    months = {
        r["month"]: r
        for r in rows(
            "SELECT date_trunc('month', day::timestamp)::date AS month, SUM(due)::int AS due, "
            "SUM(given)::int AS given, SUM(on_time)::int AS on_time, SUM(not_given)::int AS not_given, "
            "SUM(missed)::int AS missed FROM ("
            "  SELECT d.due_date AS day, COUNT(*) AS due, COUNT(*) FILTER (WHERE d.status = 'given') AS given,"
            "    COUNT(*) FILTER (WHERE d.status = 'given' AND (d.administered_at AT TIME ZONE %s)::date - d.due_date"
            "      <= CASE WHEN p.neurological_involvement THEN %s ELSE %s END) AS on_time,"
            "    COUNT(*) FILTER (WHERE d.status = 'not_given') AS not_given,"
            "    COUNT(*) FILTER (WHERE d.status = 'planned') AS missed"
            "  FROM regimens_scheduleddose d JOIN patients_patient p ON p.id = d.patient_id"
            "  WHERE d.clinic_id = %s AND d.due_date BETWEEN %s AND %s"
            "    AND d.status IN ('given', 'not_given', 'planned')"
            "  GROUP BY d.due_date"
            ") per_day GROUP BY 1",
            [zone, grace.neuro_days, grace.days, clinic_id, start, yesterday],
        )
    }
    reasons = rows(
        "SELECT not_given_reason AS reason, COUNT(*) AS doses FROM regimens_scheduleddose "
        "WHERE clinic_id = %s AND status = 'not_given' AND due_date BETWEEN %s AND %s "
        "GROUP BY not_given_reason ORDER BY doses DESC, not_given_reason",
        [clinic_id, start, yesterday],
    )
    open_alerts = rows(
        "SELECT a.severity, a.kind, COUNT(*) AS n FROM notifications_alert a "
        "JOIN patients_patient p ON p.id = a.patient_id WHERE p.clinic_id = %s AND a.status = 'open' "
        "GROUP BY GROUPING SETS ((a.severity), (a.kind)) ORDER BY n DESC, a.kind",
        [clinic_id],
    )
    period_from = datetime(start.year, start.month, start.day, tzinfo=zoneinfo.ZoneInfo(zone))
    after = end + timedelta(days=1)
    period_to = datetime(after.year, after.month, after.day, tzinfo=zoneinfo.ZoneInfo(zone))
    acknowledged = one(
        "SELECT COUNT(*) AS n, PERCENTILE_CONT(0.5) WITHIN GROUP "
        "(ORDER BY EXTRACT(EPOCH FROM a.acknowledged_at - a.opened_at)) AS median "
        "FROM notifications_alert a JOIN patients_patient p ON p.id = a.patient_id "
        "WHERE p.clinic_id = %s AND a.acknowledged_at >= %s AND a.acknowledged_at < %s",
        [clinic_id, period_from, period_to],
    )
    kinds = [k.value for k in NOT_NORMALIZING_KINDS]
    not_normalizing = one(
        "SELECT COUNT(DISTINCT a.patient_id) FILTER (WHERE a.kind = %s) AS k0, "
        "COUNT(DISTINCT a.patient_id) FILTER (WHERE a.kind = %s) AS k1, "
        "COUNT(DISTINCT a.patient_id) FILTER (WHERE a.kind = %s) AS k2, "
        "COUNT(DISTINCT a.patient_id) AS patients FROM notifications_alert a "
        "JOIN patients_patient p ON p.id = a.patient_id "
        "WHERE p.clinic_id = %s AND a.kind IN (%s, %s, %s) AND a.status IN ('open', 'acknowledged')",
        [*kinds, clinic_id, *kinds],
    )
    reminders = one(
        "SELECT COUNT(*) FILTER (WHERE x.status = 'sent' AND x.sent_at >= %s AND x.sent_at < %s) AS sent, "
        "COUNT(*) FILTER (WHERE x.status = 'failed' AND x.updated_at >= %s AND x.updated_at < %s) AS failed, "
        "MIN(x.due_at) FILTER (WHERE x.status IN ('pending', 'sending') AND x.due_at <= %s) AS oldest "
        "FROM notifications_delivery x JOIN patients_patient p ON p.id = x.patient_id "
        "WHERE p.clinic_id = %s AND x.purpose IN (%s, %s, %s)",
        [period_from, period_to, period_from, period_to, now, clinic_id, *PATIENT_REMINDERS],
    )
    opted_out = one(
        "SELECT COUNT(*) AS n FROM patients_patient WHERE clinic_id = %s AND reminder_channel = 'none'", [clinic_id]
    )["n"]
    from django.conf import settings

    lease = timedelta(seconds=int(settings.COBALT["DELIVERY_LEASE_SECONDS"]))
    outbox = one(
        "SELECT COUNT(*) FILTER (WHERE status = 'pending') AS pending, "
        "COUNT(*) FILTER (WHERE status = 'pending' AND due_at <= %s) AS due_now, "
        "MIN(due_at) FILTER (WHERE status = 'pending' AND due_at <= %s) AS oldest, "
        "COUNT(*) FILTER (WHERE status = 'sending') AS sending, "
        "COUNT(*) FILTER (WHERE status = 'sending' AND claimed_at < %s) AS lease_expired "
        "FROM notifications_delivery WHERE status IN ('pending', 'sending')",
        [now, now, now - lease],
    )
    by_channel: dict[str, dict[str, int]] = {"failed": {}, "sent": {}}
    for r in rows(
        "SELECT status, channel, COUNT(*) AS n FROM notifications_delivery "
        "WHERE status IN ('sent', 'failed') AND updated_at >= %s GROUP BY status, channel ORDER BY status, channel",
        [now - timedelta(hours=24)],
    ):
        by_channel[r["status"]][r["channel"]] = r["n"]
    normalization = normalization_summary(Clinic(id=clinic_id, timezone=zone), today)
    ran += 2  # its SET LOCAL jit = off, and its statement

    days = [
        {
            "date": day.isoformat(),
            "doses": per_day.get(day, 0),
            "open": day.weekday() in open_weekdays and day not in closed,
        }
        for day in (today + timedelta(days=n) for n in range(WORKLOAD_DAYS))
    ]
    end_of_week = today + timedelta(days=6 - today.weekday())
    month_rows = []
    cursor = start.replace(day=1)
    while cursor <= yesterday:
        r = months.get(cursor, {"due": 0, "given": 0, "on_time": 0, "not_given": 0, "missed": 0})
        month_rows.append(
            {
                "month": cursor.strftime("%Y-%m"),
                **{k: r[k] for k in ("due", "given", "on_time", "not_given", "missed")},
                "on_time_share": share(r["on_time"], r["due"]),
            }
        )
        cursor = (cursor + timedelta(days=32)).replace(day=1)
    due = sum(m["due"] for m in month_rows)
    on_time = sum(m["on_time"] for m in month_rows)
    by_severity = {r["severity"]: r["n"] for r in open_alerts if r["severity"] is not None}
    labels = dict(AlertKind.choices)
    median = acknowledged["median"]
    oldest, oldest_out = reminders["oldest"], outbox["oldest"]
    figures = {
        "clinic": {"id": clinic["id"], "name": clinic["name"], "timezone": zone},
        "today": today.isoformat(),
        "period": {"from": start.isoformat(), "to": end.isoformat()},
        "work": {
            "due_this_week": sum(d["doses"] for d in days if d["date"] <= end_of_week.isoformat()),
            "due_next_8_weeks": sum(d["doses"] for d in days),
            "days": days,
            "overdue": sum(overdue.values()),
            "overdue_by_days": [
                {"days": key, "from": low, "to": high, "doses": overdue[f"b{i}"]}
                for i, (key, low, high) in enumerate(bands)
            ],
            "rechecks_due": rechecks["due"],
            "rechecks_overdue": rechecks["overdue"],
        },
        "adherence": {
            "grace_days": grace.days,
            "grace_days_neurological": grace.neuro_days,
            "due": due,
            "on_time": on_time,
            "on_time_share": share(on_time, due),
            "months": month_rows,
            "not_given_by_reason": [{"reason": r["reason"] or "", "doses": r["doses"]} for r in reasons],
        },
        "outcomes": {
            "open_alerts": sum(by_severity.values()),
            "open_by_severity": [{"severity": s, "alerts": by_severity.get(s, 0)} for s in reversed(Severity.values)],
            "open_by_kind": [
                {"kind": r["kind"], "label": labels.get(r["kind"], r["kind"]), "alerts": r["n"]}
                for r in open_alerts
                if r["kind"] is not None
            ],
            "acknowledged_in_period": acknowledged["n"],
            "median_hours_to_acknowledge": round(median / 3600, 1) if median is not None else None,
            "not_normalizing_patients": not_normalizing["patients"],
            "not_normalizing_by_kind": [
                {"kind": k, "label": labels[k], "patients": not_normalizing[f"k{i}"]} for i, k in enumerate(kinds)
            ],
            "time_to_normalization": normalization,
        },
        "delivery": {
            "reminders_sent": reminders["sent"],
            "reminders_failed": reminders["failed"],
            "opted_out_patients": opted_out,
            "oldest_undelivered_due_at": oldest.isoformat() if oldest else None,
            "oldest_undelivered_age_hours": round((now - oldest).total_seconds() / 3600, 1) if oldest else None,
            "outbox": {
                "pending": outbox["pending"],
                "due_now": outbox["due_now"],
                "oldest_due_at": oldest_out.isoformat() if oldest_out else None,
                "oldest_due_age_seconds": int((now - oldest_out).total_seconds()) if oldest_out else 0,
                "sending": outbox["sending"],
                "sending_lease_expired": outbox["lease_expired"],
                "failed_last_24h_by_channel": by_channel["failed"],
                "sent_last_24h_by_channel": by_channel["sent"],
            },
        },
    }
    return figures, ran


def name_staff(patient_id: int, staff: dict[str, Any]) -> None:
    """The measured patient's rows name their staff as a clinic's would (the bulk-built bench rows name nobody): the
    clinician started the regimens and entered the results, the nurse gave the doses and recorded the facts; the
    page then reads those users as it does for a real patient."""
    from patients.models import LabResult, PatientFact
    from regimens.models import DoseStatus, Regimen, ScheduledDose

    Regimen.objects.filter(patient_id=patient_id).update(created_by=staff["clinician"])
    LabResult.objects.filter(patient_id=patient_id).update(entered_by=staff["clinician"])
    ScheduledDose.objects.filter(patient_id=patient_id, status=DoseStatus.GIVEN).update(administered_by=staff["nurse"])
    PatientFact.objects.filter(patient_id=patient_id).update(recorded_by=staff["nurse"])


def read_rows(patients: int) -> list[Row]:
    """The worklist (clinic-day and overdue), the patient page and the dashboard, at AT, after the statistics and
    visibility map are brought up to date (VACUUM ANALYZE, as autovacuum would have after the sweeps' writes)."""
    import time_machine
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    with connection.cursor() as cursor, benchdb.timed() as settling:
        cursor.execute("VACUUM ANALYZE")
    print(f"  VACUUM ANALYZE in {settling.seconds:.0f} s", file=sys.stderr)

    from bench.bare_urls import BARE_API_READ, BARE_PAGE_HTML, BARE_PAGE_READ
    from bench.bare_views import BARE_PAGE_ROWS
    from bench.bench_sweep import AT
    from patients.models import Clinic, Patient

    clinic = Clinic.objects.get(name="Bench clinic")
    staff = ensure_staff(clinic)
    api = token_client(staff["nurse"], AT)
    admin_api = token_client(staff["admin"], AT)
    browser = Client()
    today = AT.date()
    patient_id, patient_doses = median_patient(clinic)
    name_staff(patient_id, staff)

    def ok(response: Any) -> Any:
        assert response.status_code == 200, (response.status_code, response.content[:300])
        return response

    def dashboard_bare() -> tuple[Callable[[], str], int]:
        """bare_dashboard and its statement count, after checking that its figures are the API's (both at AT, the
        clock stopped)."""
        with time_machine.travel(AT, tick=False):
            figures = ok(admin_api.get(f"/api/dashboard/?clinic={clinic.pk}")).json()
            mine, statements = bare_dashboard(clinic.pk, AT)
        assert json.loads(encode(mine)) == figures, "bare_dashboard's figures differ from the API's"

        def work() -> str:
            return encode(bare_dashboard(clinic.pk, timezone.now())[0])

        return work, statements

    def api_bare(key: str) -> Callable[[], Any]:
        return lambda: ok(api.get(BARE_API_READ.format(key=key)))

    rows = []
    with time_machine.travel(AT, tick=True):
        browser.force_login(staff["clinician"])  # the session starts at AT
        worklists = (
            ("worklist-day", "one clinic-day", f"due_from={today}&due_to={today}", "doses that day",
             "d.clinic_id = %s AND d.due_date BETWEEN %s AND %s", [clinic.pk, today, today]),
            ("worklist-overdue", "overdue (`?overdue=true`)", "overdue=true", "overdue doses",
             "d.clinic_id = %s AND d.status = 'planned' AND d.due_date < %s", [clinic.pk, today]),
        )  # fmt: skip
        for key, what, query, counted, where, params in worklists:
            url = f"/api/doses/?clinic={clinic.pk}&{query}"
            total = ok(api.get(url)).json()["count"]
            rows.append(
                request_row(
                    key,
                    f"worklist `/api/doses/` {what}, first page ({total:,} {counted})",
                    lambda url=url: ok(api.get(url)),
                    bare_page(where, params),
                    2,
                    api_bare(key),
                    20,
                )
            )

        def patient_page() -> Any:
            return ok(browser.get(f"/patients/{patient_id}/"))

        # The floor of the page as long as it is made with Django templates: their rendering alone, against the part
        # of the bare view that is not the page's work too, the JSON encoding (docs/scaling.md).
        rendering = templates_alone(patient_page, 10)
        BARE_PAGE_ROWS["patient-page"] = lambda: patient_rows(patient_id)
        same_rows = patient_rows(patient_id)
        encoding = median_time(lambda: encode(same_rows), 10 * INTERLEAVED_BLOCKS)
        rows.append(
            request_row(
                "patient-page",
                f"patient page `/patients/{{id}}/` (HTML; a patient with {patient_doses} doses; its Django "
                f"templates alone, rendered again from the contexts the view built: {rendering * 1000:.1f} ms; the "
                f"bare view's JSON encoding alone: {encoding * 1000:.2f} ms)",
                patient_page,
                bare_patient(patient_id),
                len(PATIENT_TABLES) + 2,
                lambda: ok(browser.get(BARE_PAGE_READ.format(key="patient-page"))),
                10,
                served_html=lambda: ok(browser.get(BARE_PAGE_HTML.format(key="patient-page"))),
            )
        )
        rows.append(
            request_row(
                "dashboard",
                f"dashboard `/api/dashboard/` ({patients:,} patients in the clinic)",
                lambda: ok(admin_api.get(f"/api/dashboard/?clinic={clinic.pk}")),
                *dashboard_bare(),
                lambda: ok(admin_api.get(BARE_API_READ.format(key="dashboard"))),
                5,
            )
        )
    # The overdue worklist while the clinic's patients straddle midnight: 90 minutes after AT it is already the next
    # day in Auckland (UTC+13 in January) and still AT's day in London, Berlin and New York, so the doses due on
    # AT's day are overdue for some patients only. The bare SQL knows which zones are past (worked out here, not
    # timed) and reads those patients of the clinic by its index for the doses of that day.
    straddling = AT + timedelta(minutes=90)
    local = {
        zone: straddling.astimezone(ZoneInfo(zone)).date()
        for zone in Patient.objects.filter(clinic=clinic).values_list("timezone", flat=True).distinct()
    }
    first = min(local.values())
    past = sorted(zone for zone, day in local.items() if day > first)
    where = (
        "d.clinic_id = %s AND d.status = 'planned' AND (d.due_date < %s OR (d.due_date = %s AND d.patient_id IN "
        "(SELECT p.id FROM patients_patient p WHERE p.clinic_id = %s AND p.timezone = ANY(%s))))"
    )
    bare = bare_page(where, [clinic.pk, first, first, clinic.pk, past])
    url = f"/api/doses/?clinic={clinic.pk}&overdue=true"
    with time_machine.travel(straddling, tick=True):
        total = ok(api.get(url)).json()["count"]
        assert total == json.loads(bare())["count"], "the bare overdue count differs from the API's"
        rows.append(
            request_row(
                "worklist-overdue-midnight",
                f"worklist `/api/doses/` overdue (`?overdue=true`) while the clinic's patients straddle midnight "
                f"(past it in {', '.join(past)}), first page ({total:,} overdue doses)",
                lambda: ok(api.get(url)),
                bare,
                2,
                api_bare("worklist-overdue-midnight"),
                20,
            )
        )
    return sorted(rows, key=lambda row: KEYS.index(row.key))


# The two lab POST rows: a follow-up hemoglobin that changes none of the plan's inputs (the common case: it is
# interpreted, may complete a recheck and open an alert, and re-plans nothing), and a late baseline platelet count
# below the range (RULES §2 L-4: it changes the lab flags, so the regimen is re-planned with weekly counts).
@contextmanager
def bench_broker() -> Iterator[str]:
    """The Celery app publishes to the bench's own Redis database (BENCH_BROKER_URL), emptied before and after, or to
    an in-memory broker when no Redis answers there; what it used, for the row."""
    from kombu import pools

    from tracker.celery import app

    def point(url: str) -> None:
        pools.reset()
        app.conf.broker_url = url
        app._pool = None
        app.amqp._producer_pool = None

    url = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
    client = None
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.flushdb()
        used = "Redis"
    except Exception:
        client, url, used = None, "memory://", "an in-memory broker: no Redis at BENCH_BROKER_URL"
    saved = app.conf.broker_url
    point(url)
    try:
        yield used
    finally:
        point(saved)
        if client is not None:
            client.flushdb()
            client.close()


def lab_post_rows(posts: int, keys: Sequence[str] = WRITE_KEYS) -> list[Row]:
    """The write rows asked for: the lab POSTs and the dose POST."""
    return [dose_post_row(posts) if key == "dose-post" else lab_post_row(posts, key) for key in keys]


def dose_post_row(posts: int) -> Row:
    """`posts` doses recorded as given over HTTP (`POST /api/doses/{id}/administer/`, each the next dose of another
    patient's active regimen, due AT's day and given an hour before AT, its regimen re-planned by the engine first):
    the whole request (token, the dose's and regimen's locks, the order and safety checks, the re-plan from the date
    given when the plan could change (regimens.services.doses.given_as_planned: not for a dose given on its day while
    a later dose of its phase is planned; the row counts the re-plans made), and the "evaluate" marker and task),
    against a bare DRF update of the same row (bench/bare_views.py BareDoseAdminister: the same body, client, token and
    middleware) and one raw UPDATE. A dose with a safety warning to acknowledge (the API answers 409) is left for the
    next; the rules then run as a worker runs them (monitoring.queue.run), timed apart and reported in the row."""
    from unittest import mock

    import time_machine
    from django.db import connection
    from django.test import override_settings

    from bench.bare_urls import BARE_DOSES
    from bench.bench_sweep import AT
    from monitoring import queue
    from patients.models import Clinic
    from regimens.models import DoseStatus, RegimenStatus, Replan, ScheduledDose
    from regimens.services import doses as dose_services
    from regimens.services.planning import replan_regimens

    clinic = Clinic.objects.get(name="Bench clinic")
    nurse = ensure_staff(clinic)["nurse"]
    api = token_client(nurse, AT)
    given_at = AT - timedelta(hours=1)

    def next_doses(**only: Any) -> list[tuple[int, int, int]]:
        """(patient, dose, regimen) of the next dose (the lowest planned slot) of each active regimen, due AT's day."""
        rows = (
            ScheduledDose.objects.filter(
                clinic=clinic,
                status=DoseStatus.PLANNED,
                regimen__status=RegimenStatus.ACTIVE,
                self_administered=False,
                **only,
            )
            .order_by("regimen_id", "phase_index", "sequence")
            .distinct("regimen_id")
            .values_list("id", "patient_id", "regimen_id", "due_date")
        )
        return sorted((patient, dose, regimen) for dose, patient, regimen, due in rows if due == AT.date())

    # Doses given on the day they are due (the worklist's common case), one per patient, spread over the clinic. Their
    # regimens are re-planned first, untimed: the bench's generated doses are not exactly what the engine plans, and a
    # dose given on its day must find the plan the engine made (on which it changes no later dose), as in a clinic.
    spread = next_doses()
    step = max(1, len(spread) // (posts * 3 + 1))
    regimen_ids = [regimen for _, _, regimen in spread[step // 2 :: step]]
    with time_machine.travel(AT, tick=False):
        replan_regimens(regimen_ids, cause="bench: the engine's plan")
    candidates = [(patient, dose) for patient, dose, _ in next_doses(regimen_id__in=regimen_ids)]
    # A re-plan that moves or cancels a later dose leaves an audit row (Replan); one that changes nothing writes none.
    before = {p: Replan.objects.filter(patient_id=p).count() for p, _ in candidates}
    body = {"administered_at": given_at.isoformat()}
    times, counts, done, warned = [], [], [], 0
    worker_times, worker_counts, bare_times, bare_counts = [], [], [], []
    benchdb.reset_peak_rss()
    # Interleaved, dose by dose, as the lab rows: Cobalt's POST, the worker's evaluation it queued, then the bare
    # update of the same row with the same values (so it changes nothing), all through bench.bare_urls.
    with (
        bench_broker() as broker,
        time_machine.travel(AT, tick=True),
        override_settings(ROOT_URLCONF="bench.bare_urls"),
        mock.patch.object(dose_services, "replan", wraps=dose_services.replan) as replans,
    ):
        for patient_id, dose_id in candidates:
            if len(done) == posts:
                break
            with benchdb.counting_queries(detailed=False) as log, benchdb.timed() as t:
                response = api.post(f"/api/doses/{dose_id}/administer/", body, format="json")
            if response.status_code == 409 and "warnings" in response.json():
                warned += 1
                continue
            assert response.status_code == 200, response.content[:300]
            times.append(t.seconds)
            counts.append(log.count)
            done.append((patient_id, dose_id))
            with benchdb.counting_queries(detailed=False) as log, benchdb.timed() as t:
                assert queue.run(patient_id), f"no evaluation was queued for patient {patient_id}"
            worker_times.append(t.seconds)
            worker_counts.append(log.count)
            with benchdb.counting_queries(detailed=False) as log, benchdb.timed() as t:
                response = api.post(BARE_DOSES.format(pk=dose_id), body, format="json")
            assert response.status_code == 200, response.content[:300]
            bare_times.append(t.seconds)
            bare_counts.append(log.count)
    rss = benchdb.peak_rss()
    replanned = replans.call_count
    assert len(done) == posts, f"only {len(done)} doses could be given ({warned} had warnings)"
    moved = sum(Replan.objects.filter(patient_id=p).count() > before[p] for p, _ in done)
    raw_times = []
    with connection.cursor() as cursor:
        for _, dose_id in done:
            with benchdb.timed() as t:
                cursor.execute(
                    "UPDATE regimens_scheduleddose SET status = 'given', administered_at = %s, administered_by_id = %s "
                    "WHERE id = %s",
                    [given_at, nurse.pk, dose_id],
                )
            raw_times.append(t.seconds)
    cobalt, bare, raw = statistics.median(times), statistics.median(bare_times), statistics.median(raw_times)
    worker, worker_queries = statistics.median(worker_times), int(statistics.median_low(worker_counts))
    queries, bare_queries = int(statistics.median_low(counts)), int(statistics.median_low(bare_counts))
    print(
        f"  dose-post: {cobalt * 1000:.1f} ms, bare DRF update {bare * 1000:.1f} ms, UPDATE {raw * 1000:.2f} ms, "
        f"{replanned} of {len(times)} re-planned, {moved} moved a later dose, {warned} skipped (warnings); the worker "
        f"{worker * 1000:.1f} ms",
        file=sys.stderr,
    )
    return Row(
        "dose-post",
        f"dose given POST `/api/doses/{{id}}/administer/`, the next dose of an active regimen given on its day, "
        f"against a bare DRF update view of the same row (median of {len(times)}, each to another patient, "
        f"interleaved with the bare view; {replanned} re-planned from the date given, {moved} moving a later dose; "
        f"{1 / cobalt:.1f} req/s vs "
        f"{1 / bare:.1f} req/s; one raw UPDATE: {raw * 1000:.2f} ms). The request queues the rules ({broker}); a "
        f"worker then runs them: {worker * 1000:.1f} ms and {worker_queries} queries each (median)",
        cobalt,
        bare,
        f"{queries} vs {bare_queries}",
        rss,
    )


def lab_post_row(posts: int, key: str = "lab-post") -> Row:
    """`posts` lab results POSTed to as many patients (the whole request: token, validation, the service and the
    monitoring evaluation it triggers, with the re-plan when it needs one), against a bare DRF create view over
    the same model (bench/bare_views.py: the same body, client, token and middleware; no conversion,
    interpretation, re-plan or evaluation), and one bare INSERT of the same row each.

    `lab-post`: a hemoglobin of 112 g/L two hours before AT, after T0 (no plan input changes: no re-plan);
    `lab-post-replan`: platelets of 120 x10^9/L collected on the morning of T0, before the first dose (a baseline
    below the range: the lab flags change and the regimen is re-planned).

    As in production (COBALT_EVALUATE_IN_WORKER), the request commits the result with its "evaluate" marker and
    publishes the task to Redis (BENCH_BROKER_URL, default redis://127.0.0.1:6379/14, emptied afterwards; an
    in-memory broker when no Redis answers); the rules then run as a worker runs them (monitoring.queue.run, here in
    this process), timed apart and reported in the row: the work moved off the request, not left out."""
    import time_machine
    from django.conf import settings
    from django.test import override_settings

    from bench.bare_urls import BARE_LAB_RESULTS
    from bench.bench_sweep import AT
    from monitoring import queue
    from patients.models import Clinic, LabResult, Patient
    from regimens.models import Regimen

    if not settings.COBALT.get("EVALUATE_IN_WORKER"):
        raise SystemExit("the lab-post rows measure COBALT_EVALUATE_IN_WORKER=True (the default): unset it")
    replan = key == "lab-post-replan"
    clinic = Clinic.objects.get(name="Bench clinic")
    api = token_client(ensure_staff(clinic)["nurse"], AT)
    analyte, value, unit = ("platelets", "120", "10^9/L") if replan else ("hemoglobin", "112", "g/L")
    # Patients with an active regimen, spread over the clinic (the two rows on different ones); on a reused
    # database (--reuse), none a previous run posted this result to (a repeat would be answered as the stored
    # result, and a second result takes another path).
    posted = LabResult.objects.filter(analyte=analyte, source="entered", entered_by__isnull=False).values("patient_id")
    ids = list(Patient.objects.filter(clinic=clinic).exclude(pk__in=posted).order_by("id").values_list("id", flat=True))
    step = max(1, len(ids) // (posts + 1))
    chosen = ids[step // 2 if replan else 0 :: step][1 : posts + 1]
    starts = dict(Regimen.objects.filter(patient_id__in=chosen).values_list("patient_id", "start_date"))

    def collected(patient_id: int) -> datetime:
        if replan:  # 07:00 UTC on T0 (the bench's first doses are given at 09:00 UTC): the baseline
            day = starts[patient_id]
            return datetime(day.year, day.month, day.day, 7, tzinfo=UTC)
        return AT - timedelta(hours=2)

    def body(patient_id: int, later: timedelta) -> dict[str, Any]:
        at = collected(patient_id) + later
        return {"patient": patient_id, "analyte": analyte, "value": value, "unit": unit, "collected_at": at.isoformat()}

    def post(url: str, patient_id: int, later: timedelta) -> tuple[float, int, int]:
        """One POST: its time, the row created and its count of queries."""
        with benchdb.counting_queries(detailed=False) as log, benchdb.timed() as t:
            response = api.post(url, body(patient_id, later), format="json")
        assert response.status_code == 201, response.content[:300]
        return t.seconds, int(response.json()["id"]), log.count

    # Each re-plan writes a history row of the regimen (a result that re-plans nothing writes none).
    before = Regimen.history.filter(patient_id__in=chosen).count()
    benchdb.reset_peak_rss()
    times, created, counts = [], [], []
    worker_times, worker_counts = [], []
    drf_times, drf_created, drf_counts = [], [], []
    # Interleaved, patient by patient (a change of the machine's load weighs on both sides): Cobalt's POST, the
    # worker's evaluation it queued, then the bare DRF create of the same body a minute later (another row, deleted
    # below). Both through bench.bare_urls (Cobalt's routes and the bare view's), so no URL configuration changes
    # between them.
    with (
        bench_broker() as broker,
        time_machine.travel(AT, tick=True),
        override_settings(ROOT_URLCONF="bench.bare_urls"),
    ):
        for patient_id in chosen:
            seconds, row, count = post("/api/lab-results/", patient_id, timedelta())
            times.append(seconds)
            created.append(row)
            counts.append(count)
            with benchdb.counting_queries(detailed=False) as log, benchdb.timed() as t:
                assert queue.run(patient_id), f"no evaluation was queued for patient {patient_id}"
            worker_times.append(t.seconds)
            worker_counts.append(log.count)
            seconds, row, count = post(BARE_LAB_RESULTS, patient_id, timedelta(minutes=1))
            drf_times.append(seconds)
            drf_created.append(row)
            drf_counts.append(count)
    rss = benchdb.peak_rss()
    replanned = Regimen.history.filter(patient_id__in=chosen).count() - before
    queries, drf_queries = int(statistics.median_low(counts)), int(statistics.median_low(drf_counts))
    LabResult.objects.filter(id__in=drf_created).delete()
    # Raw: the rows Cobalt stored, one INSERT each (autocommit, like the request), then deleted again.
    copies = list(LabResult.objects.filter(id__in=created).values())
    raw_times, raw_ids = [], []
    for row in copies:
        row.pop("id")
        row["collected_at"] = row["collected_at"] + timedelta(minutes=2)
        with benchdb.timed() as t:
            bare_insert(LabResult, [row])
        raw_times.append(t.seconds)
        raw_ids.append((row["patient_id"], row["collected_at"]))
    for patient_id, at in raw_ids:
        LabResult.objects.filter(patient_id=patient_id, analyte=analyte, collected_at=at).delete()
    cobalt, bare, raw = statistics.median(times), statistics.median(drf_times), statistics.median(raw_times)
    worker, worker_queries = statistics.median(worker_times), int(statistics.median_low(worker_counts))
    print(
        f"  {key}: {cobalt * 1000:.1f} ms, bare DRF create {bare * 1000:.1f} ms, INSERT {raw * 1000:.2f} ms, "
        f"{replanned} of {len(times)} re-planned; the worker's evaluation {worker * 1000:.1f} ms ({broker})",
        file=sys.stderr,
    )
    what = (
        "a baseline platelet count below the range (re-plans: L-4)"
        if replan
        else "a follow-up hemoglobin that changes no plan input"
    )
    return Row(
        key,
        f"lab result POST `/api/lab-results/`, {what}, against a bare DRF create view (median of {len(times)}, "
        f"each to another patient, interleaved with the bare view; {1 / cobalt:.1f} req/s vs {1 / bare:.1f} req/s; "
        f"one raw INSERT: {raw * 1000:.2f} ms). The request stores the result and queues its rules ({broker}); a "
        f"worker then runs them: {worker * 1000:.1f} ms and {worker_queries} queries each (median), {replanned} "
        "re-planned",
        cobalt,
        bare,
        f"{queries} vs {drf_queries}",
        rss,
    )


def engine_row(repeats: int = 200) -> Row:
    """The schedule engine alone (regimens/schedule.py, no database): each of the 10 built-in protocols planned as a
    regimen starts (lifelong phases a year ahead, the clinic open Monday to Friday; a phase behind a gate or after an
    open-ended one is planned once a clinician decides), all ten once per repeat, median of `repeats`. Bare: the
    same number of dose dates per phase from dateutil's rrule with the phase's spacing, from the phase's first date
    (no calendar, records, rechecks or review prompts)."""
    from dateutil import rrule

    from bench.bench_schedule import protocol_catalogue
    from regimens import schedule

    start = date(2027, 1, 4)
    inputs = [schedule.PlanInput(protocol=c.spec, start_date=start, today=start) for c in protocol_catalogue()]
    plans = [schedule.plan(inp) for inp in inputs]
    weekdays = (rrule.MO, rrule.TU, rrule.WE, rrule.TH, rrule.FR, rrule.SA, rrule.SU)

    def rule(phase: schedule.PhaseSpec, first: date, count: int) -> rrule.rrule:
        n = phase.spacing_value or 1
        at = datetime(first.year, first.month, first.day, tzinfo=UTC)
        if phase.spacing == schedule.TIMES_PER_WEEK:
            return rrule.rrule(rrule.WEEKLY, dtstart=at, count=count, byweekday=weekdays[: min(n, 7)])
        freq, interval = {
            schedule.DAILY: (rrule.DAILY, 1),
            schedule.ALTERNATE_DAYS: (rrule.DAILY, 2),
            schedule.EVERY_N_DAYS: (rrule.DAILY, n),
            schedule.EVERY_N_WEEKS: (rrule.WEEKLY, n),
            schedule.MONTHLY: (rrule.MONTHLY, n),
        }[phase.spacing]
        return rrule.rrule(freq, dtstart=at, count=count, interval=interval)

    # Per protocol, per phase: (phase spec, its first planned date, how many doses the engine planned).
    shapes = []
    for inp, plan in zip(inputs, plans, strict=True):
        for index, phase in enumerate(inp.protocol.phases):
            dates = [d.due_date for d in plan.doses if d.phase_index == index]
            if dates:
                shapes.append((phase, dates[0], len(dates)))
    doses = sum(len(p.doses) for p in plans)

    def cobalt() -> int:
        return sum(len(schedule.plan(inp).doses) for inp in inputs)

    def bare() -> int:
        return sum(len(list(rule(phase, first, count))) for phase, first, count in shapes)

    assert bare() == doses, "the rrule yardstick must make as many dates as the engine plans"
    times: dict[str, list[float]] = {"cobalt": [], "bare": []}
    for _ in range(repeats):  # interleaved
        for side, work in (("cobalt", cobalt), ("bare", bare)):
            with benchdb.timed() as t:
                work()
            times[side].append(t.seconds)
    engine, raw = statistics.median(times["cobalt"]), statistics.median(times["bare"])
    print(f"  engine: {engine * 1000:.2f} ms, rrule {raw * 1000:.2f} ms ({doses} doses)", file=sys.stderr)
    return Row(
        "engine",
        f"schedule engine, the 10 built-in protocols planned as a regimen starts ({doses} doses, lifelong phases a "
        f"year ahead), against dateutil's rrule making the same dates per phase without a calendar (median of "
        f"{repeats}, interleaved)",
        engine,
        raw,
        "0 vs 0",
        benchdb.peak_rss(),
    )


# --- The report ------------------------------------------------------------------------------------


def seconds(value: float) -> str:
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def growth(row: Row, other: dict[str, Any] | None) -> str:
    if not other or row.key not in other["rows"]:
        return "-"
    then = other["rows"][row.key]["cobalt"]
    small, large = (then, row.cobalt) if other["patients"] < other["this"] else (row.cobalt, then)
    return f"{large / small:.1f}x" if small else "-"


def kept(patients: int) -> Path:
    return ROOT / "bench" / f"results-{patients}.json"


def other_size(patients: int) -> dict[str, Any] | None:
    """The figures of the other size kept beside RESULTS.md (the nearest one), for the growth column."""
    found = []
    for path in (ROOT / "bench").glob("results-*.json"):
        size = int(re.sub(r"\D", "", path.stem) or 0)
        if size and size != patients:
            found.append((abs(size - patients), size, path))
    if not found:
        return None
    _, size, path = min(found)
    data = json.loads(path.read_text())
    return {"patients": size, "this": patients, "rows": {r["key"]: r for r in data["rows"]}}


def now() -> str:
    return f"{datetime.now(UTC):%Y-%m-%d %H:%M}"


def load_kept(patients: int) -> tuple[list[Row], dict[str, Any]]:
    """The rows kept in bench/results-<patients>.json (each with its run's date) and the file's other fields."""
    data = json.loads(kept(patients).read_text())
    rows = [Row(**{"measured": data.get("written", ""), **r}) for r in data["rows"]]
    return rows, data


def merge(fresh: list[Row], patients: int) -> list[Row]:
    """`fresh` rows in place of the same keys among the kept rows of this size (--only); the others stay."""
    if not kept(patients).exists():
        return fresh
    by_key = {r.key: r for r in fresh}
    rows, _ = load_kept(patients)
    merged = [by_key.pop(r.key, r) for r in rows] + list(by_key.values())
    return sorted(merged, key=lambda row: KEYS.index(row.key) if row.key in KEYS else len(KEYS))


def write(rows: list[Row], patients: int, replan_patients: int, *, save: bool = True) -> None:
    for row in rows:
        row.measured = row.measured or now()
    if save:
        kept(patients).write_text(
            json.dumps(
                {
                    "patients": patients,
                    "replan_patients": replan_patients,
                    "written": max(r.measured for r in rows),
                    "rows": [asdict(r) for r in rows],
                },
                indent=1,
            )
            + "\n"
        )
    other = other_size(patients)
    growth_head = (
        f"growth ({max(patients, other['patients']):,} / {min(patients, other['patients']):,} patients)"
        if other
        else "growth"
    )
    table = [
        TABLE_BEGIN,
        (
            f"Written by `bench/results.py` on {now()} UTC (load average "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} cores; "
            if save
            else f"Rewritten by `bench/results.py --render` on {now()} UTC from `bench/{kept(patients).name}`, "
            f"measuring nothing ({os.cpu_count()} cores; "
        )
        + f"the machine is shared, so read ratios, not absolute times). One clinic of {patients:,} patients; the "
        f"calendar change at one clinic of {replan_patients:,}. Bare counterparts: see the docstring of "
        "`bench/results.py`.",
        "",
        f"| operation | Cobalt | bare | ratio | queries (Cobalt vs bare) | peak RSS | {growth_head} |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        table.append(
            f"| {r.operation} | {seconds(r.cobalt)} | {seconds(r.bare) if r.bare else '-'} | {r.ratio()} | "
            f"{r.queries} | {benchdb.mib(float(r.rss))} | {growth(r, other)} |"
        )
    runs = sorted({r.measured for r in rows})
    if len(runs) > 1:
        table += ["", "Rows measured at different times (`--only` re-measures some rows and keeps the others):"]
        table += [f"- {run} UTC: " + ", ".join(r.key for r in rows if r.measured == run) for run in runs]
    if not other:
        table += ["", "Growth: run the other size too (`make bench-quick` and `make bench`); each keeps its JSON."]
    table.append(TABLE_END)
    replace_section(TABLE_BEGIN, TABLE_END, "\n".join(table))
    print("\n".join(table))


def replace_section(begin: str, end: str, text: str) -> None:
    """Put `text` (which starts with `begin` and ends with `end`) in RESULTS.md in place of the old one; the
    other sections (the load test's) stay."""
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        tail = rest.split(end, 1)[1]
        RESULTS.write_text(head + text + tail)
    else:
        heading = "# Benchmark results\n"
        body = current[len(heading) :] if current.startswith(heading) else current
        body = "" if "<!--" not in body and "| operation |" in body else body  # the old table, before sections
        RESULTS.write_text(heading + "\n" + text + "\n" + body.strip("\n") + ("\n" if body.strip() else ""))


def main(argv: Sequence[str] | None = None) -> int:
    parser = benchdb.parser(__doc__)
    benchdb.add_size(parser, "--patients", default=10_000, what="patients for the sweeps and the pages")
    benchdb.add_size(parser, "--replan-patients", default=2_000, what="patients of the clinic whose calendar changes")
    benchdb.add_size(parser, "--lab-posts", default=30, what="lab results POSTed")
    benchdb.add_seed(parser, default=SEED)
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated rows to measure again ({', '.join(KEYS)}); the other rows are kept from "
        "bench/results-<patients>.json (the sweeps still all run when a sweep or read row is asked for: each "
        "prepares the next)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --only of read rows and lab-post rows: measure them on the bench database a previous run left "
        "(no build, no sweeps), for quick iterations",
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="measure nothing: write RESULTS.md's table from bench/results-<patients>.json (and the other size's)",
    )
    args = parser.parse_args(argv)
    if args.render:
        rows, data = load_kept(args.patients)
        write(rows, args.patients, int(data.get("replan_patients", args.replan_patients)), save=False)
        return 0
    only = {key for key in args.only.split(",") if key}
    if only - set(KEYS):
        parser.error(f"--only: unknown rows {', '.join(sorted(only - set(KEYS)))}")
    if args.reuse and (not only or only - {*READ_KEYS, *WRITE_KEYS}):
        parser.error("--reuse: give --only with read rows and lab-post rows only")
    # A calendar change's row kept from an earlier run (`--only` without it) keeps that run's clinic size.
    replan = (
        int(load_kept(args.patients)[1].get("replan_patients", args.replan_patients))
        if only and "calendar-change" not in only and kept(args.patients).exists()
        else args.replan_patients
    )
    benchdb.setup_sibling_database("bench_results")
    if args.reuse:
        reused = read_rows(args.patients) if only & set(READ_KEYS) else []
        reused += lab_post_rows(args.lab_posts, [k for k in WRITE_KEYS if k in only])
        write(merge([r for r in reused if r.key in only], args.patients), args.patients, replan)
        return 0
    from bench.bench_replan import measure
    from bench.bench_sweep import AT

    rows: list[Row] = []
    if not only or "engine" in only:  # no database
        print("schedule engine", file=sys.stderr)
        rows.append(engine_row())
    if only and only <= {"engine"}:
        write(merge(rows, args.patients), args.patients, replan)
        return 0
    # Then the calendar change: it builds its own smaller clinic, which the large one then replaces.
    print("calendar change", file=sys.stderr)
    for r in measure(args.replan_patients, args.seed, 0) if not only or "calendar-change" in only else []:
        if r.get("bare") is None:
            continue  # the preparation (every regimen re-planned once) has no bare counterpart
        rows.append(
            Row(
                "calendar-change",
                str(r["operation"]),
                float(r["cobalt"]),
                float(r["bare"]),  # type: ignore[arg-type]
                f"{r['queries']:,} vs {r.get('bare_queries')}",
                int(r["rss"]),
            )  # type: ignore[call-overload]
        )
    if only and only <= {"calendar-change"}:
        write(merge(rows, args.patients), args.patients, replan)
        return 0
    print(f"building {args.patients:,} patients", file=sys.stderr)
    build(args.patients, args.seed)
    if only and only <= {"calendar-change", *WRITE_KEYS}:
        rows += lab_post_rows(args.lab_posts, [k for k in WRITE_KEYS if k in only])
        write(merge(rows, args.patients), args.patients, replan)
        return 0
    n = f"{args.patients:,} patients"
    later = AT + timedelta(days=1)
    rows.append(
        sweep_row(
            "monitoring-first",
            f"monitoring sweep, first run, {n}",
            "monitoring",
            AT,
            lambda c: f"opens {sum(v for k, v in c.items() if k.endswith('_raised')):,} alerts",
        )
    )
    rows.append(
        sweep_row(
            "monitoring-steady",
            f"monitoring sweep, steady state, {n}",
            "monitoring",
            AT,
            lambda c: f"opens {sum(v for k, v in c.items() if k.endswith('_raised')):,} alerts",
        )
    )
    rows.append(
        sweep_row(
            "horizons",
            f"horizons sweep, {n}",
            "horizons",
            AT,
            lambda c: ", ".join(f"{k} {v:,}" for k, v in c.items()) or "nothing due",
        )
    )
    rows.append(
        sweep_row(
            "reminders-first",
            f"reminders sweep, first run, {n}",
            "reminders",
            AT,
            lambda c: f"{c.get('reminders_written', 0):,} reminders",
        )
    )
    rows.append(
        sweep_row(
            "reminders-steady",
            f"reminders sweep, steady state, {n}",
            "reminders",
            AT,
            lambda c: f"{c.get('reminders_written', 0):,} reminders",
        )
    )
    rows.append(
        sweep_row(
            "staff",
            f"staff sweep (digests, escalations) a day later, {n}",
            "staff",
            later,
            lambda c: ", ".join(f"{k} {v:,}" for k, v in c.items()),
        )
    )
    with no_broker() as sent:
        rows.append(
            sweep_row(
                "outbox",
                f"outbox sweep a day later, {n} (tasks not sent: broker excluded)",
                "outbox",
                later,
                lambda c: f"{c.get('due', 0):,} due",
            )
        )
    print(f"  outbox: {len(sent):,} tasks not sent", file=sys.stderr)
    if not only or only & set(READ_KEYS):
        rows.extend(read_rows(args.patients))
    rows += lab_post_rows(args.lab_posts, [k for k in WRITE_KEYS if not only or k in only])
    if only:
        # The sweeps all ran (each prepares the next); only the rows asked for replace theirs in the kept JSON.
        write(merge([r for r in rows if r.key in only], args.patients), args.patients, replan)
    else:
        write(rows, args.patients, replan)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
