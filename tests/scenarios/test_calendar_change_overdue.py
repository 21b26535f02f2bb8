"""Scenario (RULES §10 V-11, S-4): a monthly maintenance dose is missed; a week later the clinic stops
opening on that weekday. The missed dose keeps its due date and stays overdue, and S-4 keeps counting from
that original date, also after a "did not attend" record plans a replacement."""

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

pytestmark = pytest.mark.django_db

WEDNESDAY = date(2027, 1, 6)


def morning(on: date) -> datetime:
    return datetime(on.year, on.month, on.day, 9, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(morning(WEDNESDAY - timedelta(days=2)), tick=False) as traveller:
        yield traveller


def sweep_until(clock: Any, last: date) -> None:
    """Run every sweep once a day, each morning, up to and including `last`."""
    on = datetime.now(UTC).date()
    while on <= last:
        clock.move_to(morning(on))
        call_command("run_sweeps", at=morning(on).isoformat(), stdout=StringIO())
        on += timedelta(days=1)


def overdue_alert(patient: Patient) -> Alert | None:
    return Alert.objects.filter(patient=patient, kind="dose_overdue").exclude(status="resolved").first()


def test_an_overdue_dose_stays_overdue_when_the_clinic_closes_that_weekday(
    clock: Any, patient: Patient, clinic: Any, clinician_api: APIClient, admin_api: APIClient, nurse_api: APIClient
) -> None:
    # A clinician starts monthly IM maintenance (ileal resection) on Wednesday 6 January
    created = clinician_api.post(
        "/api/regimens/",
        {"patient": patient.pk, "protocol": "ileal-resection", "start_date": WEDNESDAY.isoformat()},
        format="json",
    )
    assert created.status_code == 201, created.json()
    regimen_id = created.json()["id"]
    first = next(d for d in created.json()["doses"] if d["sequence"] == 1)
    assert first["due_date"] == "2027-01-06"

    # The patient does not come on the 6th; a week later the dose is overdue
    sweep_until(clock, date(2027, 1, 13))
    assert nurse_api.get(f"/api/doses/{first['id']}/").json()["overdue"] is True

    # On Wednesday 13th the clinic admin closes the clinic on Wednesdays
    response = admin_api.post(f"/api/clinics/{clinic.pk}/calendar/", {"open_weekdays": [0, 1, 3, 4]}, format="json")
    assert response.status_code == 200, response.json()

    # The missed dose keeps its row and its due date: still overdue, not moved to Thursday
    dose = nurse_api.get(f"/api/doses/{first['id']}/").json()
    assert (dose["status"], dose["due_date"], dose["overdue"]) == ("planned", "2027-01-06", True)
    # and the later monthly doses, all in the future, follow the new calendar (6 February is a Saturday -> Monday)
    later = nurse_api.get(f"/api/doses/?regimen={regimen_id}&status=planned").json()["results"]
    assert all(date.fromisoformat(d["due_date"]).weekday() != 2 for d in later if d["id"] != first["id"])

    # S-4 counts from 6 January: nothing at 14 days (the 20th), MEDIUM at 15 (the 21st)
    sweep_until(clock, date(2027, 1, 20))
    assert overdue_alert(patient) is None
    sweep_until(clock, date(2027, 1, 21))
    alert = overdue_alert(patient)
    assert alert is not None and alert.severity == "medium"
    assert (alert.evidence["due_date"], alert.evidence["days_overdue"]) == ("2027-01-06", 15)

    # On the 22nd the nurse records that the patient did not attend: a replacement is planned for Monday 25th
    clock.move_to(morning(date(2027, 1, 22)))
    not_given = nurse_api.post(f"/api/doses/{first['id']}/not-given/", {"reason": "did not attend"}, format="json")
    assert not_given.status_code == 200, not_given.json()
    replacement = next(
        d
        for d in nurse_api.get(f"/api/doses/?regimen={regimen_id}&status=planned").json()["results"]
        if d["sequence"] == 1
    )
    assert replacement["due_date"] == "2027-01-25"

    # S-4 goes on counting from the original 6 January, not from the replacement: HIGH after 28 days
    sweep_until(clock, date(2027, 2, 3))
    alert = overdue_alert(patient)
    assert alert is not None and alert.severity == "medium"
    sweep_until(clock, date(2027, 2, 4))
    alert = overdue_alert(patient)
    assert alert is not None and alert.severity == "high"
    assert (alert.evidence["due_date"], alert.evidence["days_overdue"]) == ("2027-01-06", 29)

    # Once the replacement is given, the alert resolves on the next sweep
    clock.move_to(morning(date(2027, 2, 5)))
    given = nurse_api.post(
        f"/api/doses/{replacement['id']}/administer/", {"administered_at": "2027-02-05T08:30:00+00:00"}, format="json"
    )
    assert given.status_code == 200, given.json()
    sweep_until(clock, date(2027, 2, 5))
    assert overdue_alert(patient) is None
