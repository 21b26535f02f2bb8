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
