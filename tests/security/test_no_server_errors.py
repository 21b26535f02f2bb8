"""Issue 12: every input that answered 500 answers a 4xx naming the field (each reproduced first)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from patients.models import LabResult, Patient
from tests.factories import LabResultFactory, MedicationFactory, PatientFactory

pytestmark = pytest.mark.django_db


def upload(api: APIClient, text: str) -> Any:
    file = SimpleUploadedFile("results.csv", text.encode(), content_type="text/csv")
    return api.post("/api/lab-results/import/", {"file": file}, format="multipart")


HEADER = "mrn,analyte,value,unit,collected_at\n"


def nested_preview(depth: int) -> str:
    options = '{"a":' * depth + "{}" + "}" * depth
    return '{"protocol": "hydroxo-uk-standard", "start_date": "2026-12-01", "options": ' + options + "}"


@pytest.mark.parametrize("body", ["null", "true", "1", "[]", '["stop_date"]', '"x"'])
def test_patching_a_medication_with_a_body_that_is_not_an_object_is_a_400(
    clinician_api: APIClient, patient: Patient, body: str
) -> None:
    medication = MedicationFactory(patient=patient)
    response = clinician_api.patch(
        f"/api/medications/{medication.pk}/", data=body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert "non_field_errors" in response.json() or "detail" in response.json()


def test_collected_at_in_year_one_is_a_400_naming_it(api: APIClient, patient: Patient) -> None:
    response = api.post(
        "/api/lab-results/",
        {"patient": patient.pk, "analyte": "hemoglobin", "value": "120", "unit": "g/L",
         "collected_at": "0001-01-01T00:00:00+00:00"},
    )
    assert response.status_code == 400
    assert "collected_at" in response.json()


def test_collected_at_in_year_one_in_a_csv_is_a_row_error(api: APIClient, clinic: Any) -> None:
    PatientFactory(clinic=clinic, mrn="A100")
    response = upload(api, HEADER + "A100,hemoglobin,120,g/L,0001-01-01T00:00:00+00:00\n")
    assert response.status_code == 400, response.content
    assert "collected_at" in json.dumps(response.json())


@pytest.mark.parametrize("param", ["collected_to", "collected_from"])
@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01", "２０２６-１１-０２"])
def test_a_date_filter_at_the_edge_of_the_calendar_is_a_400(
    api: APIClient, patient: Patient, param: str, value: str
) -> None:
    LabResultFactory(patient=patient)  # with a row the filter computes day boundaries (the overflow)
    response = api.get("/api/lab-results/", {param: value})
    assert response.status_code == 400, response.content
    assert param in response.json()


@pytest.mark.parametrize("param", ["due_to", "due_from"])
def test_a_dose_date_filter_outside_plausible_years_is_a_400(api: APIClient, param: str) -> None:
    response = api.get(f"/api/doses/?{param}=9999-12-31")
    assert response.status_code == 400, response.content
    assert param in response.json()


def test_preview_options_nested_thousands_deep_is_a_400(clinician_api: APIClient) -> None:
    body = nested_preview(5000)
    response = clinician_api.post("/api/schedule/preview/", data=body, content_type="application/json")
    assert response.status_code == 400, response.status_code


@pytest.mark.parametrize("column", ["lab", "note", "mrn"])
def test_a_nul_byte_in_a_csv_cell_is_refused_naming_the_file(
    api: APIClient, clinic: Any, clock: Any, column: str
) -> None:
    PatientFactory(clinic=clinic, mrn="A100")
    cells = {"mrn": "A100", "lab": "RLBUHT", "note": "fasting"}
    cells[column] = cells[column][:2] + "\x00" + cells[column][2:]
    text = "mrn,analyte,value,unit,collected_at,lab,note\n" + (
        f"{cells['mrn']},hemoglobin,120,g/L,2026-11-02T09:30:00+00:00,{cells['lab']},{cells['note']}\n"
    )
    response = upload(api, text)
    assert response.status_code == 400, response.content
    assert "NUL" in json.dumps(response.json())
    assert not LabResult.objects.exists()


@pytest.mark.parametrize("dose", [10**12, 5_000_000])
def test_a_huge_dose_override_is_a_400_naming_it(clinician_api: APIClient, patient: Patient, dose: int) -> None:
    body = {
        "protocol": "hydroxo-uk-standard",
        "start_date": "2026-12-01",
        "options": {"phases": {"maintenance": {"dose_mcg": dose}}, "override_reason": "clinical judgement, see notes"},
    }
    response = clinician_api.post("/api/schedule/preview/", body)
    assert response.status_code == 400, response.content
    assert "options.phases.maintenance.dose_mcg" in response.json()
    response = clinician_api.post("/api/regimens/", {**body, "patient": patient.pk})
    assert response.status_code == 400, response.content
    assert "options.phases.maintenance.dose_mcg" in response.json()


def test_a_moderately_nested_body_is_refused_by_depth_not_by_the_parser(clinician_api: APIClient) -> None:
    body = nested_preview(30)
    response = clinician_api.post("/api/schedule/preview/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "nests more than" in response.json()["detail"][0]


@pytest.mark.parametrize("value", ["１２０", "١٢٠"])
def test_a_lab_value_in_non_ascii_digits_is_refused(api: APIClient, patient: Patient, clock: Any, value: str) -> None:
    response = api.post(
        "/api/lab-results/",
        {"patient": patient.pk, "analyte": "hemoglobin", "value": value, "unit": "g/L",
         "collected_at": "2026-11-02T09:30:00+00:00"},
    )
    assert response.status_code == 400, response.content
    assert "value" in response.json()
    assert not LabResult.objects.exists()


def test_a_number_field_in_non_ascii_digits_is_refused(clinician_api: APIClient, clock: Any) -> None:
    body = {"protocol": "hydroxo-uk-standard", "start_date": "２０２６-１２-０１"}
    response = clinician_api.post("/api/schedule/preview/", body)
    assert response.status_code == 400
    assert "0-9" in response.json()["start_date"][0]


def test_an_offset_no_place_uses_is_refused(api: APIClient, patient: Patient, clock: Any, clinic: Any) -> None:
    response = api.post(
        "/api/lab-results/",
        {"patient": patient.pk, "analyte": "hemoglobin", "value": "120", "unit": "g/L",
         "collected_at": "2026-11-02T09:30:00+23:59"},
    )
    assert response.status_code == 400, response.content
    assert "offset" in response.json()["collected_at"][0]
    PatientFactory(clinic=clinic, mrn="A100")
    response = upload(api, HEADER + "A100,hemoglobin,120,g/L,2026-11-02T09:30:00+23:59\n")
    assert response.status_code == 400
    assert "offset" in json.dumps(response.json())


@pytest.mark.parametrize("birth_date", ["0001-01-01", "1800-05-01"])
def test_a_birth_date_before_1900_is_refused(admin_api: APIClient, clinic: Any, birth_date: str) -> None:
    response = admin_api.post(
        "/api/patients/",
        {"clinic": clinic.pk, "mrn": "Z1", "given_name": "Ada", "family_name": "Lovelace",
         "birth_date": birth_date, "sex": "female"},
    )
    assert response.status_code == 400, response.content
    assert "1900" in response.json()["birth_date"][0]
