"""A sweep cut into shards of patient ids (tracker/sweeps.py) writes exactly the rows the same sweep writes in
one piece: alerts (opened, escalated, resolved), staff and patient deliveries, doses planned by the horizon
extension, rechecks. Both runs start from the same database (a savepoint rolled back in between) with the
patients of two clinics spread over five shards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import time_machine
from django.db import transaction

from notifications.models import Alert, Delivery
from patients.models import Patient, PatientFact, Role
from regimens.models import LabRecheck, Protocol, Regimen, ScheduledDose
from regimens.services import dose_record_administration, regimen_start
from tests.factories import ClinicFactory, staff_user
from tests.monitoring.test_monitoring_sweep import START, at, new_patient
from tracker import sweeps

pytestmark = pytest.mark.django_db

CODES = ("ileal-resection", "hydroxo-uk-neuro", "hydroxo-uk-standard")
# Reminders of the next doses, overdue doses and recheck windows later, horizons past a month.
# The day after an alert opens its clinic's digest goes out (08:00).
INSTANTS = [
    at(START, 12),
    at(START + timedelta(days=20)),
    at(START + timedelta(days=21), 9),
    at(START + timedelta(days=45)),
]


@pytest.fixture(autouse=True)
def clock() -> Iterator[Any]:
    with time_machine.travel(at(START), tick=False) as traveller:
        yield traveller


def population(first_day: date = START) -> list[Patient]:
    """14 patients at two clinics with two staff each: lifelong, neuro loading and standard regimens starting
    on `first_day`, some with neurological history (HIGH alerts, escalation), some without an email address
    (contact_missing)."""
    clinics = [ClinicFactory(name="Riverside"), ClinicFactory(name="Northgate")]
    for clinic in clinics:
        staff_user(clinic, Role.NURSE, username=f"{clinic.name}-nurse")
        staff_user(clinic, Role.CLINICIAN, username=f"{clinic.name}-clinician")
    patients = []
    for i in range(14):
        extra = {"email": ""} if i % 7 == 3 else {}
        patient = new_patient(clinic=clinics[i % 2], neurological_involvement=i % 4 == 0, **extra)
        regimen = regimen_start(patient=patient, protocol=Protocol.objects.get(code=CODES[i % 3]), start_date=first_day)
        if i % 3 == 1:
            first = ScheduledDose.objects.filter(regimen=regimen).order_by("due_date").first()
            assert first is not None
            dose_record_administration(dose=first, administered_at=at(first_day, 9))
        if i % 5 == 0:
            PatientFact.objects.create(patient=patient, kind="neuro_symptoms", onset_date=START)
        patients.append(patient)
    return patients


def run_days(clock: Any, patients: list[Patient]) -> dict[str, dict[str, int]]:
    """Every sweep at each instant (as `run_sweeps` runs them, delivering inline); a dose given in between."""
    totals: dict[str, dict[str, int]] = {}
    for n, when in enumerate(INSTANTS):
        clock.move_to(when)
        with sweeps.delivering_inline():
            for name, counts in sweeps.run_all(when).items():
                totals[name] = sweeps.add_counts([totals.get(name, {}), counts])
        if n == 1:
            dose = ScheduledDose.objects.filter(patient=patients[0], status="planned").order_by("due_date").first()
            assert dose is not None
            dose_record_administration(dose=dose, administered_at=when)
    return totals


def snapshot() -> dict[str, list[Any]]:
    """Every row the sweeps write, by natural keys (the ids of rows written during the runs differ)."""
    doses = {
        d["id"]: (d["regimen_id"], d["phase_index"], d["sequence"], str(d["due_date"]))
        for d in ScheduledDose.objects.values("id", "regimen_id", "phase_index", "sequence", "due_date")
    }
    rechecks = {
        r["id"]: (r["regimen_id"], r["rule"], r["key"], str(r["window_start"]))
        for r in LabRecheck.objects.values("id", "regimen_id", "rule", "key", "window_start")
    }
    alerts = {a["id"]: (a["patient_id"], a["kind"]) for a in Alert.objects.values("id", "patient_id", "kind")}

    def evidence(value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if k in ("dose_id", "last_dose_id") and v is not None:
                    v = doses[v]
                elif k == "id" and "rule" in value:
                    v = rechecks[v]
                out[k] = evidence(v)
            return out
        if isinstance(value, list):
            return [evidence(v) for v in value]
        return value

    def key(k: str) -> str:
        parts = k.split(":")
        if parts[0] in ("alert", "escalation"):
            parts[1] = repr(alerts[int(parts[1])])
        elif parts[0] == "remind" and parts[1] in ("dose", "overdue", "moved"):
            parts[2] = repr(doses[int(parts[2])])
        elif parts[0] == "remind" and parts[1] == "recheck":
            parts[2] = repr(rechecks[int(parts[2])])
        return ":".join(parts)

    return {
        "doses": sorted((*doses[d["id"]], d["status"]) for d in ScheduledDose.objects.values("id", "status")),
        "rechecks": sorted((*rechecks[r["id"]], r["status"]) for r in LabRecheck.objects.values("id", "status")),
        "regimens": sorted(Regimen.objects.values_list("id", "extend_on", "current_phase", "status")),
        "alerts": sorted(
            (
                a.patient_id,
                a.kind,
                a.severity,
                a.status,
                a.rule_id,
                a.message,
                json.dumps(evidence(a.evidence), sort_keys=True),
                str(a.escalated_at),
                str(a.resolved_at),
                a.resolution,
                a.history.count(),
            )
            for a in Alert.objects.all()
        ),
        "deliveries": sorted(
            (
                key(d.idempotency_key),
                d.purpose,
                d.channel,
                d.user_id or 0,
                d.patient_id or 0,
                d.address,
                d.subject,
                d.body,
                str(d.due_at),
                d.status,
                repr(alerts.get(d.alert_id or 0)),
                repr(doses.get(d.dose_id or 0)),
                repr(rechecks.get(d.recheck_id or 0)),
            )
            for d in Delivery.objects.all()
        ),
    }


def test_a_sharded_run_writes_exactly_the_rows_of_a_run_in_one_piece(clock: Any, settings: Any) -> None:
    patients = population()
    saved = transaction.savepoint()

    settings.COBALT = {**settings.COBALT, "SWEEP_SHARD_SIZE": 1_000_000}
    assert sweeps.shards() == [sweeps.Shard()]
    whole_totals = run_days(clock, patients)
    whole = snapshot()

    transaction.savepoint_rollback(saved)
    clock.move_to(at(START))
    settings.COBALT = {**settings.COBALT, "SWEEP_SHARD_SIZE": 3}
    plan = sweeps.shards()
    assert len(plan) == 5 and all(sum(s.contains(p.pk) for p in patients) <= 3 for s in plan)
    sharded_totals = run_days(clock, patients)
    sharded = snapshot()

    # The runs did something worth comparing: horizons extended, alerts opened, escalated and resolved,
    # staff digests and alerts, reminders, contact_missing.
    assert whole_totals["horizons"]["extended"] > 0
    assert whole_totals["staff"]["escalated"] > 0 and whole_totals["staff"]["digest_messages"] > 0
    assert whole_totals["reminders"]["reminders_written"] > 0
    assert whole_totals["reminders"]["contact_missing_raised"] > 0
    assert whole_totals["monitoring"]["dose_overdue_resolved"] > 0
    assert {a[3] for a in whole["alerts"]} >= {"open", "resolved"}
    assert {d[1] for d in whole["deliveries"]} >= {"alert", "escalation", "digest", "dose_reminder"}
    # The same rows, and the same counts in the log.
    for table in whole:
        assert sharded[table] == whole[table], table
    assert sharded_totals == whole_totals


def test_shards_cover_every_patient_id_once(settings: Any) -> None:
    assert sweeps.shards(3) == [sweeps.Shard()]  # no patients: one run over everything
    patients = [new_patient() for _ in range(7)]
    lo = patients[0].pk
    plan = sweeps.shards(3)
    # Open at both ends: a patient created after the shards were cut falls in the last one.
    assert plan == [sweeps.Shard(None, lo + 3), sweeps.Shard(lo + 3, lo + 6), sweeps.Shard(lo + 6, None)]
    for p in [*patients, new_patient()]:
        assert sum(s.contains(p.pk) for s in plan) == 1
    assert sweeps.shards(8) == [sweeps.Shard()]  # all eight fit in one
    settings.COBALT = {**settings.COBALT, "SWEEP_SHARD_SIZE": 4}
    assert len(sweeps.shards()) == 2


def test_a_shard_touches_only_its_own_patients_alerts(clock: Any) -> None:
    patients = population()
    when = INSTANTS[1]
    clock.move_to(when)
    sweeps.run("monitoring", when)
    opened = set(Alert.objects.filter(status="open").values_list("patient_id", "kind"))
    assert {pid for pid, _kind in opened} >= {patients[0].pk, patients[-1].pk}

    # Later every dose of the whole clinic is recorded, but only the first shard's sweep runs:
    ScheduledDose.objects.filter(status="planned").update(status="cancelled")
    first = sweeps.Shard(None, patients[7].pk)
    sweeps.load()["monitoring"].run_shard(when + timedelta(hours=1), first)

    still = set(Alert.objects.filter(status="open", kind="dose_overdue").values_list("patient_id", flat=True))
    overdue_before = {pid for pid, kind in opened if kind == "dose_overdue"}
    # the first shard's dose alerts are resolved, the others' are left for their own shards.
    assert still == {pid for pid in overdue_before if not first.contains(pid)}
    assert still and still != overdue_before
