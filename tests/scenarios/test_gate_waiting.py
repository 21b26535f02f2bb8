"""Scenario: an R-US-1 regimen (cyano-us-label) reaches its gate and nobody confirms it.

RULES R-US-1: phase B (alternate days) starts only after a clinician confirms "clinical improvement and a
reticulocyte response". §10 V-9: waiting at the gate more than 2 days [P] after the last dose of the phase
before it opens `gate_pending` (HIGH) until the gate is confirmed or the regimen stopped. Walked through the
public API with the clock moved day by day and every sweep run (`run_sweeps --at`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.conftest import client_for

pytestmark = pytest.mark.django_db

DAY0 = date(2027, 1, 4)  # a Monday; the default clinic is open Monday to Friday
LAST_DAILY_DOSE = date(2027, 1, 12)  # the seventh daily dose: 4-8 and 11-12 January


def at(on: date, hour: int = 10) -> datetime:
    return datetime(on.year, on.month, on.day, hour, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(at(DAY0, 8), tick=False) as traveller:
        yield traveller


def sweep(clock: Any, on: date, hour: int = 18) -> None:
    clock.move_to(at(on, hour))
    call_command("run_sweeps", "--at", at(on, hour).isoformat(), stdout=StringIO())


def gate_alert(api: APIClient, patient_id: int) -> dict[str, Any] | None:
    response = api.get("/api/alerts/", {"patient": patient_id, "kind": "gate_pending"})
    assert response.status_code == 200
    rows = [a for a in response.json()["results"] if a["status"] != "resolved"]
    assert len(rows) <= 1
    return rows[0] if rows else None


def test_a_regimen_waiting_at_its_gate_opens_gate_pending_on_day_3_until_the_gate_is_confirmed(
    clinic: Any, clinician: Any, nurse: Any, clock: Any
) -> None:
    clinician_api, nurse_api = client_for(clinician), client_for(nurse)
    patient = clinician_api.post(
        "/api/patients/",
        {
            "clinic": clinic.pk,
            "mrn": "GATE-1",
            "given_name": "Tom",
            "family_name": "Reed",
            "birth_date": "1955-02-11",
            "sex": "male",
            "timezone": "Europe/London",
            "deficiency_cause": "pernicious_anemia",
        },
        format="json",
    )
    assert patient.status_code == 201, patient.json()
    patient_id = patient.json()["id"]
    started = clinician_api.post(
        "/api/regimens/",
        {"patient": patient_id, "protocol": "cyano-us-label", "start_date": DAY0.isoformat()},
        format="json",
    )
    assert started.status_code == 201, started.json()
    regimen_id = started.json()["id"]

    # The seven daily doses of phase A, each given on its due day; the sweeps run every evening.
    day = DAY0
    while day <= LAST_DAILY_DOSE:
        due = nurse_api.get("/api/doses/", {"regimen": regimen_id, "status": "planned", "due_to": day.isoformat()})
        for dose in due.json()["results"]:
            clock.move_to(at(day, 11))
            given = nurse_api.post(
                f"/api/doses/{dose['id']}/administer/", {"administered_at": at(day, 10).isoformat()}, format="json"
            )
            assert given.status_code == 200, given.json()
        sweep(clock, day)
        assert gate_alert(clinician_api, patient_id) is None
        day += timedelta(days=1)
    regimen = clinician_api.get(f"/api/regimens/{regimen_id}/").json()
    assert regimen["awaiting_gate"] is True
    assert not [d for d in regimen["doses"] if d["status"] == "planned"]

    # Nothing happens for two days: no alert. On the third day after the last daily dose: gate_pending, HIGH.
    sweep(clock, LAST_DAILY_DOSE + timedelta(days=1))
    sweep(clock, LAST_DAILY_DOSE + timedelta(days=2))
    assert gate_alert(clinician_api, patient_id) is None
    sweep(clock, LAST_DAILY_DOSE + timedelta(days=3))
    alert = gate_alert(clinician_api, patient_id)
    assert alert is not None
    assert (alert["severity"], alert["rule_id"]) == ("high", "§10 V-9")
    assert alert["evidence"]["last_dose_on"] == LAST_DAILY_DOSE.isoformat()
    # Still waiting the next day: the same alert, not a second one.
    sweep(clock, LAST_DAILY_DOSE + timedelta(days=4))
    again = gate_alert(clinician_api, patient_id)
    assert again is not None and again["id"] == alert["id"]

    # The clinician confirms the reticulocyte response: phase B is planned and the alert resolves.
    clock.move_to(at(LAST_DAILY_DOSE + timedelta(days=5), 9))
    confirmed = clinician_api.post(
        f"/api/regimens/{regimen_id}/confirm-gate/", {"note": "reticulocytes 4.1 %, feeling better"}, format="json"
    )
    assert confirmed.status_code == 200, confirmed.json()
    assert confirmed.json()["awaiting_gate"] is False
    assert any(d["phase"] == "alternate" and d["status"] == "planned" for d in confirmed.json()["doses"])
    sweep(clock, LAST_DAILY_DOSE + timedelta(days=5))
    assert gate_alert(clinician_api, patient_id) is None
    resolved = clinician_api.get("/api/alerts/", {"patient": patient_id, "kind": "gate_pending"}).json()["results"]
    assert [(a["status"], a["resolved"]["resolution"]) for a in resolved] == [
        ("resolved", "gate confirmed or regimen stopped")
    ]
