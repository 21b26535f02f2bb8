"""Patient stories for S-3 (RULES §4 S-3 as revised by §10 V-7), walked through the public API day by day:

- anaemia, low platelets and a high LDH with a low B12 taken before treatment -> `pseudo_tma_pattern`;
- the same pattern with a normal pre-treatment B12 -> `tma_pattern_b12_not_low` ("exclude TTP urgently");
- the same results collected 10 days apart -> no S-3 alert of either kind.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.conftest import client_for
from tests.factories import PatientFactory
from tests.timeline import T0, day, noon

S3_KINDS = ("pseudo_tma_pattern", "tma_pattern_b12_not_low")


class Story:
    """One patient's clinic days: the clinician starts treatment, the nurse gives doses and enters results,
    the sweeps run each day, and the alerts are read back through the API."""

    def __init__(self, clinic: Any, clinician: Any, nurse: Any) -> None:
        self.patient = PatientFactory(clinic=clinic, sex="female")
        self.clinician: APIClient = client_for(clinician)
        self.nurse: APIClient = client_for(nurse)
        self.traveller = time_machine.travel(noon(day(-3)), tick=False)
        self.clock = self.traveller.start()
        self.today = day(-3)
        self.now = noon(day(-3))

    def close(self) -> None:
        self.traveller.stop()

    def go_to(self, on: date) -> None:
        """Move the clock to 09:00 UTC of `on`, running the sweeps on every day passed."""
        while self.today < on:
            self.today += timedelta(days=1)
            self.now = datetime(self.today.year, self.today.month, self.today.day, 9, tzinfo=UTC)
            self.clock.move_to(self.now)
            call_command("run_sweeps", "--at", self.now.isoformat(), stdout=StringIO())

    def result(self, analyte: str, value: str, unit: str) -> None:
        collected = self.now - timedelta(minutes=30)
        body = {"patient": self.patient.pk, "analyte": analyte, "value": value, "unit": unit}
        response = self.nurse.post("/api/lab-results/", {**body, "collected_at": collected.isoformat()}, format="json")
        assert response.status_code == 201, response.json()

    def start_treatment(self) -> None:
        """On T0 the clinician starts the UK standard regimen and the nurse gives the first dose (T0)."""
        self.go_to(T0)
        body = {"patient": self.patient.pk, "protocol": "hydroxo-uk-standard", "start_date": T0.isoformat()}
        response = self.clinician.post("/api/regimens/", body, format="json")
        assert response.status_code == 201, response.json()
        doses = self.nurse.get(f"/api/doses/?regimen={response.json()['id']}&status=planned").json()["results"]
        first = min(doses, key=lambda d: (d["due_date"], d["id"]))
        given = self.nurse.post(
            f"/api/doses/{first['id']}/administer/",
            {"administered_at": (self.now - timedelta(minutes=5)).isoformat()},
            format="json",
        )
        assert given.status_code == 200, given.json()

    def tma_results(self) -> None:
        self.result("hemoglobin", "8.5", "g/dL")  # 85 g/L, female LLN 120
        self.result("platelets", "60", "10^9/L")  # LLN 150
        self.result("ldh", "3000", "U/L")  # ULN 222

    def s3_alerts(self) -> dict[str, dict[str, Any]]:
        rows = self.nurse.get(f"/api/alerts/?patient={self.patient.pk}").json()["results"]
        return {row["kind"]: row for row in rows if row["kind"] in S3_KINDS and row["status"] != "resolved"}


@pytest.fixture
def story(builtin_protocols: None, clinic: Any, clinician: Any, nurse: Any) -> Any:
    walk = Story(clinic, clinician, nurse)
    yield walk
    walk.close()


def test_it_warns_of_pseudo_tma_with_a_low_b12_taken_before_treatment(story: Story) -> None:
    story.result("b12_total", "120", "ng/L")  # day -3: deficient (NG239 < 180)
    story.start_treatment()
    story.go_to(day(2))
    story.result("b12_total", "1200", "ng/L")  # on IM treatment: falsely reassuring, not read (S-13)
    story.go_to(day(3))
    story.tma_results()
    story.go_to(day(5))

    alerts = story.s3_alerts()

    assert set(alerts) == {"pseudo_tma_pattern"}
    alert = alerts["pseudo_tma_pattern"]
    assert alert["severity"] == "critical" and alert["rule_id"] == "S-3"
    assert "Possible B12-deficiency pseudo-TMA" in alert["message"] and "B12: deficient." in alert["message"]
    assert "LDH 3000 U/L" in alert["message"]
    status = story.nurse.get(f"/api/patients/{story.patient.pk}/b12-status/").json()["status"]
    assert status == alert["evidence"]["b12"] == "deficient"


def test_the_same_pattern_with_a_normal_b12_before_treatment_says_exclude_ttp(story: Story) -> None:
    story.result("b12_total", "500", "ng/L")  # day -3: deficiency unlikely (> 350)
    story.start_treatment()
    story.go_to(day(3))
    story.tma_results()
    story.go_to(day(5))

    alerts = story.s3_alerts()

    assert set(alerts) == {"tma_pattern_b12_not_low"}
    alert = alerts["tma_pattern_b12_not_low"]
    assert alert["severity"] == "critical" and alert["rule_id"] == "S-3"
    assert alert["message"].startswith("TMA pattern without low B12: exclude TTP urgently; ADAMTS13")


def test_results_10_days_apart_are_not_one_pattern(story: Story) -> None:
    story.result("b12_total", "120", "ng/L")
    story.start_treatment()
    story.go_to(day(1))
    story.result("hemoglobin", "8.5", "g/dL")
    story.result("platelets", "60", "10^9/L")
    story.go_to(day(11))
    story.result("ldh", "3000", "U/L")  # 10 days after the Hb and platelets: more than 7 [P]
    story.go_to(day(13))

    assert story.s3_alerts() == {}
