"""Scenario: platelets fall to a critical value on treatment (A-P3, CRITICAL), walked through the public API
day by day with the sweeps running.

1. The count recovers: the alert does not close by itself; it shows "target met" with the recovering result
   until a nurse acknowledges it with a note, which closes it (RULES §10 V-2).
2. A nurse acknowledges the alert, then the count falls further: the alert is open again and the staff
   hear about it again, as if it were new (RULES §10 V-3).

The baseline is low (90 ×10⁹/L) and the fall goes below 20, so A-P3 fires both under §3.4 as first written
(only with a baseline below the LLN) and as revised by V-4 (whatever the baseline).
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

from patients.models import Clinic, Patient, Role
from tests.conftest import client_for
from tests.factories import PatientFactory, staff_user
from tests.timeline import T0, day

pytestmark = pytest.mark.django_db


def at(on: date, hour: int, minute: int = 0) -> datetime:
    return datetime(on.year, on.month, on.day, hour, minute, tzinfo=UTC)


class Story:
    """One patient of one clinic, a nurse and a clinician, and a clock the story moves."""

    def __init__(self, clinic: Clinic, traveller: Any, capture: Any) -> None:
        self.clinic = clinic
        self.traveller = traveller
        self.capture = capture
        self.nurse = staff_user(clinic, Role.NURSE, username="nurse-ana")
        self.clinician = staff_user(clinic, Role.CLINICIAN, username="dr-ben")
        self.nurse_api: APIClient = client_for(self.nurse)
        self.clinician_api: APIClient = client_for(self.clinician)
        self.patient: Patient = PatientFactory(clinic=clinic, sex="female")

    def move_to(self, when: datetime) -> None:
        self.traveller.move_to(when)

    def sweeps_until(self, last: date, hour: int = 7) -> None:
        """Run every sweep at `hour` on each day from today to `last`, as the scheduler would."""
        on = datetime.now(UTC).date()
        while on <= last:
            self.move_to(at(on, hour))
            call_command("run_sweeps", "--at", at(on, hour).isoformat(), stdout=StringIO())
            on += timedelta(days=1)

    def platelets(self, value: str, on: date) -> dict[str, Any]:
        """The lab result arrives at 14:00 for a sample collected at 09:00; the evaluation runs on commit."""
        self.move_to(at(on, 14))
        body = {
            "patient": self.patient.pk,
            "analyte": "platelets",
            "value": value,
            "unit": "10^9/L",
            "collected_at": at(on, 9).isoformat(),
        }
        with self.capture(execute=True):
            response = self.nurse_api.post("/api/lab-results/", body, format="json")
        assert response.status_code == 201, response.json()
        return dict(response.json())

    def start_treatment(self) -> None:
        """The clinician starts hydroxocobalamin on T0 and the nurse gives the first injection (T0)."""
        self.move_to(at(T0, 10))
        body = {"patient": self.patient.pk, "protocol": "hydroxo-uk-standard", "start_date": T0.isoformat()}
        with self.capture(execute=True):
            started = self.clinician_api.post("/api/regimens/", body, format="json")
        assert started.status_code == 201, started.json()
        doses = self.nurse_api.get(f"/api/doses/?regimen={started.json()['id']}").json()
        rows = doses["results"] if isinstance(doses, dict) else doses
        first = min(rows, key=lambda d: d["due_date"])
        assert first["due_date"] == T0.isoformat()
        self.move_to(at(T0, 11))
        given = {"administered_at": at(T0, 10, 30).isoformat(), "lot_number": "HX1"}
        with self.capture(execute=True):
            response = self.nurse_api.post(f"/api/doses/{first['id']}/administer/", given, format="json")
        if response.status_code == 400 and "warnings" in response.json():  # S-2 at a low count: acknowledged
            codes = [w["code"] for w in response.json()["warnings"]]
            with self.capture(execute=True):
                response = self.nurse_api.post(
                    f"/api/doses/{first['id']}/administer/", {**given, "acknowledge": codes}, format="json"
                )
        assert response.status_code == 200, response.json()

    def critical_alert(self) -> dict[str, Any]:
        listed = self.nurse_api.get(f"/api/alerts/?patient={self.patient.pk}&kind=platelets_critical").json()
        [alert] = listed["results"]
        return dict(alert)

    def inbox(self, user: Any) -> list[dict[str, Any]]:
        response = client_for(user).get("/api/notifications/inbox/")
        assert response.status_code == 200, response.json()
        body = response.json()
        return [m for m in (body["results"] if isinstance(body, dict) else body) if m["purpose"] == "alert"]


@pytest.fixture
def story(clinic: Clinic, django_capture_on_commit_callbacks: Any) -> Iterator[Story]:
    with time_machine.travel(at(T0 - timedelta(days=1), 8), tick=False) as traveller:
        yield Story(clinic, traveller, django_capture_on_commit_callbacks)


def test_a_recovered_critical_fall_stays_open_with_target_met_until_a_nurse_acknowledges_it(story: Story) -> None:
    # Given a patient with a low baseline count, started on treatment
    story.platelets("90", T0 - timedelta(days=1))
    story.start_treatment()
    story.sweeps_until(day(4))

    # When the day-5 count is 15 x10^9/L
    story.platelets("15", day(5))

    # Then a critical platelets alert is open and every member of staff has it in their inbox
    alert = story.critical_alert()
    assert (alert["severity"], alert["status"], alert["rule_id"]) == ("critical", "open", "A-P3")
    assert alert["target_met"] is None
    for person in (story.nurse, story.clinician):
        [message] = story.inbox(person)
        assert message["alert"] == alert["id"] and "[CRITICAL]" in message["subject"]

    # When, days later, the count has recovered to 120
    story.sweeps_until(day(8))
    recovered = story.platelets("120", day(8))
    story.sweeps_until(day(10))

    # Then the alert is still open, showing that the target was met, and by which result
    alert = story.critical_alert()
    assert alert["status"] == "open" and alert["resolved"] is None
    assert alert["target_met"] == {
        "at": "2027-01-12T14:00:00Z",
        "evidence": {
            "id": recovered["id"],
            "analyte": "platelets",
            "value": "120",
            "unit": "10^9/L",
            "collected_on": "2027-01-12",
        },
    }
    open_ids = [a["id"] for a in story.nurse_api.get("/api/alerts/?status=open").json()["results"]]
    assert alert["id"] in open_ids

    # When the nurse acknowledges it with a note of what was done
    story.move_to(at(day(10), 9))
    done = story.nurse_api.post(
        f"/api/alerts/{alert['id']}/acknowledge/", {"note": "Count recovered; reviewed with Dr Ben"}, format="json"
    )

    # Then it is closed, with who acknowledged it and why it closed
    assert done.status_code == 200, done.json()
    closed = done.json()
    assert closed["status"] == "resolved"
    assert closed["acknowledged"]["by"] == "nurse-ana"
    assert closed["acknowledged"]["note"] == "Count recovered; reviewed with Dr Ben"
    assert closed["resolved"]["resolution"].startswith("target met (platelets 120 10^9/L on 2027-01-12)")
    story.sweeps_until(day(12))
    assert story.critical_alert()["status"] == "resolved"


def test_a_further_fall_reopens_an_acknowledged_critical_alert_and_staff_hear_about_it_again(story: Story) -> None:
    # Given a patient whose count fell to 15 on day 5, and a nurse who acknowledged the alert
    story.platelets("90", T0 - timedelta(days=1))
    story.start_treatment()
    story.sweeps_until(day(4))
    story.platelets("15", day(5))
    alert = story.critical_alert()
    story.move_to(at(day(5), 14, 20))
    acknowledged = story.nurse_api.post(
        f"/api/alerts/{alert['id']}/acknowledge/", {"note": "Admitted; haematology called"}, format="json"
    )
    assert acknowledged.status_code == 200 and acknowledged.json()["status"] == "acknowledged"
    story.sweeps_until(day(6))
    # The subject names no patient and no diagnosis (issue 12): the body carries them, for staff.
    [message] = story.inbox(story.clinician)
    assert message["subject"] == f"[CRITICAL] New Cobalt alert at {story.patient.clinic.name}"
    assert alert["patient_name"] in message["body"] and "platelets_critical" in message["body"]

    # When the next count falls further, to 8
    story.platelets("8", day(6))

    # Then the same alert is open again, no longer acknowledged, and says when it reopened
    reopened = story.critical_alert()
    assert reopened["id"] == alert["id"]
    assert (reopened["status"], reopened["acknowledged"]) == ("open", None)
    assert reopened["reopened_at"] == "2027-01-10T14:00:00Z"
    assert "8" in reopened["message"]

    # And every member of staff has a second message in their inbox, saying who acknowledged it before
    for person in (story.nurse, story.clinician):
        messages = story.inbox(person)
        assert len(messages) == 2
        newest = max(messages, key=lambda m: m["due_at"])
        assert newest["alert"] == alert["id"] and "REOPENED" in newest["subject"]
        assert "acknowledged by nurse-ana" in newest["body"] and "Admitted; haematology called" in newest["body"]

    # And the same evidence again (the sweeps, another evaluation) changes nothing
    story.sweeps_until(day(7), hour=6)
    story.move_to(at(day(7), 6, 30))
    assert story.critical_alert()["reopened_at"] == "2027-01-10T14:00:00Z"
    assert len(story.inbox(story.nurse)) == 2

    # And the nurse can acknowledge it again, which it needs (the target is not met)
    again = story.nurse_api.post(
        f"/api/alerts/{alert['id']}/acknowledge/", {"note": "Platelet transfusion given"}, format="json"
    )
    assert again.status_code == 200 and again.json()["status"] == "acknowledged"
