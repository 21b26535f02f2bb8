"""Benchmark of the monitoring sweep (monitoring/sweep.py) on PostgreSQL.

Run from the project root with DATABASE_URL set:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cobalt .venv/bin/python bench/bench_sweep.py
    ... bench/bench_sweep.py --patients 1000

The bench never touches the database named in DATABASE_URL: it uses (and creates) a sibling database
"<name>_bench_sweep" on the same server, empties its clinical tables, bulk-creates N patients with
regimens, doses, lab rechecks, results, facts and reviews, then runs the sweep twice for the same
instant: the first run opens the alerts (its queries grow with the NEW alerts only), the second is the
steady state (a fixed number of queries, whatever N). It prints wall time and query counts (counted with
an execute wrapper; django.test.utils.CaptureQueriesContext keeps only the last 9,000 queries).
A script, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import benchdb  # noqa: E402

SEED = 20270105
AT = datetime(2027, 1, 5, 10, tzinfo=UTC)


def reset() -> None:
    """Empty the clinics and what hangs off them, then make sure the built-in protocols are there (a clinic's own
    protocol copies reference the clinic, so the TRUNCATE ... CASCADE empties the protocols too)."""
    from notifications.models import Alert, Delivery
    from patients.models import Clinic, Patient
    from regimens.models import Protocol, ProtocolPhase, ProtocolRecheckStep
    from regimens.protocol_data import load_protocols

    benchdb.truncate(Delivery, Alert, Patient, Clinic)
    load_protocols(Protocol, ProtocolPhase, ProtocolRecheckStep)


def populate(n: int, rng: random.Random) -> dict[str, int]:
    """N patients: 40 % ileal resection (monthly maintenance from day one), 40 % UK standard, 20 % UK neuro,
    started 0-120 days before AT; some doses given, some overdue; L-6/L-7 rechecks; baseline results.

    As the real services would have stored them: each hemoglobin result interpreted against the reference range
    for the patient's sex and age (patients.labs.services.build_lab_result), and each regimen with the plan
    inputs a re-plan stores (T0 and the RULES §2 lab flags, Regimen.planned_lab_inputs), so a new result that
    changes none of them does not re-plan in the bench either."""
    from patients.models import Clinic, LabResult, Patient, PatientFact
    from regimens.models import LabRecheck, Protocol, Regimen, RegimenDecision, ScheduledDose
    from regimens.services import protocol_snapshot

    today = AT.date()
    clinic = Clinic.objects.create(name="Bench clinic")
    protocols = {p.code: p for p in Protocol.objects.prefetch_related("phases", "recheck_steps")}
    snapshots = {code: protocol_snapshot(p) for code, p in protocols.items()}
    zones = ["Europe/London", "Europe/Berlin", "America/New_York", "Pacific/Auckland"]
    patients = benchdb.bulk_create(
        Patient,
        [
            Patient(
                clinic=clinic,
                mrn=f"B{i:07d}",
                given_name="Bench",
                family_name=f"Patient {i}",
                birth_date=date(1950 + i % 50, 1 + i % 12, 1 + i % 28),
                sex="female" if i % 2 else "male",
                timezone=zones[i % len(zones)],
                neurological_involvement=i % 5 == 0,
                deficiency_cause="pernicious_anemia",
                ical_token=f"bench-{i}",
            )
            for i in range(n)
        ],
        "patients",
    )
    codes = ["ileal-resection"] * 2 + ["hydroxo-uk-standard"] * 2 + ["hydroxo-uk-neuro"]
    plan = [(p, codes[i % 5], today - timedelta(days=rng.randint(0, 120))) for i, p in enumerate(patients)]
    regimens = benchdb.bulk_create(
        Regimen,
        [
            Regimen(patient=p, protocol=protocols[code], start_date=start, protocol_snapshot=snapshots[code])
            for p, code, start in plan
        ],
        "regimens",
    )
    doses: list[ScheduledDose] = []
    rechecks: list[LabRecheck] = []
    results: list[LabResult] = []
    facts: list[PatientFact] = []
    decisions: list[RegimenDecision] = []

    def hemoglobin(patient: Patient, value: int, on: date) -> LabResult:
        return recorded(patient, "hemoglobin", value, "g/L", datetime(on.year, on.month, on.day, 8, tzinfo=UTC))

    def dose(reg: Regimen, phase_index: int, phase: str, seq: int, due: date, given: bool) -> None:
        doses.append(
            ScheduledDose(
                regimen=reg,
                patient_id=reg.patient_id,
                clinic_id=clinic.pk,
                phase_index=phase_index,
                phase=phase,
                sequence=seq,
                due_date=due,
                drug="hydroxocobalamin",
                dose_mcg=1000,
                route="IM",
                status="given" if given else "planned",
                administered_at=datetime(due.year, due.month, due.day, 9, tzinfo=UTC) if given else None,
            )
        )

    for reg, (p, code, start) in benchdb.progress(zip(regimens, plan, strict=True), total=n, desc="rows"):
        missed = rng.random() < 0.3
        if code == "ileal-resection":
            due, seq = start, 1
            while due <= today + timedelta(days=60):
                dose(
                    reg,
                    0,
                    "maintenance",
                    seq,
                    due,
                    given=due < today and not (missed and due > today - timedelta(days=60)),
                )
                due, seq = due + timedelta(days=30), seq + 1
        elif code == "hydroxo-uk-standard":
            for seq in range(6):
                dose(
                    reg,
                    0,
                    "loading",
                    seq + 1,
                    start + timedelta(days=2 * seq),
                    given=start + timedelta(days=2 * seq) < today,
                )
            dose(reg, 1, "maintenance", 1, start + timedelta(days=94), given=False)
        else:
            seq, due = 1, start
            while due <= today + timedelta(days=14):
                dose(reg, 0, "loading", seq, due, given=due < today)
                seq, due = seq + 1, due + timedelta(days=2)
            if rng.random() < 0.5 and start < today - timedelta(days=14):
                decisions.append(
                    RegimenDecision(
                        regimen=reg,
                        phase_index=0,
                        kind="review",
                        outcome="still_improving",
                        decided_on=start + timedelta(days=14),
                    )
                )
        for key, day, before in (("L-6@14", 14, 3), ("L-6@28", 28, 3), ("L-7@56", 56, 7)):
            due = start + timedelta(days=day)
            rechecks.append(
                LabRecheck(
                    patient_id=p.pk,
                    regimen=reg,
                    rule=key.split("@")[0],
                    key=key,
                    due_date=due,
                    window_start=due - timedelta(days=before),
                    window_end=due + timedelta(days=before),
                    analytes=["hemoglobin"] if key.startswith("L-6") else ["hemoglobin", "mcv"],
                )
            )
        results.append(hemoglobin(p, 105, start))
        if rng.random() < 0.5:
            on = start + timedelta(days=15)
            if on < today:
                results.append(hemoglobin(p, 118, on))
        if rng.random() < 0.05:
            facts.append(PatientFact(patient_id=p.pk, kind="neuro_symptoms", onset_date=start))
    benchdb.bulk_create(ScheduledDose, doses, "doses")
    benchdb.bulk_create(LabRecheck, rechecks, "rechecks")
    benchdb.bulk_create(LabResult, results, "results")
    benchdb.bulk_create(RegimenDecision, decisions, "decisions")
    created = benchdb.bulk_create(PatientFact, facts, "facts")
    # recorded_at is auto_now_add: put the symptoms well before AT so S-6(a) applies.
    PatientFact.objects.filter(id__in=[f.pk for f in created]).update(recorded_at=AT - timedelta(days=3))
    store_plan_inputs(regimens, doses, results, created)
    return {
        "patients": n,
        "regimens": len(regimens),
        "doses": len(doses),
        "rechecks": len(rechecks),
        "results": len(results),
        "facts": len(facts),
        "reviews": len(decisions),
    }


def recorded(patient: Any, analyte: str, value: int, unit: str, collected_at: datetime) -> Any:
    """An unsaved LabResult as POST /api/lab-results/ would store it (converted, interpreted against the default
    range for the patient's sex and age, RULES §5.2), built by the service's own `build_lab_result` once per
    distinct (analyte, value, unit, sex, age on the day of collection) and copied for the others: the build stays
    fast at 100,000 patients. The bench records no pregnancy (the one fact that changes a range)."""
    from tracker.clock import local_date

    key = (analyte, value, unit, patient.sex, patient.age_on(local_date(collected_at, patient.timezone)))
    built = _RECORDED.get(key)
    if built is None:
        from patients.labs.services import PatientContext, ResultInput, build_lab_result

        built = build_lab_result(
            context=PatientContext(patient), item=ResultInput(analyte, value, unit), collected_at=collected_at
        )
        _RECORDED[key] = built
    return type(built)(
        patient_id=patient.pk,
        **{f: getattr(built, f) for f in _RESULT_FIELDS},
        collected_at=collected_at,
    )


_RECORDED: dict[tuple[Any, ...], Any] = {}
# What build_lab_result derives from the input and the patient's range (the rest is per row or a default).
_RESULT_FIELDS = (
    "analyte",
    "loinc",
    "value_as_entered",
    "unit_as_entered",
    "value_canonical",
    "unit_canonical",
    "ref_low",
    "ref_high",
    "presence",
    "interpretation",
    "source",
)


def store_plan_inputs(
    regimens: Sequence[Any], doses: Sequence[Any], results: Sequence[Any], facts: Sequence[Any]
) -> int:
    """Regimen.planned_lab_inputs of every bulk-built regimen, as a re-plan stores it (regimens.services
    `lab_inputs`): T0 is the engine's (the first dose of the first phase: its local date when given, else its
    due date, regimens/schedule.py `_t0`; no bench regimen is an enrolment) and the lab flags are those
    monitoring.inputs `lab_context_read` works out from the patient's results and facts, already in memory (no
    query). Written by one joined UPDATE per 1,000 regimens; the number of regimens written."""
    from collections import defaultdict

    from monitoring.inputs import lab_context_read
    from regimens.services import lab_inputs
    from tracker import bulk
    from tracker.clock import local_date

    first = {d.regimen_id: d for d in doses if d.phase_index == 0 and d.sequence == 1}
    rows, known = defaultdict(list), defaultdict(list)
    for result in results:
        rows[result.patient_id].append(result)
    for fact in facts:
        known[fact.patient_id].append(fact)
    for regimen in regimens:
        patient, dose = regimen.patient, first.get(regimen.pk)
        t0 = None
        if dose is not None:
            given = dose.administered_at is not None
            t0 = local_date(dose.administered_at, patient.timezone) if given else dose.due_date
        regimen.planned_lab_inputs = lab_inputs(t0, lab_context_read(rows[patient.pk], known[patient.pk])(patient, t0))
    return bulk.update_rows(type(regimens[0]), regimens, ["planned_lab_inputs"]) if regimens else 0


def timed_sweep() -> tuple[float, int, dict[str, int]]:
    """Run the sweep once; (seconds, queries, counts)."""
    from monitoring.sweep import monitoring

    with benchdb.counting_queries(detailed=False) as log, benchdb.timed() as sweep:
        counts = monitoring(AT)
    return sweep.seconds, log.count, counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = benchdb.parser(__doc__)
    benchdb.add_size(parser, "--patients", default=10_000, what="patients")
    benchdb.add_seed(parser, default=SEED)
    args = parser.parse_args(argv)
    url = benchdb.setup_sibling_database("bench_sweep")
    reset()
    with benchdb.timed() as building:
        sizes = populate(args.patients, random.Random(args.seed))
    print(f"Monitoring sweep benchmark as of {AT.isoformat()} on {benchdb.database_name(url)}")
    print(f"  data: {', '.join(f'{k}={v:,}' for k, v in sizes.items())} (built in {building.seconds:.1f} s)")
    from notifications.models import Alert

    for label in ("first run (opens alerts)", "second run (same instant)"):
        took, queries, counts = timed_sweep()
        changed = {k: v for k, v in counts.items() if v}
        print(f"  {label:<28} {took:8.2f} s  {queries:6,} queries  {changed or 'no changes'}")
    open_alerts = Alert.objects.exclude(status="resolved").values_list("kind").order_by()
    by_kind: dict[str, int] = {}
    for (kind,) in open_alerts:
        by_kind[kind] = by_kind.get(kind, 0) + 1
    print(f"  open alerts: {by_kind}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
