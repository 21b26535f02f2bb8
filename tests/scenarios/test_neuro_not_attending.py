"""Scenario: a patient with neurological involvement on hydroxo-uk-neuro (R-UK-2) who does not attend.

Walked through the public API (a clinician and a nurse of the clinic) with the clock moved day by day and
every sweep run as the periodic task would (`run_sweeps --at`). RULES S-4 and S-6(a) as revised by §10 V-5:
a neuro loading dose more than 2 days [P] overdue is HIGH, and S-6(a) applies on the patient's flag or a
symptom fact; §1.3 review prompts; a `worsening` review opens `neuro_worsening`.
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


def at(on: date, hour: int = 10) -> datetime:
    return datetime(on.year, on.month, on.day, hour, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(at(DAY0, 9), tick=False) as traveller:
        yield traveller


@pytest.fixture
def clinician_api(clinician: Any) -> APIClient:
    return client_for(clinician)


@pytest.fixture
def nurse_api(nurse: Any) -> APIClient:
    return client_for(nurse)


def sweep(clock: Any, on: date, hour: int = 10) -> None:
    """Move the clock to `on` at `hour` UTC and run every sweep as of then."""
    clock.move_to(at(on, hour))
    call_command("run_sweeps", "--at", at(on, hour).isoformat(), stdout=StringIO())


def open_alerts(api: APIClient, patient_id: int) -> dict[str, str]:
    """kind -> severity of the patient's alerts that are not resolved, as the alert list shows them."""
    response = api.get("/api/alerts/", {"patient": patient_id})
    assert response.status_code == 200, response.json()
    return {a["kind"]: a["severity"] for a in response.json()["results"] if a["status"] != "resolved"}


def new_neuro_patient(api: APIClient, clinic: Any, mrn: str) -> int:
    response = api.post(
        "/api/patients/",
        {
            "clinic": clinic.pk,
            "mrn": mrn,
            "given_name": "Ada",
            "family_name": "Walker",
            "birth_date": "1960-05-01",
            "sex": "female",
            "timezone": "Europe/London",
            "neurological_involvement": True,
            "deficiency_cause": "unknown",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    return int(response.json()["id"])


def start_neuro_regimen(api: APIClient, patient_id: int) -> dict[str, Any]:
    response = api.post(
        "/api/regimens/",
        {"patient": patient_id, "protocol": "hydroxo-uk-neuro", "start_date": DAY0.isoformat()},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body: dict[str, Any] = response.json()
    return body


def planned_loading(api: APIClient, regimen_id: int) -> list[dict[str, Any]]:
    response = api.get("/api/doses/", {"regimen": regimen_id, "status": "planned"})
    assert response.status_code == 200
    return sorted(
        (d for d in response.json()["results"] if d["phase"] == "loading"), key=lambda d: (d["due_date"], d["id"])
    )


def test_a_neuro_patient_who_never_attends_gets_s6a_then_an_overdue_loading_dose_alert(
    clinic: Any, clinician_api: APIClient, clock: Any
) -> None:
    # Day 0, 09:00: the clinician registers the patient (neurological involvement), records the symptoms and
    # starts hydroxo-uk-neuro; the first loading dose is due today. The patient never comes.
    patient_id = new_neuro_patient(clinician_api, clinic, "NEURO-1")
    fact = clinician_api.post(
        "/api/patient-facts/",
        {"patient": patient_id, "kind": "neuro_symptoms", "onset_date": "2026-12-20", "note": "paraesthesia"},
        format="json",
    )
    assert fact.status_code == 201, fact.json()
    regimen = start_neuro_regimen(clinician_api, patient_id)
    assert planned_loading(clinician_api, regimen["id"])[0]["due_date"] == DAY0.isoformat()

    seen: dict[int, dict[str, str]] = {}
    for offset in range(0, 8):
        sweep(clock, DAY0 + timedelta(days=offset))
        seen[offset] = open_alerts(clinician_api, patient_id)

    # S-6(a): no B12 within 24 hours of the symptoms and the flag -> HIGH from day 1 (25 hours).
    assert "neuro_treatment_delay" not in seen[0]
    assert all(seen[d].get("neuro_treatment_delay") == "high" for d in range(1, 8))
    # S-4 (§10 V-5): the first loading dose, due on day 0, is HIGH once more than 2 days overdue.
    assert [seen[d].get("dose_overdue") for d in range(0, 5)] == [None, None, None, "high", "high"]
    # One alert per kind, whatever the number of loading doses now overdue.
    alerts = clinician_api.get("/api/alerts/", {"patient": patient_id, "kind": "dose_overdue"}).json()["results"]
    assert len(alerts) == 1 and alerts[0]["evidence"]["due_date"] == DAY0.isoformat()


def test_a_neuro_patient_who_stops_attending_after_the_first_dose(
    clinic: Any, clinician_api: APIClient, nurse_api: APIClient, clock: Any
) -> None:
    # Day 0: flag only (no symptom fact); the first loading dose is given at 09:30, half an hour after.
    patient_id = new_neuro_patient(clinician_api, clinic, "NEURO-2")
    regimen = start_neuro_regimen(clinician_api, patient_id)
    first = planned_loading(nurse_api, regimen["id"])[0]
    clock.move_to(at(DAY0, 9) + timedelta(minutes=45))
    given = nurse_api.post(
        f"/api/doses/{first['id']}/administer/", {"administered_at": at(DAY0, 9).replace(minute=30).isoformat()},
        format="json",
    )
    assert given.status_code == 200, given.json()
    second_due = date.fromisoformat(planned_loading(nurse_api, regimen["id"])[0]["due_date"])
    assert second_due == date(2027, 1, 6)  # alternate days

    seen: dict[date, dict[str, str]] = {}
    day = DAY0
    while day <= DAY0 + timedelta(days=42):
        sweep(clock, day)
        seen[day] = open_alerts(clinician_api, patient_id)
        day += timedelta(days=1)

    # Dosed within 24 hours of the flag: no S-6(a).
    assert all("neuro_treatment_delay" not in alerts for alerts in seen.values())
    # The second loading dose (6 Jan) is HIGH from 9 Jan, more than 2 days overdue.
    assert seen[date(2027, 1, 8)].get("dose_overdue") is None
    assert seen[date(2027, 1, 9)].get("dose_overdue") == "high"
    # §1.3 review prompts, counted from the first loading dose: info at 14 days, medium at 21, high at 6 weeks.
    assert seen[DAY0 + timedelta(days=13)].get("neuro_review_due") is None
    assert seen[DAY0 + timedelta(days=14)].get("neuro_review_due") == "info"
    assert seen[DAY0 + timedelta(days=21)].get("neuro_review_due") == "medium"
    assert seen[DAY0 + timedelta(days=42)].get("neuro_review_due") == "high"

    # The clinician reaches the patient by phone and records the review as worsening: neuro_worsening, HIGH.
    clock.move_to(at(DAY0 + timedelta(days=42), 15))
    response = clinician_api.post(
        f"/api/regimens/{regimen['id']}/review/",
        {"outcome": "worsening", "note": "unsteady gait; neurology same week"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    sweep(clock, DAY0 + timedelta(days=42), hour=16)
    alerts = open_alerts(clinician_api, patient_id)
    assert alerts["neuro_worsening"] == "high"
    # The review had a note (the specialist's plan), so the 6-week prompt is answered; the missed doses are not.
    assert "neuro_review_due" not in alerts
    assert alerts["dose_overdue"] == "high"
