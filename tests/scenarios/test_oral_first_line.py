"""Scenario (RULES R-ORAL-1, §8 Q2, §10 V-6): a patient with pernicious anaemia asks for tablets. Oral B12 is
not dependable for her cause, so starting an oral protocol is a hard stop that only a clinician's override
with a reason lets through; the override is recorded and opens a HIGH alert that stays until someone acts."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.conftest import client_for

pytestmark = pytest.mark.django_db

START = date(2027, 1, 4)


def at(on: date, hour: int = 9) -> str:
    return datetime(on.year, on.month, on.day, hour).isoformat() + "+00:00"


def run_sweeps(on: date) -> None:
    call_command("run_sweeps", "--at", at(on, 10), stdout=StringIO())


def test_a_pernicious_anaemia_patient_gets_oral_b12_only_with_a_reasoned_override(clinic: Any, clinician: Any) -> None:
    api: APIClient = client_for(clinician)
    with time_machine.travel(at(START), tick=False):
        # Given a patient registered with pernicious anaemia
        created = api.post(
            "/api/patients/",
            {
                "clinic": clinic.pk,
                "mrn": "PA-0001",
                "given_name": "Ada",
                "family_name": "Okafor",
                "birth_date": "1964-03-02",
                "sex": "female",
                "timezone": "Europe/London",
                "deficiency_cause": "pernicious_anemia",
            },
            format="json",
        )
        assert created.status_code == 201, created.json()
        patient_id = created.json()["id"]
        body: dict[str, Any] = {"patient": patient_id, "protocol": "diet-oral", "start_date": START.isoformat()}

        # When the clinician starts diet-oral (tablets, 100 mcg a day)
        refused = api.post("/api/regimens/", body, format="json")

        # Then it is refused with the oral first-line caution, and nothing is started
        assert refused.status_code == 400
        warnings = {w["code"]: w for w in refused.json()["warnings"]}
        assert "oral_first_line_caution" in warnings
        caution = warnings["oral_first_line_caution"]
        assert caution["rule"] == "R-ORAL-1"
        assert caution["details"]["cause"] == "pernicious_anemia"
        assert api.get(f"/api/regimens/?patient={patient_id}").json()["count"] == 0

        # When it is acknowledged without a reason
        acked = {**body, "acknowledge": sorted(warnings)}
        no_reason = api.post("/api/regimens/", acked, format="json")

        # Then it is refused naming override_reason
        assert no_reason.status_code == 400
        assert "override_reason" in no_reason.json()
        assert api.get(f"/api/regimens/?patient={patient_id}").json()["count"] == 0

        # When the clinician overrides with a reason
        reason = "Declines injections after counselling; review B12 and Hb at 4 weeks"
        started = api.post("/api/regimens/", {**acked, "override_reason": reason}, format="json")

    # Then the regimen starts with the override and its reason recorded
    assert started.status_code == 201, started.json()
    regimen = started.json()
    assert regimen["override_reason"] == reason
    assert "oral_first_line_caution" in regimen["acknowledged_warnings"]

    # and a HIGH oral_first_line_caution alert is open, carrying the reason and who overrode
    found = api.get(f"/api/alerts/?patient={patient_id}&kind=oral_first_line_caution").json()["results"]
    assert [(a["severity"], a["status"], a["rule_id"]) for a in found] == [("high", "open", "R-ORAL-1")]
    assert found[0]["evidence"]["override_reason"] == reason
    assert found[0]["evidence"]["acknowledged_by"] == clinician.get_username()

    # And over the next two weeks of sweeps the alert stays open: an override is never resolved by itself
    for offset in range(15):
        with time_machine.travel(at(START + timedelta(days=offset), 10), tick=False):
            run_sweeps(START + timedelta(days=offset))
    with time_machine.travel(at(START + timedelta(days=14), 12), tick=False):
        later = api.get(f"/api/alerts/?patient={patient_id}&kind=oral_first_line_caution").json()["results"]
    assert [a["status"] for a in later] == ["open"]


def test_a_patient_with_neurological_symptoms_is_not_started_on_tablets_without_a_reason(
    clinic: Any, clinician: Any, nurse: Any
) -> None:
    from tests.factories import PatientFactory

    patient = PatientFactory(clinic=clinic, deficiency_cause="metformin")
    api = client_for(clinician)
    with time_machine.travel(at(START), tick=False):
        # Given the nurse records neurological symptoms
        fact = client_for(nurse).post(
            "/api/patient-facts/",
            {"patient": patient.pk, "kind": "neuro_symptoms", "onset_date": "2026-12-20", "note": "numb feet"},
            format="json",
        )
        assert fact.status_code == 201, fact.json()

        # When high-dose oral B12 is started
        body = {"patient": patient.pk, "protocol": "oral-high-dose", "start_date": START.isoformat()}
        refused = api.post("/api/regimens/", body, format="json")

        # Then it is the same hard stop, for neurological involvement
        assert refused.status_code == 400
        [warning] = refused.json()["warnings"]
        assert warning["code"] == "oral_first_line_caution"
        assert warning["details"]["neurological_involvement"] is True

        # and IM hydroxocobalamin for neurological involvement starts with no warning
        im = api.post("/api/regimens/", {**body, "protocol": "hydroxo-uk-neuro"}, format="json")
    assert im.status_code == 201, im.json()
    assert im.json()["acknowledged_warnings"] == []
