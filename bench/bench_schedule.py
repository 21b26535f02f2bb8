"""Benchmark of the schedule engine and of regimen_start on PostgreSQL.

Run from the project root:

    .venv/bin/python bench/bench_schedule.py                   # both parts, 10,000 regimens
    .venv/bin/python bench/bench_schedule.py --regimens 1000   # smaller run
    .venv/bin/python bench/bench_schedule.py --engine-only     # no database needed

Part 1 plans N regimens with the pure engine (regimens/schedule.py), no Django. Part 2 starts N
regimens through regimens.services.regimen_start on PostgreSQL and compares the time with the
bare database work: bulk-inserting copies of the same rows. See bench/README.md for how to read
the output. This is a script, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import cProfile
import io
import os
import platform
import pstats
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import benchdb  # noqa: E402  (needs ROOT on sys.path when run as a script)
from bench.benchdb import heading, kib, line, max_rss, mib, ms, percentile, progress  # noqa: E402
from regimens import schedule  # noqa: E402
from regimens.protocol_data import PROTOCOLS  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/cobalt_bench"
SEED = 20260512


# --- Part 1: the engine alone ------------------------------------------------------------------


@dataclass(frozen=True)
class Catalogued:
    spec: schedule.ProtocolSpec
    limits: dict[str, schedule.PhaseLimits]


def protocol_catalogue() -> list[Catalogued]:
    """The ten built-in protocols as engine specs, straight from protocol_data.PROTOCOLS."""
    phase_fields = {f.name for f in fields(schedule.PhaseSpec)}
    step_fields = {f.name for f in fields(schedule.RecheckStepSpec)}
    out = []
    for data in PROTOCOLS:
        phases = tuple(schedule.PhaseSpec(**{k: v for k, v in p.items() if k in phase_fields}) for p in data["phases"])
        steps = tuple(
            schedule.RecheckStepSpec(
                **{k: (tuple(v) if k == "analytes" else v) for k, v in s.items() if k in step_fields}
            )
            for s in data.get("recheck_steps", [])
        )
        limits = {
            p["key"]: schedule.PhaseLimits(
                dose_mcg=(p.get("dose_min_mcg"), p.get("dose_max_mcg")),
                spacing_value=(p.get("spacing_min"), p.get("spacing_max")),
                count=(p.get("end_min"), p.get("end_max")),
            )
            for p in data["phases"]
        }
        out.append(Catalogued(schedule.ProtocolSpec(data["code"], phases, steps), limits))
    return out


def bank_holidays(first_year: int, last_year: int) -> frozenset[date]:
    """A UK-like set of closed dates: fixed holidays, the first Monday of May, the last of August."""
    days: set[date] = set()
    for year in range(first_year, last_year + 1):
        days |= {date(year, 1, 1), date(year, 12, 25), date(year, 12, 26)}
        may = date(year, 5, 1)
        days.add(may + timedelta(days=(7 - may.weekday()) % 7))
        august = date(year, 8, 31)
        days.add(august - timedelta(days=august.weekday()))
    return frozenset(days)


HOLIDAYS = bank_holidays(2025, 2031)
CALENDARS = (
    schedule.ClinicCalendar(),  # Monday-Friday, nothing closed (the RULES default)
    schedule.ClinicCalendar(closed_dates=HOLIDAYS),
    schedule.ClinicCalendar(open_weekdays=frozenset({0, 1, 2, 3, 4, 5}), closed_dates=HOLIDAYS),
    schedule.ClinicCalendar(open_weekdays=frozenset({1, 3}), closed_dates=HOLIDAYS),  # Tuesday/Thursday
    schedule.ClinicCalendar(open_weekdays=frozenset(range(7))),
)
LABS = (
    schedule.LabContext(),  # no baseline yet
    schedule.LabContext(has_baseline=True),
    schedule.LabContext(has_baseline=True, hb_low=True, retics_low=True, cbc_abnormal=True),
    schedule.LabContext(has_baseline=True, platelets_low=True, hemolysis_abnormal=True, cbc_abnormal=True),
    schedule.LabContext(irreversible_cause=True),
    schedule.LabContext(has_baseline=True, hb_severe=True, hb_low=True, platelets_very_low=True, pregnant=True),
)
# Dates the engine finds awkward: month ends, a leap day, DST changes (Europe and the US).
AWKWARD_STARTS = (
    date(2026, 1, 31),
    date(2026, 3, 29),
    date(2026, 3, 8),
    date(2026, 10, 25),
    date(2026, 11, 1),
    date(2027, 8, 31),
    date(2028, 2, 29),
    date(2028, 1, 31),
    date(2026, 12, 24),
)


def engine_case(index: int, rng: random.Random, catalogue: Sequence[Catalogued]) -> schedule.PlanInput:
    """One varied PlanInput: protocol by round robin, random start, calendar, labs, history."""
    entry = catalogue[index % len(catalogue)]
    spec = entry.spec
    if spec.code == "hydroxo-uk-standard" and rng.random() < 0.3:
        # R-UK-3a: a clinician-chosen maintenance interval inside the 8-13 week range.
        options = {"phases": {"maintenance": {"spacing_value": rng.choice([8, 10, 13])}}}
        spec = schedule.apply_options(spec, options, entry.limits)
    if rng.random() < 0.1:
        start = rng.choice(AWKWARD_STARTS)
    else:
        start = date(2026, 1, 1) + timedelta(days=rng.randrange(3 * 365))
    elapsed = rng.choice((0, 0, 0, 3, 10, 21, 45, 120))  # days since the start: how much history
    today = start + timedelta(days=elapsed)
    calendar = rng.choice(CALENDARS)
    labs = rng.choice(LABS)

    enrolment = None
    if len(spec.phases) > 1 and rng.random() < 0.05:
        enrolment = schedule.Enrolment(len(spec.phases) - 1, start - timedelta(days=28))
    decisions: list[schedule.Decision] = []
    for phase_index, phase in enumerate(spec.phases):
        if phase.start_gate and elapsed >= 8 and rng.random() < 0.7:
            decisions.append(schedule.Decision(phase_index, "confirm_gate", start + timedelta(days=8)))
        if phase.end_condition in schedule.OPEN_ENDED and elapsed >= 21 and rng.random() < 0.5:
            decisions.append(schedule.Decision(phase_index, "end_phase", start + timedelta(days=21)))

    base = schedule.PlanInput(
        protocol=spec,
        start_date=start,
        today=today,
        calendar=calendar,
        decisions=tuple(decisions),
        enrolment=enrolment,
        labs=labs,
    )
    if elapsed == 0:
        return base
    # History: the first few doses due before today, mostly given (some a day late), one missed.
    draft = schedule.plan(base)
    past = [d for d in draft.doses if d.due_date < today][:8]
    records = []
    for position, dose in enumerate(past):
        if position == 2 and rng.random() < 0.5:
            records.append(
                schedule.DoseRecord(
                    dose.phase_index, dose.sequence, schedule.NOT_GIVEN, dose.due_date, dose.due_date, "did not attend"
                )
            )
            continue
        late = 1 if rng.random() < 0.1 and dose.due_date + timedelta(days=1) < today else 0
        records.append(
            schedule.DoseRecord(
                dose.phase_index, dose.sequence, schedule.GIVEN, dose.due_date + timedelta(days=late), dose.due_date
            )
        )
    return schedule.PlanInput(**{**base.__dict__, "records": tuple(records)})


def bench_engine(count: int, seed: int) -> None:
    heading(f"Part 1: engine alone (regimens.schedule.plan), {count:,} regimens")
    rng = random.Random(seed)
    catalogue = protocol_catalogue()
    inputs = [
        engine_case(i, rng, catalogue) for i in progress(range(count), desc="engine: building inputs", unit="reg")
    ]
    with_history = sum(1 for inp in inputs if inp.records)

    durations: list[float] = []
    doses = rechecks = 0
    with benchdb.timed() as planning:
        for inp in progress(inputs, desc="engine: planning", unit="reg"):
            t = time.perf_counter()
            result = schedule.plan(inp)
            durations.append(time.perf_counter() - t)
            doses += len(result.doses)
            rechecks += len(result.rechecks)
    total = planning.seconds

    # Memory on a second pass: tracemalloc slows Python down, so it never overlaps the timing.
    tracemalloc.start()
    kept = []
    peak_all = 0
    peak_one = 0
    for inp in progress(inputs, desc="engine: memory pass", unit="reg"):
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        kept.append(schedule.plan(inp))
        _, peak = tracemalloc.get_traced_memory()
        peak_one = max(peak_one, peak - before)
        peak_all = max(peak_all, peak)
    retained, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept

    line("protocols", f"{len(catalogue)} built-in, round robin; {len(CALENDARS)} calendars; {len(LABS)} lab contexts")
    line("inputs with history", f"{with_history:,} of {count:,} (given / not-given records)")
    line("doses / rechecks planned", f"{doses:,} / {rechecks:,} ({doses / count:.1f} / {rechecks / count:.1f} each)")
    line("total time", f"{total:.3f} s ({count / total:,.0f} regimens/s)")
    line("per regimen: mean", ms(statistics.fmean(durations)))
    line("per regimen: median", ms(statistics.median(durations)))
    line("per regimen: p95", ms(percentile(durations, 95)))
    line("per regimen: max", ms(max(durations)))
    line("peak memory, one plan", kib(peak_one))
    line("peak memory, all plans kept", f"{mib(peak_all)} ({kib(retained / count)} per plan retained)")
    by_protocol: dict[str, list[float]] = {}
    for inp, took in zip(inputs, durations, strict=True):
        by_protocol.setdefault(inp.protocol.code, []).append(took)
    print("  mean / p95 by protocol:")
    for code, values in sorted(by_protocol.items(), key=lambda kv: -statistics.fmean(kv[1])):
        print(f"    {code:<24} {ms(statistics.fmean(values)):>12} {ms(percentile(values, 95)):>12}")


# --- Part 2: the service layer on PostgreSQL ------------------------------------------------------


def reset_bench_data() -> None:
    """Empty every table holding clinics, patients, regimens and what hangs off them, and make
    sure the built-in protocols are there. Only ever run against the bench database."""
    from patients.models import Clinic, Patient
    from regimens.models import Protocol, ProtocolPhase, ProtocolRecheckStep, Regimen
    from regimens.protocol_data import load_protocols

    benchdb.truncate(Clinic, Patient.history.model, Regimen.history.model, restart_identity=True)
    load_protocols(Protocol, ProtocolPhase, ProtocolRecheckStep)


CLINICS = (
    # name, time zone, open weekdays, closed dates
    ("Bench clinic London", "Europe/London", [0, 1, 2, 3, 4], True),
    ("Bench clinic New York", "America/New_York", [0, 1, 2, 3, 4, 5], True),
    ("Bench clinic Sydney", "Australia/Sydney", [1, 3], False),
)
CAUSES = ("pernicious_anemia", "diet", "bariatric_surgery", "metformin", "ileal_resection", "unknown")


def make_patients(count: int, prefix: str) -> list[Any]:
    """`count` patients spread over the bench clinics, bulk-created (no history rows)."""
    from patients.models import Clinic, ClosedDate, Patient

    clinics = []
    for name, zone, weekdays, closes in CLINICS:
        clinic, created = Clinic.objects.get_or_create(
            name=name, defaults={"timezone": zone, "open_weekdays": weekdays}
        )
        if created and closes:
            ClosedDate.objects.bulk_create([ClosedDate(clinic=clinic, date=d) for d in sorted(HOLIDAYS)])
        clinics.append(clinic)
    rows = []
    for i in range(count):
        clinic = clinics[i % len(clinics)]
        rows.append(
            Patient(
                clinic=clinic,
                mrn=f"{prefix}{i:07d}",
                given_name="Bench",
                family_name=f"Patient {prefix}{i}",
                birth_date=date(1950, 1, 1) + timedelta(days=i % 20000),
                sex=("female", "male")[i % 2],
                email=f"{prefix.lower()}{i}@example.org",
                timezone=clinic.timezone,
                deficiency_cause=CAUSES[i % len(CAUSES)],
            )
        )
    benchdb.bulk_create(Patient, rows, f"patients {prefix}")
    return list(Patient.objects.select_related("clinic").filter(mrn__startswith=prefix).order_by("id"))


def service_case(index: int, rng: random.Random, protocols: Sequence[Any], today: date) -> dict[str, Any]:
    """Keyword arguments for regimen_start (besides the patient)."""
    protocol = protocols[index % len(protocols)]
    options: dict[str, Any] = {}
    phases = [p for p in PROTOCOLS if p["code"] == protocol.code][0]["phases"]
    if protocol.code == "hydroxo-uk-standard" and rng.random() < 0.3:
        options = {"phases": {"maintenance": {"spacing_value": rng.choice([8, 10, 13])}}}
    elif len(phases) > 1 and rng.random() < 0.05:
        last_dose = today - timedelta(days=20)
        options = {"enrol": {"phase": phases[-1]["key"], "last_dose_date": last_dose.isoformat()}}
    return {
        "protocol": protocol,
        "start_date": today + timedelta(days=rng.randint(-60, 60)),
        "options": options,
    }


BENCH_TABLE_MODELS = ("Regimen", "HistoricalRegimen", "ScheduledDose", "LabRecheck", "RegimenDecision")


def written_row_counts() -> dict[str, int]:
    from regimens import models

    return {name: getattr(models, name).objects.count() for name in BENCH_TABLE_MODELS}


def copy_instance(model: Any, source: Any, **overrides: Any) -> Any:
    values = {f.attname: getattr(source, f.attname) for f in model._meta.concrete_fields if not f.primary_key}
    values.update(overrides)
    return model(**values)


def bench_bare_writes(regimen_ids: list[int], batch_size: int) -> tuple[float, dict[str, float], int]:
    """Bulk-insert copies of what the service wrote for `regimen_ids` into a fresh set of
    regimens on fresh patients. Returns (seconds, seconds per table, rows)."""
    from django.db import transaction

    from regimens.models import LabRecheck, Regimen, ScheduledDose

    historical = Regimen.history.model
    # Everything read and built before the clock starts: only the writes are timed.
    patients = make_patients(len(regimen_ids), "BASE")
    regimens = list(Regimen.objects.filter(id__in=regimen_ids).order_by("id"))
    patient_for = {r.id: p.id for r, p in zip(regimens, patients, strict=True)}
    new_regimens = [copy_instance(Regimen, r, patient_id=patient_for[r.id]) for r in regimens]
    histories = list(historical.objects.filter(id__in=regimen_ids).order_by("history_id"))
    doses = list(ScheduledDose.objects.filter(regimen_id__in=regimen_ids).order_by("id"))
    rechecks = list(LabRecheck.objects.filter(regimen_id__in=regimen_ids).order_by("id"))

    per_table: dict[str, float] = {}
    with benchdb.timed() as writing, transaction.atomic():
        with benchdb.timed() as table:
            Regimen.objects.bulk_create(new_regimens, batch_size=batch_size)
        per_table["regimen"] = table.seconds
        new_id = {old.id: new.id for old, new in zip(regimens, new_regimens, strict=True)}
        with benchdb.timed() as table:
            historical.objects.bulk_create(
                [copy_instance(historical, h, id=new_id[h.id], patient_id=patient_for[h.id]) for h in histories],
                batch_size=batch_size,
            )
        per_table["historicalregimen"] = table.seconds
        # Doses and rechecks hang off their regimen (and its patient) the same way.
        for model, sources in ((ScheduledDose, doses), (LabRecheck, rechecks)):
            with benchdb.timed() as table:
                model.objects.bulk_create(
                    [
                        copy_instance(model, r, regimen_id=new_id[r.regimen_id], patient_id=patient_for[r.regimen_id])
                        for r in sources
                    ],
                    batch_size=batch_size,
                )
            per_table[model._meta.model_name] = table.seconds
    total = writing.seconds
    rows = len(new_regimens) + len(histories) + len(doses) + len(rechecks)

    # The SQL floor: the dose and recheck rows again, as INSERT ... SELECT inside the server.
    floor = bench_insert_select(new_id, patient_for)
    per_table["floor: INSERT...SELECT doses+rechecks"] = floor
    return total, per_table, rows


def bench_insert_select(new_id: dict[int, int], patient_for: dict[int, int]) -> float:
    from django.db import connection, transaction

    from regimens.models import LabRecheck, ScheduledDose

    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE bench_map (old_id bigint PRIMARY KEY, new_id bigint, patient_id bigint)")
        cursor.executemany(
            "INSERT INTO bench_map VALUES (%s, %s, %s)",
            [(old, new, patient_for[old]) for old, new in new_id.items()],
        )
        cursor.execute("ANALYZE bench_map")
        # Delete the ORM copies (untimed) so the floor writes the same rows into the same state.
        for model in (ScheduledDose, LabRecheck):
            cursor.execute(
                f"DELETE FROM {quote(model._meta.db_table)} WHERE regimen_id IN (SELECT new_id FROM bench_map)"  # noqa: S608  (table names from model meta)
            )
    with benchdb.timed() as floor, transaction.atomic(), connection.cursor() as cursor:
        for model in (ScheduledDose, LabRecheck):
            columns = [f.column for f in model._meta.concrete_fields if not f.primary_key]
            selected = [
                "m.new_id" if c == "regimen_id" else "m.patient_id" if c == "patient_id" else f"s.{quote(c)}"
                for c in columns
            ]
            cursor.execute(
                f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
                f"SELECT {', '.join(selected)} FROM {quote(model._meta.db_table)} s "
                "JOIN bench_map m ON s.regimen_id = m.old_id"
            )
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_map")
    return floor.seconds


def bench_service(
    count: int, seed: int, url: str, memory_sample: int, keep: bool, batch_size: int, profile: bool
) -> None:
    name = benchdb.setup_django(url)
    from django.db import connection

    from regimens.models import Protocol
    from regimens.services import regimen_start

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    heading(f"Part 2: regimens.services.regimen_start on PostgreSQL {version} ({name}), {count:,} regimens")
    reset_bench_data()
    rng = random.Random(seed)
    protocols = list(Protocol.objects.filter(active=True).order_by("code"))
    with benchdb.timed() as setting_up:
        patients = make_patients(count + memory_sample, "BENCH")
    print(f"  set-up: {len(patients):,} patients in {setting_up.seconds:.1f} s", file=sys.stderr)
    timed, sample = patients[:count], patients[count:]
    today = datetime.now(UTC).date()
    cases = [service_case(i, rng, protocols, today) for i in range(len(patients))]

    durations: list[float] = []
    profiler = cProfile.Profile() if profile else None
    with benchdb.counting_queries() as log, benchdb.timed() as starting:
        if profiler is not None:
            profiler.enable()
        for patient, case in zip(progress(timed, desc="service: regimen_start", unit="reg"), cases, strict=False):
            t = time.perf_counter()
            regimen_start(patient=patient, **case)
            durations.append(time.perf_counter() - t)
        if profiler is not None:
            profiler.disable()
    total = starting.seconds
    rows = written_row_counts()
    written = sum(rows.values())

    line("protocols", f"{len(protocols)} active, round robin; {len(CLINICS)} clinics; start today ±60 days")
    line("total time", f"{total:.2f} s ({count / total:,.0f} regimens/s)")
    line("per regimen: mean", ms(statistics.fmean(durations)))
    line("per regimen: p95", ms(percentile(durations, 95)))
    line(
        "queries",
        f"{log.count:,} ({log.count / count:.1f} per regimen), "
        f"{log.seconds:.2f} s in the driver ({100 * log.seconds / total:.0f}% of the time)",
    )
    print("  queries per regimen, by kind (count, share of query time):")
    for kind, n in log.kinds.most_common():
        print(f"    {n / count:6.2f}  {100 * log.kind_seconds[kind] / log.seconds:5.1f}%  {kind}")
    line("rows inserted", f"{written:,} ({written / count:.1f} per regimen)")
    for model_name, n in rows.items():
        print(f"    {n:>10,}  {model_name}")
    if profiler is not None:
        print("  cProfile of the regimen_start loop (times inflated by the profiler), top 25 by cumulative time:")
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        print(out.getvalue())

    # Memory on extra patients (tracemalloc would distort the timing above).
    if sample:
        tracemalloc.start()
        peaks = []
        start_traced, _ = tracemalloc.get_traced_memory()
        for patient, case in zip(
            progress(sample, desc="service: memory sample", unit="reg"), cases[count:], strict=True
        ):
            tracemalloc.reset_peak()
            before, _ = tracemalloc.get_traced_memory()
            regimen_start(patient=patient, **case)
            peaks.append(tracemalloc.get_traced_memory()[1] - before)
        growth = tracemalloc.get_traced_memory()[0] - start_traced
        tracemalloc.stop()
        line(
            "peak memory per regimen_start",
            f"mean {kib(statistics.fmean(peaks))}, max {kib(max(peaks))} (sample of {len(sample)})",
        )
        line("memory growth over the sample", kib(growth))
    line("process peak RSS so far", mib(max_rss()))

    heading("Bare database work: bulk_create copies of the same rows (fresh regimens, fresh patients)")
    regimen_ids = [r.id for r in timed_regimens(timed)]
    bare, per_table, bare_rows = bench_bare_writes(regimen_ids, batch_size)
    line("rows", f"{bare_rows:,} (regimens, their history rows, doses, rechecks; batch_size={batch_size})")
    line("time", f"{bare:.2f} s ({bare_rows / bare:,.0f} rows/s)")
    for table, took in per_table.items():
        print(f"    {took:8.3f} s  {table}")
    line("ratio service / bare", f"{total / bare:.1f}x")
    floor = per_table["floor: INSERT...SELECT doses+rechecks"]
    dose_recheck = per_table["scheduleddose"] + per_table["labrecheck"]
    line("bulk_create / INSERT...SELECT", f"{dose_recheck / floor:.1f}x (doses+rechecks only)")

    if not keep:
        reset_bench_data()
        print("  bench data removed", file=sys.stderr)


def timed_regimens(patients: Sequence[Any]) -> list[Any]:
    from regimens.models import Regimen

    return list(Regimen.objects.filter(patient__in=[p.id for p in patients]).only("id").order_by("id"))


# --- Entry point -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = benchdb.parser(__doc__)
    benchdb.add_size(parser, "--regimens", default=10_000, what="regimens")
    benchdb.add_seed(parser, default=SEED)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help=f"PostgreSQL URL; the name must contain 'bench' (default {DEFAULT_DATABASE_URL})",
    )
    parser.add_argument(
        "--memory-sample",
        type=int,
        default=200,
        help="extra regimen_start calls measured with tracemalloc (default 200)",
    )
    parser.add_argument("--batch-size", type=int, default=1000, help="bulk_create batch size for the baseline")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the regimen_start loop under cProfile and print the top functions (slower)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the bench rows in the database afterwards")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--engine-only", action="store_true", help="part 1 only (no database)")
    only.add_argument("--service-only", action="store_true", help="part 2 only")
    args = parser.parse_args(argv)

    print(f"Cobalt schedule benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"  Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load} at the start, seed {args.seed}"
    )
    if not args.service_only:
        bench_engine(args.regimens, args.seed)
    if not args.engine_only:
        bench_service(
            args.regimens, args.seed, args.database_url, args.memory_sample, args.keep, args.batch_size, args.profile
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
