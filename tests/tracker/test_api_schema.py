"""API: the OpenAPI schema documents every endpoint and generates cleanly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

# The SPEC "Public interface" endpoints this part of the API serves, with their write methods.
DOCUMENTED_WRITES = {
    "/api/patients/": "post",
    "/api/clinics/{id}/calendar/": "post",
    "/api/schedule/preview/": "post",
    "/api/regimens/": "post",
    "/api/regimens/{id}/end-loading/": "post",
    "/api/regimens/{id}/stop/": "post",
    "/api/regimens/{id}/confirm-gate/": "post",
    "/api/regimens/{id}/review/": "post",
    "/api/regimens/{id}/shorten-interval/": "post",
    "/api/doses/{id}/administer/": "post",
    "/api/doses/{id}/not-given/": "post",
    "/api/lab-results/": "post",
    "/api/lab-results/panel/": "post",
    "/api/medications/": "post",
    "/api/patient-facts/": "post",
    "/api/patient-facts/{id}/end/": "post",
    "/api/alerts/{id}/acknowledge/": "post",
}


def test_it_generates_a_valid_schema_without_warnings(tmp_path: Path) -> None:
    # --fail-on-warn turns any drf-spectacular warning (an undocumented field, an enum naming
    # clash) into an error; --validate checks the result against the OpenAPI 3 meta-schema.
    out = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))

    schema = yaml.safe_load(out.read_text())
    assert schema["info"]["title"] == "Cobalt API"


def test_it_documents_the_request_and_response_bodies_of_every_write(api: APIClient) -> None:
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    paths: dict[str, Any] = response.json()["paths"]
    for path, method in DOCUMENTED_WRITES.items():
        operation = paths[path][method]
        assert "application/json" in operation["requestBody"]["content"], path
        assert {"200", "201"} & set(operation["responses"]), path
    reads = ["/api/doses/", "/api/lab-rechecks/", "/api/protocols/", "/api/protocols/{code}/", "/api/alerts/"]
    for path in [*reads, "/api/notifications/", "/api/notifications/inbox/"]:
        assert "get" in paths[path], path
    dose_filters = {p["name"] for p in paths["/api/doses/"]["get"]["parameters"]}
    assert dose_filters >= {"patient", "regimen", "clinic", "status", "due_from", "due_to", "overdue"}
    notification_filters = {p["name"] for p in paths["/api/notifications/"]["get"]["parameters"]}
    assert notification_filters >= {"patient", "status", "channel", "purpose", "due_from", "due_to"}
    assert "post" in paths["/api/notifications/{id}/read/"]


def test_it_renders_the_browsable_docs_for_a_logged_in_user(nurse: Any) -> None:
    client = Client()
    client.force_login(nurse)

    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


# --- What generated clients rely on: one body type, documented errors, nullables they understand -----

ERROR_MAP = {"$ref": "#/components/schemas/ErrorMap"}
DETAIL = {"$ref": "#/components/schemas/Detail"}
# The operations whose service can refuse with safety warnings to acknowledge (tracker.errors).
WARNING_WRITES = {
    ("/api/regimens/", "post"),
    ("/api/regimens/{id}/end-loading/", "post"),
    ("/api/regimens/{id}/stop/", "post"),
    ("/api/doses/{id}/administer/", "post"),
    ("/api/medications/", "post"),
}
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def schema(api: APIClient) -> dict[str, Any]:
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def body_schema(operation: dict[str, Any], code: str) -> dict[str, Any]:
    found: dict[str, Any] = operation["responses"][code]["content"]["application/json"]["schema"]
    return found


def test_it_offers_json_request_bodies_only_and_multipart_only_for_the_import(schema: dict[str, Any]) -> None:
    bodies = {
        (path, method): set(op["requestBody"]["content"])
        for path, method, op in operations(schema)
        if "requestBody" in op
    }

    assert bodies.pop(("/api/lab-results/import/", "post")) == {"multipart/form-data"}
    assert bodies, "the writes have request bodies"
    assert {path: types for (path, _), types in bodies.items() if types != {"application/json"}} == {}


def test_every_operation_documents_401_and_403_except_the_anonymous_token_endpoint(schema: dict[str, Any]) -> None:
    token = schema["paths"]["/api/auth/token/"]["post"]
    assert token["security"] == []
    assert "401" not in token["responses"]
    assert token["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CredentialsRequest"
    }
    assert set(schema["components"]["schemas"]["TokenResponse"]["properties"]) == {"token"}

    for path, method, operation in operations(schema):
        if path == "/api/auth/token/":
            continue
        assert operation["security"], (method, path)
        for code in ("401", "403"):
            assert body_schema(operation, code) == DETAIL, (code, method, path)


def test_the_token_endpoint_documents_the_second_factor_and_sign_out_revokes_a_token(schema: dict[str, Any]) -> None:
    credentials = schema["components"]["schemas"]["CredentialsRequest"]
    assert "otp_token" in credentials["properties"] and "otp_token" not in credentials["required"]
    assert "authenticator app" in credentials["properties"]["otp_token"]["description"]
    assert "otp_token" in schema["paths"]["/api/auth/token/"]["post"]["responses"]["400"]["description"]
    sign_out = schema["paths"]["/api/auth/sign-out/"]["post"]
    assert sign_out["security"] == [{"tokenAuth": []}] and "204" in sign_out["responses"]


def test_the_token_scheme_names_the_token_prefix(schema: dict[str, Any]) -> None:
    scheme = schema["components"]["securitySchemes"]["tokenAuth"]

    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert "Authorization: Token <key>" in scheme["description"]


def test_writes_document_400_with_the_error_map_and_detail_routes_404(schema: dict[str, Any]) -> None:
    error_map = schema["components"]["schemas"]["ErrorMap"]
    assert error_map["additionalProperties"] == {"type": "array", "items": {"type": "string"}}
    assert error_map["properties"]["detail"] == {"type": "array", "items": {"type": "string"}}

    for path, method, operation in operations(schema):
        if method in {"post", "put", "patch"}:
            documented = body_schema(operation, "400")
            assert documented == ERROR_MAP or ERROR_MAP in documented.get("oneOf", []), (method, path)
        if "{" in path:
            assert body_schema(operation, "404") == DETAIL, (method, path)
        for code, response in operation["responses"].items():
            if code == "409":
                assert body_schema(operation, code) == ERROR_MAP, (method, path)
            if code.startswith(("4", "5")):
                assert "application/json" in response.get("content", {}), (code, method, path)
    patient_create = schema["paths"]["/api/patients/"]["post"]["responses"]
    assert {"201", "400"} <= set(patient_create)
    assert "404" in schema["paths"]["/api/patients/"]["get"]["responses"], "a page past the last is a 404"


def test_the_safety_warning_writes_document_the_warnings_body(schema: dict[str, Any]) -> None:
    warnings_ref = {"$ref": "#/components/schemas/SafetyWarningsError"}
    component = schema["components"]["schemas"]["SafetyWarningsError"]
    assert set(component["required"]) == {"acknowledge", "warnings"}
    assert component["properties"]["warnings"]["items"] == {"$ref": "#/components/schemas/SafetyWarning"}
    assert set(schema["components"]["schemas"]["SafetyWarning"]["required"]) == {"code", "rule", "message", "details"}

    documented = {
        (path, method)
        for path, method, operation in operations(schema)
        if "400" in operation["responses"] and warnings_ref in body_schema(operation, "400").get("oneOf", [])
    }
    assert documented == WARNING_WRITES


def test_no_nullable_property_hides_its_type_behind_an_allof(schema: dict[str, Any]) -> None:
    # OpenAPI 3.0 ignores `nullable` without a `type` beside it: generators then refuse the null. A union
    # must admit null in one of its branches (a nullable type, or spectacular's NullEnum).
    components = schema["components"]["schemas"]
    found: list[str] = []

    def admits_null(branch: dict[str, Any]) -> bool:
        target = components.get(branch.get("$ref", "").rsplit("/", 1)[-1], {})
        return bool(branch.get("nullable")) or None in target.get("enum", [])

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if node.get("nullable") and "type" not in node:
                if "allOf" in node or not any(admits_null(b) for b in node.get("oneOf", node.get("anyOf", []))):
                    found.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(schema, "")

    assert found == []
    for name in ("acknowledged", "resolved"):
        field = components["Alert"]["properties"][name]
        assert (field["type"], field["nullable"]) == ("object", True), name
        assert "allOf" not in field, name


def test_a_multipart_post_to_a_json_endpoint_is_a_415_naming_json(api: APIClient, patient: Any) -> None:
    response = api.post("/api/patients/", {"mrn": "M-1"}, format="multipart")

    assert response.status_code == 415
    detail = response.json()["detail"]
    assert 'Unsupported media type "multipart/form-data"' in detail
    assert "application/json" in detail


def test_the_token_endpoint_takes_json_only(anon_api: APIClient, nurse: Any) -> None:
    response = anon_api.post("/api/auth/token/", {"username": "nurse", "password": "x"}, format="multipart")

    assert response.status_code == 415


def test_every_400_answers_the_error_map(api: APIClient, clinic_admin: Any, clinic: Any) -> None:
    # A body that is not JSON: DRF's {"detail": "JSON parse error ..."} comes back as a list of reasons.
    broken = api.post("/api/patients/", data="{", content_type="application/json")
    assert broken.status_code == 400
    assert list(broken.json()) == ["detail"] and isinstance(broken.json()["detail"][0], str)

    # A list item's error stays under its field, its reason prefixed with the item's index.
    admin = APIClient()
    admin.force_authenticate(clinic_admin)
    nested = admin.post(f"/api/clinics/{clinic.pk}/calendar/", {"open_weekdays": [0, 9]})
    assert nested.status_code == 400
    reasons = nested.json()["open_weekdays"]
    assert isinstance(reasons, list) and reasons[0].startswith("[1]: ")


def test_a_path_no_api_route_matches_answers_the_documented_404_body(api: APIClient) -> None:
    response = api.get("/api/patients/not-a-number/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_an_analyte_without_a_plausible_maximum_is_documented_as_null(schema: dict[str, Any]) -> None:
    field = schema["components"]["schemas"]["Analyte"]["properties"]["plausible_max"]

    assert (field["type"], field["nullable"]) == ("number", True)
