"""Issue 12: responses with patient data are not cached, pages carry a Content Security Policy, and the API
schema and docs are for signed-in users."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_api_responses_with_patient_data_are_not_stored(api: APIClient, patient: Any) -> None:
    response = api.get(f"/api/patients/{patient.pk}/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


def test_pages_and_the_admin_are_not_stored(nurse: Any, admin_client: Client) -> None:
    client = Client()
    client.force_login(nurse)
    assert client.get("/login/")["Cache-Control"] == "no-store"
    assert admin_client.get("/admin/patients/patient/")["Cache-Control"] == "no-store"


def test_pages_carry_a_content_security_policy_without_inline_script_or_style(client: Client) -> None:
    policy = client.get("/login/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"


@pytest.mark.parametrize("path", ["/api/schema/"])
def test_the_schema_needs_a_signed_in_user(anon_api: APIClient, api: APIClient, path: str) -> None:
    assert anon_api.get(path).status_code == 401
    assert api.get(path, HTTP_ACCEPT="application/vnd.oai.openapi+json").status_code == 200


def test_the_docs_page_sends_anonymous_visitors_to_sign_in(client: Client, nurse: Any) -> None:
    anonymous = client.get("/api/docs/")
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login/?next=/api/docs/")
    client.force_login(nurse)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    # Swagger UI's start-up script is a file of its own (no inline script); its page keeps an inline style.
    assert b"<script>" not in page.content
    policy = page["Content-Security-Policy"]
    assert "script-src 'self';" in policy + ";"
    assert client.get("/api/docs/?script").status_code == 200
