"""Scenario (RULES §10 V-14): a nurse records a dose on the wrong patient's record and corrects it the next
day (entered in error: struck through, the slot planned again, the later doses re-planned); after 7 days
only a clinician may correct a record; a lab result entered on the wrong patient is corrected and the alert
it opened resolves on re-evaluation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from rest_framework.test import APIClient

from notifications.models import Alert
from patients.models import Patient
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

MONDAY = date(2027, 1, 4)


def at(on: date, hour: int = 9) -> datetime:
    return datetime(on.year, on.month, on.day, hour, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(at(MONDAY, 10), tick=False) as traveller:
        yield traveller


@pytest.fixture
def run_commit(django_capture_on_commit_callbacks: Any) -> Any:
    """Run a request and then what it left to run after its commit (the monitoring evaluation)."""

    def call(request: Any, *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return request(*args, **kwargs)

    return call


def sweep_until(clock: Any, last: date) -> None:
    on = datetime.now(UTC).date()
    while on <= last:
        clock.move_to(at(on, 7))
        call_command("run_sweeps", at=at(on, 7).isoformat(), stdout=StringIO())
        on += timedelta(days=1)


def start(api: APIClient, patient: Patient) -> int:
    body = {"patient": patient.pk, "protocol": "hydroxo-uk-standard", "start_date": MONDAY.isoformat()}
    response = api.post("/api/regimens/", body, format="json")
    assert response.status_code == 201, response.json()
    return int(response.json()["id"])


def doses(api: APIClient, regimen_id: int, **query: str) -> list[dict[str, Any]]:
    params = "&".join(f"{k}={v}" for k, v in {"regimen": str(regimen_id), **query}.items())
    return list(api.get(f"/api/doses/?{params}").json()["results"])


def slot(api: APIClient, regimen_id: int, sequence: int) -> dict[str, Any]:
    return next(d for d in doses(api, regimen_id) if d["sequence"] == sequence and d["status"] in ("planned", "given"))


def give(api: APIClient, dose: dict[str, Any], when: datetime) -> None:
    response = api.post(f"/api/doses/{dose['id']}/administer/", {"administered_at": when.isoformat()}, format="json")
    assert response.status_code == 200, response.json()


def loading_dates(api: APIClient, regimen_id: int) -> list[str]:
    return [d["due_date"] for d in doses(api, regimen_id, status="planned") if d["phase"] == "loading"]


def test_a_dose_recorded_on_the_wrong_patient_is_corrected(
    clock: Any, clinic: Any, clinician_api: APIClient, nurse_api: APIClient, run_commit: Any
) -> None:
    ann = PatientFactory(clinic=clinic, given_name="Ann")
    bob = PatientFactory(clinic=clinic, given_name="Bob")
    ann_regimen, bob_regimen = start(clinician_api, ann), start(clinician_api, bob)

    # Monday: both get their first loading dose
    for regimen_id in (ann_regimen, bob_regimen):
        give(nurse_api, slot(nurse_api, regimen_id, 1), at(MONDAY))
    sweep_until(clock, date(2027, 1, 6))

    # Wednesday: Bob's second dose is recorded on Ann's record by mistake
    clock.move_to(at(date(2027, 1, 6), 11))
    wrong = slot(nurse_api, ann_regimen, 2)
    give(nurse_api, wrong, at(date(2027, 1, 6), 10))
    assert loading_dates(nurse_api, ann_regimen) == ["2027-01-08", "2027-01-11", "2027-01-13", "2027-01-15"]

    # Thursday: the nurse who recorded it marks it entered in error
    sweep_until(clock, date(2027, 1, 7))
    clock.move_to(at(date(2027, 1, 7), 10))
    response = run_commit(
        nurse_api.post,
        f"/api/doses/{wrong['id']}/entered-in-error/",
        {"reason": "given to another patient (Bob); recorded on Ann's record"},
        format="json",
    )
    assert response.status_code == 200, response.json()

    # The record stays, struck through: listed with its status, who and why
    struck = doses(nurse_api, ann_regimen, status="entered_in_error")
    assert [(d["id"], d["sequence"], d["administered_at"]) for d in struck] == [
        (wrong["id"], 2, "2027-01-06T10:00:00Z")
    ]
    assert struck[0]["error_reason"].startswith("given to another patient")
    # Ann's second dose is planned again (due Wednesday, so overdue now), the later doses re-planned after it
    again = slot(nurse_api, ann_regimen, 2)
    assert (again["status"], again["due_date"], again["overdue"]) == ("planned", "2027-01-06", True)
    assert again["id"] != wrong["id"]
    assert loading_dates(nurse_api, ann_regimen) == [
        "2027-01-06",
        "2027-01-08",
        "2027-01-11",
        "2027-01-13",
        "2027-01-15",
    ]
    # Bob's dose is recorded where it belongs, and Ann gets hers today
    give(nurse_api, slot(nurse_api, bob_regimen, 2), at(date(2027, 1, 6), 10))
    give(nurse_api, again, at(date(2027, 1, 7), 9))
    assert loading_dates(nurse_api, ann_regimen)[0] == "2027-01-11"  # 7th + 2 = Saturday -> Monday

    # Eight days after Monday's records, the nurse may no longer correct them: only a clinician may
    sweep_until(clock, date(2027, 1, 12))
    clock.move_to(at(date(2027, 1, 12), 10))
    first = slot(nurse_api, ann_regimen, 1)
    refused = nurse_api.post(f"/api/doses/{first['id']}/entered-in-error/", {"reason": "duplicate"}, format="json")
    assert refused.status_code == 403
    assert slot(nurse_api, ann_regimen, 1)["status"] == "given"
    allowed = run_commit(
        clinician_api.post, f"/api/doses/{first['id']}/entered-in-error/", {"reason": "duplicate"}, format="json"
    )
    assert allowed.status_code == 200, allowed.json()


def test_a_lab_result_entered_in_error_and_the_alert_it_opened(
    clock: Any, patient: Patient, clinician_api: APIClient, nurse_api: APIClient, run_commit: Any
) -> None:
    regimen_id = start(clinician_api, patient)
    give(nurse_api, slot(nurse_api, regimen_id, 1), at(MONDAY))

    def enter(value: str, on: date) -> int:
        clock.move_to(at(on, 13))
        body = {
            "patient": patient.pk,
            "analyte": "hemoglobin",
            "value": value,
            "unit": "g/L",
            "collected_at": at(on, 12).isoformat(),
        }
        response = run_commit(nurse_api.post, "/api/lab-results/", body, format="json")
        assert response.status_code == 201, response.json()
        return int(response.json()["id"])

    # Baseline Hb 100 g/L on T0; on day 14 an Hb of 102 g/L (another patient's) is entered on this record
    enter("100", MONDAY)
    sweep_until(clock, date(2027, 1, 18))
    wrong = enter("102", date(2027, 1, 18))
    alert = Alert.objects.get(patient=patient, kind="hemoglobin_slow_rise")
    assert alert.status == "open"

    # The next day the nurse who entered it marks it entered in error
    sweep_until(clock, date(2027, 1, 19))
    clock.move_to(at(date(2027, 1, 19), 10))
    response = run_commit(
        nurse_api.post,
        f"/api/lab-results/{wrong}/entered-in-error/",
        {"reason": "another patient's sample"},
        format="json",
    )
    assert response.status_code == 200, response.json()

    # It stays listed, marked; the alert it opened resolves on the re-evaluation
    listed = nurse_api.get(f"/api/lab-results/?patient={patient.pk}").json()["results"]
    assert {r["id"]: r["entered_in_error"] for r in listed}[wrong] is True
    alert.refresh_from_db()
    assert alert.status == "resolved" and "entered in error" in alert.resolution
    # and the day-14 Hb recheck it had completed is due again
    recheck = next(
        r for r in nurse_api.get(f"/api/lab-rechecks/?regimen={regimen_id}").json()["results"] if r["rule"] == "L-6"
    )
    assert (recheck["due_date"], recheck["status"]) == ("2027-01-18", "due")
    # A sweep after its window closes (day 17 + 3) reports it overdue again
    sweep_until(clock, date(2027, 1, 22))
    assert Alert.objects.filter(patient=patient, kind="lab_recheck_overdue", status="open").exists()
