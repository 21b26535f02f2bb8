"""RULES §2 L-12 for a regimen entered by enrolment (decision D-ENROL-L12, needs clinical sign-off).

An enrolled regimen has no T0 (the first dose ever was given elsewhere) and no response windows (RULES §10 V-1),
so L-1 to L-8 and the protocol's own steps (L-11) are not planned. The annual review of an irreversible cause
(L-12) still is, on each anniversary of the regimen's start date (the enrolment date), ± the setting, on the
lifelong horizon, extended by the horizons sweep.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from patients.models import Clinic, Patient
from regimens.models import LabRecheck, Protocol, Regimen
from regimens.schedule import CBC, Enrolment, Horizons, LabContext, Plan, PlanInput, RecheckTimes, plan
from regimens.services import regimen_replan, regimen_start, regimens_extend_horizons
from tests.conftest import client_for
from tests.factories import PatientFactory
from tests.regimens.test_schedule import builtin

START = date(2027, 1, 4)
LAST_DOSE_ELSEWHERE = date(2026, 12, 1)
ENROL = {"enrol": {"phase": "maintenance", "last_dose_date": LAST_DOSE_ELSEWHERE.isoformat()}}


def engine(labs: LabContext, **kwargs: Any) -> Plan:
    inp = PlanInput(
        protocol=builtin("hydroxo-uk-standard"),
        start_date=START,
        today=kwargs.pop("today", START),
        enrolment=Enrolment(phase_index=1, last_dose_date=LAST_DOSE_ELSEWHERE),
        labs=labs,
        **kwargs,
    )
    return plan(inp)


# --- Engine -------------------------------------------------------------------------------------


def test_an_enrolment_with_an_irreversible_cause_gets_l12_on_each_anniversary_of_its_start_date() -> None:
    p = engine(LabContext(irreversible_cause=True), horizons=Horizons(lifelong_months=36))

    assert p.t0 is None  # T0 and the response windows are unchanged (V-1)
    assert [(r.rule, r.key, r.due_date, r.window_start, r.window_end) for r in p.rechecks] == [
        ("L-12", "L-12@365", date(2028, 1, 4), date(2027, 12, 5), date(2028, 2, 3)),
        ("L-12", "L-12@731", date(2029, 1, 4), date(2028, 12, 5), date(2029, 2, 3)),
        ("L-12", "L-12@1096", date(2030, 1, 4), date(2029, 12, 5), date(2030, 2, 3)),
    ]
    assert {r.analytes for r in p.rechecks} == {CBC}
    assert {r.description for r in p.rechecks} == {"Annual review and full blood count"}


def test_an_enrolment_plans_no_l8_or_l11_even_when_there_is_no_baseline() -> None:
    # No baseline results would plan L-6, L-7 and L-8 from T0: an enrolment has none of them, nor L-11
    # (oral-high-dose's own step) -- only L-12.
    labs = LabContext(irreversible_cause=True, has_baseline=False, cbc_abnormal=True, hb_low=True)
    oral = plan(
        PlanInput(
            protocol=builtin("oral-high-dose"),
            start_date=START,
            today=START,
            enrolment=Enrolment(phase_index=0, last_dose_date=START - timedelta(days=1)),
            labs=labs,
        )
    )

    assert {r.rule for r in engine(labs).rechecks} == {"L-12"}
    assert {r.rule for r in oral.rechecks} == {"L-12"}


def test_l12_of_an_enrolment_follows_the_settings() -> None:
    times = RecheckTimes(l12_every_years=2, l12_plus_minus_days=10)

    p = engine(LabContext(irreversible_cause=True), horizons=Horizons(lifelong_months=60), recheck_times=times)

    assert [(r.due_date, r.window_start, r.window_end) for r in p.rechecks] == [
        (date(2029, 1, 4), date(2028, 12, 25), date(2029, 1, 14)),
        (date(2031, 1, 4), date(2030, 12, 25), date(2031, 1, 14)),
    ]
    assert {r.description for r in p.rechecks} == {"Review every 2 years and full blood count"}


def test_an_enrolment_with_a_reversible_cause_gets_no_rechecks_and_the_same_extend_on() -> None:
    p = engine(LabContext(irreversible_cause=False))

    assert p.rechecks == ()
    # The dose horizon alone sets extend_on (maintenance every 12 weeks, 12 months ahead).
    assert p.extend_on is not None and p.extend_on < date(2028, 1, 4)


def test_the_next_annual_review_of_an_enrolment_enters_when_the_horizon_reaches_it() -> None:
    labs = LabContext(irreversible_cause=True)
    before = engine(labs, today=date(2028, 1, 3))
    on_the_day = engine(labs, today=date(2028, 1, 4))

    assert [r.due_date for r in before.rechecks] == [date(2028, 1, 4)]
    assert [r.due_date for r in on_the_day.rechecks] == [date(2028, 1, 4), date(2029, 1, 4)]
    # Planned on its start date, the plan asks to be extended no later than the day the 2029 review enters.
    assert (first := engine(labs).extend_on) is not None and first <= date(2028, 1, 4)


# --- Services, sweep and API (PostgreSQL) -------------------------------------------------------


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(datetime(2027, 1, 4, 9, tzinfo=UTC), tick=False) as traveller:
        yield traveller


def enrol(patient: Patient) -> Regimen:
    return regimen_start(
        patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=START, options=ENROL
    )


def rows(regimen: Regimen) -> list[tuple[str, str, date, date, date]]:
    return list(
        LabRecheck.objects.filter(regimen=regimen)
        .order_by("due_date")
        .values_list("rule", "key", "due_date", "window_start", "window_end")
    )


def test_an_enrolled_pernicious_anaemia_patient_gets_the_annual_review_and_a_replan_writes_nothing(
    patient: Patient, clock: Any
) -> None:
    regimen = enrol(patient)  # the factory's patient has pernicious anaemia

    assert rows(regimen) == [("L-12", "L-12@365", date(2028, 1, 4), date(2027, 12, 5), date(2028, 2, 3))]
    ids = list(LabRecheck.objects.filter(regimen=regimen).values_list("id", flat=True))

    with CaptureQueriesContext(connection) as queries:
        regimen_replan(regimen=regimen)

    writes = [q["sql"] for q in queries if "regimens_labrecheck" in q["sql"] and not q["sql"].startswith("SELECT")]
    assert writes == []
    assert list(LabRecheck.objects.filter(regimen=regimen).values_list("id", flat=True)) == ids


def test_an_enrolled_diet_cause_patient_gets_no_rechecks(clinic: Clinic, clock: Any) -> None:
    regimen = enrol(PatientFactory(clinic=clinic, deficiency_cause="diet"))

    assert rows(regimen) == []


def test_the_horizons_sweep_adds_the_next_annual_review_of_an_enrolment(patient: Patient, clock: Any) -> None:
    regimen = enrol(patient)
    target = date(2028, 1, 4)  # the lifelong horizon reaches the 2029 review on this day

    # The sweep runs on every day the regimen asks for (doses every 12 weeks, then the annual review).
    for _ in range(20):
        regimen.refresh_from_db()
        assert regimen.extend_on is not None
        if regimen.extend_on >= target:
            break
        assert "L-12@731" not in {key for _, key, *_ in rows(regimen)}
        regimens_extend_horizons(at=datetime.combine(regimen.extend_on, datetime.min.time(), tzinfo=UTC))
    assert regimen.extend_on == target
    assert [key for _, key, *_ in rows(regimen)] == ["L-12@365"]

    at = datetime(2028, 1, 4, 12, tzinfo=UTC)
    assert regimens_extend_horizons(at=at) == {"extended": 1}

    assert rows(regimen) == [
        ("L-12", "L-12@365", date(2028, 1, 4), date(2027, 12, 5), date(2028, 2, 3)),
        ("L-12", "L-12@731", date(2029, 1, 4), date(2028, 12, 5), date(2029, 2, 3)),
    ]
    regimen.refresh_from_db()
    assert regimen.extend_on is not None and regimen.extend_on > target
    assert regimens_extend_horizons(at=at) == {"extended": 0}


def test_through_the_api_an_enrolment_lists_its_annual_review(patient: Patient, clinician: Any, clock: Any) -> None:
    api: APIClient = client_for(clinician)
    body = {"patient": patient.pk, "protocol": "hydroxo-uk-standard", "start_date": START.isoformat(), "options": ENROL}

    created = api.post("/api/regimens/", body, format="json")
    assert created.status_code == 201, created.json()
    regimen_id = created.json()["id"]

    listed = api.get(f"/api/lab-rechecks/?regimen={regimen_id}")

    assert listed.status_code == 200
    results = listed.json()["results"]
    assert [(r["rule"], r["due_date"], r["window_start"], r["window_end"]) for r in results] == [
        ("L-12", "2028-01-04", "2027-12-05", "2028-02-03")
    ]
    assert results[0]["analytes"] == list(CBC)
    assert results[0]["regimen"] == regimen_id
