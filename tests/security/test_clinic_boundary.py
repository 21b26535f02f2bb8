"""Issue 12: filters do not tell another clinic's ids from ids that do not exist."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.factories import LabResultFactory, PatientFactory
from tests.timeline import start_treatment

pytestmark = pytest.mark.django_db

ROUTES = [
    "/api/doses/",
    "/api/lab-rechecks/",
    "/api/regimens/",
    "/api/lab-results/",
    "/api/medications/",
    "/api/patient-facts/",
    "/api/alerts/",
]


@pytest.mark.parametrize("route", ROUTES)
def test_another_clinics_patient_id_is_the_same_400_as_an_unknown_id(
    api: APIClient, other_clinic: Any, route: str
) -> None:
    other = PatientFactory(clinic=other_clinic)
    LabResultFactory(patient=other)
    unknown = api.get(route, {"patient": other.pk + 1000})
    theirs = api.get(route, {"patient": other.pk})
    assert unknown.status_code == theirs.status_code == 400, (unknown.content, theirs.content)
    assert theirs.json() == unknown.json()
    assert list(theirs.json()) == ["patient"]


def test_another_clinics_regimen_id_is_the_same_400_as_an_unknown_id(
    api: APIClient, other_clinic: Any, clock: Any
) -> None:
    regimen = start_treatment(PatientFactory(clinic=other_clinic))
    unknown = api.get("/api/doses/", {"regimen": regimen.pk + 1000})
    theirs = api.get("/api/doses/", {"regimen": regimen.pk})
    assert unknown.status_code == theirs.status_code == 400
    assert theirs.json() == unknown.json()


def test_own_patient_filter_still_works(api: APIClient, patient: Any) -> None:
    LabResultFactory(patient=patient)
    response = api.get("/api/lab-results/", {"patient": patient.pk})
    assert response.status_code == 200
    assert response.json()["count"] == 1
