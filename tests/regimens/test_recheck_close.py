"""RULES §10 V-10: a clinician can always close a lab recheck by hand: completed (drawn elsewhere, with a
note) or cancelled (with a reason). The engine's re-plan never reopens a recheck closed by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from rest_framework.test import APIClient

from notifications.models import Alert
from regimens.models import LabRecheck, Protocol, RecheckStatus, Regimen, ScheduledDose
from regimens.services import dose_record_administration, regimen_replan, regimen_start

pytestmark = pytest.mark.django_db

MONDAY = date(2027, 1, 4)


def at(on: date, hour: int = 8) -> datetime:
    return datetime(on.year, on.month, on.day, hour, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(at(MONDAY, 9), tick=False) as traveller:
        yield traveller


@pytest.fixture
def regimen(patient: Any, clock: Any) -> Regimen:
    regimen = regimen_start(
        patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=MONDAY
    )
    first = ScheduledDose.objects.filter(regimen=regimen).order_by("due_date").first()
    assert first is not None
    dose_record_administration(dose=first, administered_at=at(MONDAY))
    return regimen


def recheck(regimen: Regimen, key: str = "L-6@14") -> LabRecheck:
    return LabRecheck.objects.get(regimen=regimen, key=key)


def test_it_lets_a_clinician_complete_a_recheck_drawn_elsewhere(
    regimen: Regimen, clinician: Any, clinician_api: APIClient
) -> None:
    row = recheck(regimen)

    response = clinician_api.post(
        f"/api/lab-rechecks/{row.pk}/complete/", {"note": "drawn at the GP surgery on 18 January"}, format="json"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "done"
    assert body["close_note"] == "drawn at the GP surgery on 18 January"
    assert body["closed_by"] == clinician.pk
    assert body["completed_at"] == "2027-01-04T09:00:00Z"


def test_it_lets_a_clinician_cancel_a_recheck_with_a_reason(
    regimen: Regimen, clinician: Any, clinician_api: APIClient
) -> None:
    row = recheck(regimen)

    response = clinician_api.post(
        f"/api/lab-rechecks/{row.pk}/cancel/", {"reason": "admitted; inpatient labs"}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["close_note"]) == ("cancelled", "admitted; inpatient labs")
    assert response.json()["completed_at"] is None


@pytest.mark.parametrize("action", ["complete", "cancel"])
def test_it_refuses_a_nurse(regimen: Regimen, nurse_api: APIClient, action: str) -> None:
    field = "note" if action == "complete" else "reason"

    response = nurse_api.post(f"/api/lab-rechecks/{recheck(regimen).pk}/{action}/", {field: "x"}, format="json")

    assert response.status_code == 403
    assert recheck(regimen).status == RecheckStatus.DUE


@pytest.mark.parametrize(("action", "field"), [("complete", "note"), ("cancel", "reason")])
def test_it_needs_a_note_or_a_reason(regimen: Regimen, clinician_api: APIClient, action: str, field: str) -> None:
    response = clinician_api.post(f"/api/lab-rechecks/{recheck(regimen).pk}/{action}/", {field: " "}, format="json")

    assert response.status_code == 400
    assert field in response.json()


def test_it_refuses_to_close_a_closed_recheck_again_differently(regimen: Regimen, clinician_api: APIClient) -> None:
    url = f"/api/lab-rechecks/{recheck(regimen).pk}"
    assert clinician_api.post(f"{url}/cancel/", {"reason": "not needed"}, format="json").status_code == 200

    assert clinician_api.post(f"{url}/cancel/", {"reason": "not needed"}, format="json").status_code == 200
    conflict = clinician_api.post(f"{url}/complete/", {"note": "drawn elsewhere"}, format="json")
    assert conflict.status_code == 409
    assert "status" in conflict.json()


@pytest.mark.parametrize(
    ("action", "field", "status"), [("complete", "note", "done"), ("cancel", "reason", "cancelled")]
)
def test_a_replan_never_reopens_a_recheck_closed_by_hand(
    regimen: Regimen, clinician_api: APIClient, action: str, field: str, status: str
) -> None:
    row = recheck(regimen)
    clinician_api.post(f"/api/lab-rechecks/{row.pk}/{action}/", {field: "closed by hand"}, format="json")

    regimen_replan(regimen=regimen)

    assert recheck(regimen).status == status


def test_closing_the_overdue_recheck_by_hand_resolves_the_overdue_test_alert(
    regimen: Regimen, clinician_api: APIClient, clock: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # Given the day-14 Hb recheck (window 11-17) was never drawn: after day 17 it is overdue (§3.3)
    for key in ("L-6@28", "L-7@56", "L-8@90"):
        LabRecheck.objects.filter(regimen=regimen, key=key).update(status=RecheckStatus.CANCELLED, close_note="x")
    call_command("run_sweeps", "--at", at(date(2027, 1, 22)).isoformat(), "--only", "monitoring", stdout=StringIO())
    assert Alert.objects.filter(patient=regimen.patient, kind="lab_recheck_overdue", status="open").exists()

    # When a clinician records that it was drawn elsewhere
    clock.move_to(at(date(2027, 1, 22), 10))
    with django_capture_on_commit_callbacks(execute=True):
        response = clinician_api.post(
            f"/api/lab-rechecks/{recheck(regimen).pk}/complete/", {"note": "drawn at the GP"}, format="json"
        )

    # Then the overdue-test alert resolves
    assert response.status_code == 200, response.json()
    assert (
        not Alert.objects.filter(patient=regimen.patient, kind="lab_recheck_overdue")
        .exclude(status="resolved")
        .exists()
    )
