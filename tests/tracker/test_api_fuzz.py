"""An OpenAPI-driven fuzzer against every endpoint: no input makes the API answer 5xx (SPEC.md,
"Quality bars", bad input), and every answer is one the schema documents.

Schemathesis generates requests from the schema (as /api/schema/ serves it), valid and invalid, and sends
them through the WSGI app as an authenticated nurse of a clinic with a patient, a regimen and doses,
so that path ids sometimes hit real rows. A 5xx (or an exception) fails the test with the request
that caused it. The conformance test sends the same kind of requests and checks each answer against the
schema: its status code is documented for the operation, its content type is one documented for that
status, and its body validates against the documented response schema (no exclusions: an integrator's
generated client relies on all three).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tracker.authentication import token_issue
from tracker.wsgi import application

# The served schema (/api/schema/) is for signed-in users: generate the same document here (the view calls the
# same generator) and send the requests through the WSGI app.
schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = application
REAL_IDS: dict[str, int | None] = {}


@pytest.fixture
def token(db: Any) -> Iterator[str]:
    from django.utils import timezone

    from regimens.models import Protocol
    from regimens.services import regimen_start
    from tests.factories import ClinicFactory, PatientFactory, staff_user

    clinic = ClinicFactory()
    nurse = staff_user(clinic)
    patient = PatientFactory(clinic=clinic)
    regimen = regimen_start(
        patient=patient, protocol=Protocol.objects.get(code="hydroxo-uk-standard"), start_date=timezone.localdate()
    )
    REAL_IDS.update(
        {
            "/api/patients/": patient.pk,
            "/api/clinics/": clinic.pk,
            "/api/regimens/": regimen.pk,
            "/api/doses/": regimen.doses.order_by("due_date").values_list("pk", flat=True).first(),
            "/api/lab-rechecks/": regimen.lab_rechecks.values_list("pk", flat=True).first(),
        }
    )
    # As Django's test client does: the WSGI handler would close the test's connection after each
    # request (and with it the transaction the test runs in).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield token_issue(nurse)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def use_real_ids(case: Any) -> None:
    """Half of the generated ids are replaced by a real row of the user's clinic, so that the
    bodies are also tried against existing patients, regimens and doses, not only against 404s."""
    for name, value in list((case.path_parameters or {}).items()):
        real = next((pk for prefix, pk in REAL_IDS.items() if case.path.startswith(prefix)), None)
        if name in ("id", "pk") and real is not None and isinstance(value, int) and value % 2 == 0:
            case.path_parameters[name] = real


@schema.parametrize()
@SETTINGS
def test_no_request_makes_the_api_fail_with_a_server_error(case: Any, token: str) -> None:
    use_real_ids(case)
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=[not_a_server_error])


@schema.parametrize()
@SETTINGS
def test_every_response_conforms_to_the_schema(case: Any, token: str) -> None:
    use_real_ids(case)
    case.call_and_validate(
        headers={"Authorization": f"Token {token}"},
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
