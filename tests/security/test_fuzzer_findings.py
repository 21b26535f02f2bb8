"""Issue 12, item 8: what schemathesis' full set of checks found (tests/tracker/test_api_fuzz.py), each
reproduced here first. Requests the schema calls invalid were answered 200 as if a filter had been applied,
an undeclared method on a route with query parameters answered 400 instead of 405, and the schema said less
than the API enforces (ids from 1, non-empty lists, the years 1900-2199, the ordering's syntax)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from patients.models import Patient
from tracker.api import PLAUSIBLE_YEAR_PATTERN
from tracker.schema import TEXT, TEXT_NOT_BLANK

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)  # type: ignore[no-any-return]


def parameter(schema: dict[str, Any], path: str, name: str, method: str = "get") -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in schema["paths"][path][method]["parameters"] if p["name"] == name)
    return found["schema"]  # type: ignore[no-any-return]


# --- unsupported_method: 405 with Allow, before the query parameters are read ------------------------------


@pytest.mark.parametrize("path", ["/api/dashboard/?clinic=1", "/api/patients/{id}/trends/?analytes=hemoglobin"])
def test_a_method_the_route_lacks_is_a_405_with_allow_even_with_query_parameters(
    admin_api: APIClient, patient: Patient, path: str
) -> None:
    response = admin_api.generic("TRACE", path.format(id=patient.pk))
    assert response.status_code == 405, response.content
    assert "GET" in response["Allow"]


# --- negative_data_rejection: invalid filters are refused, not read as "no filter" --------------------------


@pytest.mark.parametrize(
    "query",
    [
        "/api/alerts/?clinic=0.5",
        "/api/alerts/?clinic=0",
        "/api/notifications/?patient=0.5",
        "/api/doses/?clinic=-1",
        "/api/medications/?active=null",
        "/api/patient-facts/?absent=maybe",
        "/api/protocols/?is_builtin=null",
        "/api/doses/?overdue=2",
        "/api/doses/?due_to=",
        "/api/lab-results/?collected_to=",
        "/api/lab-rechecks/?patient=",
        "/api/doses/?status=",
        "/api/patients/?ordering=family_name,,id",
        "/api/patients/?ordering=%20family_name",
    ],
)
def test_an_invalid_filter_value_is_a_400_naming_the_parameter(api: APIClient, query: str) -> None:
    response = api.get(query)
    assert response.status_code == 400, response.content
    name = query.split("?")[1].split("=")[0]
    assert name in response.json()


def test_an_empty_query_parameter_of_a_single_route_is_a_400(api: APIClient, patient: Patient) -> None:
    response = api.get(f"/api/patients/{patient.pk}/plasmic/?since=")
    assert response.status_code == 400, response.content
    assert "since" in response.json()


@pytest.mark.parametrize(
    "query",
    [
        "/api/medications/?active=true",
        "/api/medications/?active=false",
        "/api/protocols/?is_builtin=true&active=true",
        "/api/doses/?overdue=false",
        "/api/lab-results/?interpretation=",  # "" is one of the documented choices (no interpretation)
        "/api/patients/?search=",
        "/api/patients/?ordering=-family_name,id",
        "/api/patients/?ordering=",
    ],
)
def test_valid_filters_still_work(api: APIClient, query: str) -> None:
    assert api.get(query).status_code == 200


def test_an_empty_free_text_parameter_means_not_given(api: APIClient, patient: Patient) -> None:
    assert api.get(f"/api/patients/{patient.pk}/trends/?analytes=").status_code == 200


def test_true_filters_filter(api: APIClient, patient: Patient) -> None:
    from tests.factories import MedicationFactory

    MedicationFactory(patient=patient, stop_date=None)
    assert api.get("/api/medications/?active=true").json()["count"] == 1
    assert api.get("/api/medications/?active=false").json()["count"] == 0


# --- positive_data_acceptance: the schema states what the API enforces ------------------------------------


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/alerts/", "clinic"),
        ("/api/alerts/", "patient"),
        ("/api/notifications/", "patient"),
        ("/api/doses/", "regimen"),
        ("/api/audit/", "person"),
        ("/api/audit/", "page"),
        ("/api/dashboard/", "clinic"),
    ],
)
def test_the_schema_says_ids_and_pages_start_at_1(schema: dict[str, Any], path: str, name: str) -> None:
    assert parameter(schema, path, name) == {"type": "integer", "minimum": 1}


def test_the_schema_states_the_audit_page_size_and_the_boolean_filters(schema: dict[str, Any]) -> None:
    assert parameter(schema, "/api/audit/", "page_size")["maximum"] == 500
    assert parameter(schema, "/api/doses/", "overdue") == {"type": "boolean"}


def test_the_schema_states_the_ordering_syntax_the_api_accepts(schema: dict[str, Any], api: APIClient) -> None:
    pattern = parameter(schema, "/api/patients/", "ordering")["pattern"]
    for value in ["", "mrn", "-family_name,id", "given_name,-birth_date,created_at"]:
        assert re.search(pattern, value), value
        assert api.get("/api/patients/", {"ordering": value}).status_code == 200
    for value in ["name", "mrn,", ",mrn", "mrn,,id", " mrn", "--mrn"]:
        assert not re.search(pattern, value), value
        assert api.get("/api/patients/", {"ordering": value}).status_code == 400


def test_the_schema_says_a_panel_needs_a_result_and_the_import_clinic_is_not_null(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    assert components["LabPanelCreateRequest"]["properties"]["results"]["minItems"] == 1
    assert not components["LabImportRequestRequest"]["properties"]["clinic"].get("nullable")


def test_the_schema_states_the_years_dates_and_times_may_have(schema: dict[str, Any], api: APIClient) -> None:
    components = schema["components"]["schemas"]
    assert components["LabResultCreateRequest"]["properties"]["collected_at"]["pattern"] == PLAUSIBLE_YEAR_PATTERN
    assert parameter(schema, "/api/doses/", "due_to")["pattern"] == PLAUSIBLE_YEAR_PATTERN
    for day, accepted in [("1900-01-01", True), ("2199-12-31", True), ("1899-12-31", False), ("2200-01-01", False)]:
        assert bool(re.search(PLAUSIBLE_YEAR_PATTERN, day)) is accepted
        assert (api.get("/api/doses/", {"due_to": day}).status_code == 200) is accepted


def test_the_schema_says_text_has_no_nul_and_a_required_text_is_not_only_spaces(
    schema: dict[str, Any], api: APIClient, patient: Patient
) -> None:
    components = schema["components"]["schemas"]
    required_text = components["PatientRequest"]["properties"]["family_name"]["pattern"]
    optional_text = components["PatientRequest"]["properties"]["phone"]["oneOf"][0]["pattern"]
    assert required_text == TEXT_NOT_BLANK and optional_text == TEXT
    assert "pattern" not in components["Patient"]["properties"]["family_name"]  # answers are not judged by it
    for value, accepted in [("Lovelace", True), (" Ada ", True), ("\t", False), ("\u3000 ", False), ("A\x00", False)]:
        assert bool(re.search(required_text, value)) is accepted
        response = api.patch(f"/api/patients/{patient.pk}/", {"family_name": value}, format="json")
        assert (response.status_code == 200) is accepted, response.content
    assert re.search(optional_text, "") and not re.search(optional_text, "+44\x00")
