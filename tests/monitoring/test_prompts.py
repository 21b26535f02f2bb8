"""RULES S-7 and S-14 as §10 V-15 reads them: INFO prompts on the patient record and the lab-request view
(GET /api/patients/{id}/prompts/). They never change a dose and open no alert."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from notifications.models import Alert
from patients.models import PatientFact
from regimens import services
from regimens.models import Protocol
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

TODAY = "2026-12-01 09:00:00+00:00"


def codes(api: APIClient, patient: Any) -> list[str]:
    with time_machine.travel(TODAY, tick=False):
        response = api.get(f"/api/patients/{patient.pk}/prompts/")
    assert response.status_code == 200, response.json()
    return [p["code"] for p in response.json() if p["code"] != "ethnicity_reference_ranges"]


@pytest.mark.parametrize(("birth_date", "prompted"), [(date(1951, 12, 1), True), (date(1951, 12, 2), False)])
def test_it_prompts_from_the_75th_birthday(api: APIClient, clinic: Any, birth_date: date, prompted: bool) -> None:
    patient = PatientFactory(clinic=clinic, birth_date=birth_date, deficiency_cause="diet")

    assert codes(api, patient) == (["age_75_or_over"] if prompted else [])


def test_the_age_prompt_is_info_on_s7_and_says_no_dose_change(api: APIClient, clinic: Any) -> None:
    patient = PatientFactory(clinic=clinic, birth_date=date(1940, 1, 1))

    with time_machine.travel(TODAY, tick=False):
        [prompt] = [p for p in api.get(f"/api/patients/{patient.pk}/prompts/").json() if p["rule"] == "S-7"]

    assert (prompt["severity"], prompt["details"]["age"]) == ("info", 86)
    assert "No change to the dose" in prompt["message"]


@pytest.mark.parametrize(
    ("values", "prompted"),
    [
        ({"onset_date": date(2026, 9, 1)}, True),
        ({"onset_date": date(2026, 1, 1), "end_date": date(2026, 10, 1)}, False),  # ended
        ({"absent": True}, False),  # checked: not pregnant
    ],
)
def test_it_asks_for_active_b12_in_pregnancy(
    api: APIClient, patient: Any, values: dict[str, Any], prompted: bool
) -> None:
    PatientFact.objects.create(patient=patient, kind="pregnancy", **values)

    assert codes(api, patient) == (["pregnancy_active_b12"] if prompted else [])


@pytest.mark.parametrize(("cause", "prompted"), [("nitrous_oxide", True), ("diet", False)])
def test_it_asks_for_homocysteine_or_mma_after_nitrous_oxide(
    api: APIClient, clinic: Any, cause: str, prompted: bool
) -> None:
    patient = PatientFactory(clinic=clinic, deficiency_cause=cause)

    assert codes(api, patient) == (["nitrous_oxide_homocysteine_or_mma"] if prompted else [])


def test_the_ethnicity_note_is_on_every_record(api: APIClient, patient: Any) -> None:
    with time_machine.travel(TODAY, tick=False):
        prompts = api.get(f"/api/patients/{patient.pk}/prompts/").json()

    [note] = [p for p in prompts if p["code"] == "ethnicity_reference_ranges"]
    assert (note["rule"], note["severity"]) == ("S-14", "info")
    assert "Black ethnicity" in note["message"]


def test_prompts_never_change_doses_or_open_alerts(api: APIClient, clinic: Any) -> None:
    # Given an 80-year-old and a pregnant 30-year-old, both after nitrous oxide, starting the same regimen
    old = PatientFactory(clinic=clinic, birth_date=date(1946, 1, 1), deficiency_cause="nitrous_oxide")
    young = PatientFactory(clinic=clinic, birth_date=date(1996, 1, 1), deficiency_cause="nitrous_oxide")
    PatientFact.objects.create(patient=young, kind="pregnancy")
    plans = []
    for who in (old, young):
        with time_machine.travel(TODAY, tick=False):
            regimen = services.regimen_start(
                patient=who, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=date(2027, 1, 4)
            )
        plans.append([(d.due_date, d.dose_mcg, d.route) for d in regimen.doses.order_by("phase_index", "sequence")])

    assert codes(api, old) == ["age_75_or_over", "nitrous_oxide_homocysteine_or_mma"]
    assert codes(api, young) == ["pregnancy_active_b12", "nitrous_oxide_homocysteine_or_mma"]
    assert plans[0] == plans[1]
    assert Alert.objects.filter(patient__in=[old, young]).count() == 0


def test_prompts_follow_the_clinic_boundary(api: APIClient, other_patient: Any, anon_api: APIClient) -> None:
    assert api.get(f"/api/patients/{other_patient.pk}/prompts/").status_code == 404
    assert anon_api.get(f"/api/patients/{other_patient.pk}/prompts/").status_code in (401, 403)
