"""An OpenAPI-driven fuzzer against every endpoint, with every check schemathesis has (issue 12, item 8):
CI fails on any finding.

Schemathesis (4.32.5) generates requests from the schema (as /api/schema/ serves it) in its three phases
(the schema's examples, fuzzing, and coverage: boundary values, each required part left out, methods the
operation does not have), valid and invalid, and sends them through the WSGI app as a signed-in nurse of a
clinic with a patient, a regimen and doses. Each answer goes through every check in schemathesis' registry
(`ALL_CHECKS`, read from it, so a check a new version adds runs too) plus `max_response_time`:

- not_a_server_error: no 5xx, whatever the input.
- status_code_conformance, content_type_conformance, response_headers_conformance,
  response_schema_conformance: the status, its media type, its headers and its body are the documented ones.
- negative_data_rejection: a request the schema calls invalid is refused (4xx).
- positive_data_acceptance: a request the schema calls valid is not refused with a 400. The schema cannot
  say which rows exist, so a valid request names real ones: `use_real_rows` puts the user's own patient,
  clinic, regimen, dose and recheck ids, a protocol code, an IANA zone and the nurse's own sign-in in the
  valid requests (a negative request keeps what was generated, and half of the ids in paths stay random so
  that "not found" is tried too). Every other 400 on a valid request is a finding: the schema must state
  the rule (a minimum, a pattern, a non-empty list).
- missing_required_header, unsupported_method (405 with `Allow`), allow_header_conformance.
- ignored_auth: each operation that answers 2xx is tried again without the token and with a wrong one;
  both must be refused.
- use_after_free, ensure_resource_availability: these judge chains of requests (a resource deleted then
  read; created then not found). The second test runs schemathesis' state machine along the links it
  infers between operations (a list's ids into its detail and action routes: drf-spectacular writes no
  OpenAPI links), with every check. The API deletes nothing (records are entered in error), so
  use_after_free has nothing to catch yet; it runs all the same.
- object_level_authorization: runs, but needs a multi-user auth document (two identities and the objects
  each created) to act; another clinic's rows are walked by tests/security/test_walk_as_another_clinic.py
  and test_clinic_boundary.py instead.
- max_response_time: every answer within MAX_RESPONSE_SECONDS; a generous bound (the API has no latency
  target; docs/scaling.md), there to catch a request that runs away (a 20,000-dose plan, issue 12).

Hypothesis is derandomized (the same examples on every run) and bounded (`max_examples` per operation,
a few short chains) so the file runs in about two to three minutes on two cores.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks, max_response_time
from schemathesis.openapi.checks import RejectedPositiveData

from tracker.authentication import token_issue
from tracker.wsgi import application

# The served schema (/api/schema/) is for signed-in users: generate the same document here (the view calls the
# same generator) and send the requests through the WSGI app.
schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = application
MAX_RESPONSE_SECONDS = 10.0
schema.config.checks.update(included_check_names=["all"], max_response_time=MAX_RESPONSE_SECONDS)
load_all_checks()
# Every registered check (function checks; the registry has no class-based ones today) and the one that is
# not registered because it needs a limit.
ALL_CHECKS = [check for check in CHECKS.get_all() if not isinstance(check, type)] + [max_response_time]
assert {c.__name__ for c in ALL_CHECKS} >= {
    "not_a_server_error",
    "negative_data_rejection",
    "positive_data_acceptance",
    "ignored_auth",
    "unsupported_method",
    "missing_required_header",
    "use_after_free",
    "ensure_resource_availability",
    "object_level_authorization",
    "max_response_time",
}
assert not any(isinstance(check, type) for check in CHECKS.get_all())
PASSWORD = "pw-for-tests"  # tests.factories.UserFactory's
REAL_IDS: dict[str, int | None] = {}
REAL_VALUES: dict[str, Any] = {}
REAL_SIGN_IN: dict[str, str] = {}  # for the token endpoint only


def api_token(user: Any) -> str:
    """The key the fuzzer sends as `Authorization: Token <key>`."""
    return token_issue(user)


@pytest.fixture
def token(db: Any) -> Iterator[str]:
    from django.utils import timezone

    from regimens.models import Protocol
    from regimens.services import regimen_start
    from tests.factories import ClinicFactory, PatientFactory, staff_user

    clinic = ClinicFactory()
    nurse = staff_user(clinic)
    patient = PatientFactory(clinic=clinic)
    protocol = Protocol.objects.get(code="hydroxo-uk-standard")
    regimen = regimen_start(patient=patient, protocol=protocol, start_date=timezone.localdate())
    REAL_IDS.update(
        {
            "/api/patients/": patient.pk,
            "/api/clinics/": clinic.pk,
            "/api/regimens/": regimen.pk,
            "/api/doses/": regimen.doses.order_by("due_date").values_list("pk", flat=True).first(),
            "/api/lab-rechecks/": regimen.lab_rechecks.values_list("pk", flat=True).first(),
        }
    )
    REAL_VALUES.update(
        {
            "patient": patient.pk,
            "clinic": clinic.pk,
            "regimen": regimen.pk,
            "protocol": protocol.code,
            "timezone": "Europe/London",
        }
    )
    REAL_SIGN_IN.update({"username": nurse.username, "password": PASSWORD})
    # As Django's test client does: the WSGI handler would close the test's connection after each
    # request (and with it the transaction the test runs in).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield api_token(nurse)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


SETTINGS = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def use_real_rows(case: Any) -> None:
    """Half of the generated ids in paths are replaced by a real row of the user's clinic, so that the
    bodies are also tried against existing patients, regimens and doses, not only against 404s. A valid
    request (positive_data_acceptance) names real rows everywhere: the schema says "an integer", only the
    database knows which integers are patients of this clinic."""
    for name, value in list((case.path_parameters or {}).items()):
        real = next((pk for prefix, pk in REAL_IDS.items() if case.path.startswith(prefix)), None)
        if name in ("id", "pk") and real is not None and isinstance(value, int) and value % 2 == 0:
            case.path_parameters[name] = real
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    reals = {**REAL_VALUES, **(REAL_SIGN_IN if case.path == "/api/auth/token/" else {})}
    for container in (case.query, case.body):
        if not isinstance(container, dict):
            continue
        for name, real in reals.items():
            if name in container and container[name] is not None:
                container[name] = real


# Rules a request can break while matching the schema, per operation: they depend on another field, on
# today's date, on what is already recorded or on a catalogue, which JSON Schema cannot say. The API answers
# them with the documented 400 naming the field (docs/api.md, "Errors"). positive_data_acceptance still runs
# on every operation: a 400 that names any field not listed here for its operation fails the test.
PATIENT_RULES = frozenset({"birth_date", "mrn", "email", "phone", "timezone"})
RULES_BEYOND_THE_SCHEMA: dict[str, frozenset[str]] = {
    # Cross-parameter: the period's last day on or after its first; the dashboard's period at most two years
    # long (with a day not given at its default, which depends on the clinic's today).
    "GET /api/dashboard/": frozenset({"from", "to"}),
    "GET /api/audit/": frozenset({"to"}),
    # The analyte catalogue (/api/analytes/): a code or LOINC it lists, a unit that analyte takes, a
    # plausible value in that unit.
    "GET /api/patients/{id}/trends/": frozenset({"analytes"}),
    "GET /api/lab-results/": frozenset({"analyte"}),
    # ... and a sample not taken before the patient was born, nor reported before it was taken.
    "POST /api/lab-results/": frozenset(
        {"analyte", "unit", "value", "ref_low", "ref_high", "collected_at", "reported_at"}
    ),
    "POST /api/lab-results/panel/": frozenset({"results", "collected_at", "reported_at"}),
    # A CSV in UTF-8 with the documented columns (docs/lab-results.md); the schema says "a file".
    "POST /api/lab-results/import/": frozenset({"file"}),
    # Dates relative to today or to the regimen (RULES bounds, COBALT_MAX_START_DAYS_AHEAD).
    "POST /api/doses/{id}/administer/": frozenset({"administered_at"}),
    "POST /api/doses/{id}/not-given/": frozenset({"on"}),
    "POST /api/schedule/preview/": frozenset({"start_date"}),
    "POST /api/regimens/": frozenset({"start_date", "acknowledge", "warnings"}),
    # A transfusion has one date and no end; a fact cannot end before it starts.
    "POST /api/patient-facts/": frozenset({"onset_date", "end_date", "absent"}),
    # Safety warnings to acknowledge (RULES S-1..S-11; docs/safety-and-alerts.md); a route by its name or
    # an alias, in any case ("im", "intramuscular"); a dose with its unit (mcg or mg, spaces ignored); a
    # start within COBALT_MAX_START_DAYS_AHEAD of today and a stop not before it.
    "POST /api/medications/": frozenset(
        {"acknowledge", "warnings", "route", "dose", "dose_unit", "start_date", "stop_date"}
    ),
    # A birth date not in the future (nor an age below the minimum); an MRN not already used in the clinic
    # and not blank once trimmed; an address, an E.164 number (spaces, dashes and brackets ignored) and an
    # IANA zone, checked by validators the schema does not state.
    "POST /api/patients/": PATIENT_RULES,
    "PUT /api/patients/{id}/": PATIENT_RULES,
    "PATCH /api/patients/{id}/": PATIENT_RULES,
}


@schema.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but a valid request refused only for the rules above (RULES_BEYOND_THE_SCHEMA)."""
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 400:
        return True
    allowed = RULES_BEYOND_THE_SCHEMA.get(case.operation.label, frozenset())
    try:
        body = json.loads(response.content)
    except ValueError:
        return True
    if not isinstance(body, dict) or not body:
        return True
    # "results[0].analyte" is about `results`.
    named = {re.split(r"[\[.]", str(key), maxsplit=1)[0] for key in body}
    return not named <= allowed


@schema.parametrize()
@SETTINGS
def test_the_api_passes_every_schemathesis_check(case: Any, token: str) -> None:
    use_real_rows(case)
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=ALL_CHECKS)


class APIWorkflow(schema.as_state_machine()):  # type: ignore[misc]
    """Chains of requests along the links schemathesis infers between operations (a list's ids into its
    detail and action routes), with every check: the stateful ones (use_after_free,
    ensure_resource_availability) judge these chains."""

    token = ""

    def get_call_kwargs(self, case: Any) -> dict[str, Any]:
        return {"headers": {"Authorization": f"Token {self.token}"}}

    def before_call(self, case: Any) -> None:
        use_real_rows(case)

    def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
        # The token passed as the request's headers, as call_and_validate does above: ignored_auth then
        # knows it is the real one, and tries the request again without it and with a wrong one.
        case.validate_response(response, headers=kwargs.get("headers"), transport_kwargs=kwargs, recorder=self.recorder)


def test_chains_of_requests_pass_every_schemathesis_check(token: str) -> None:
    APIWorkflow.token = token
    APIWorkflow.run(
        settings=settings(
            max_examples=10,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )


def test_both_tests_run_every_check_schemathesis_has() -> None:
    """The operation test passes ALL_CHECKS; the chains use the configured set: the same checks."""
    from schemathesis.checks import CheckContext

    config = schema.config.checks_config_for(operation=None, phase="stateful")
    context = CheckContext(
        override=None, auth=None, headers=None, config=config, transport_kwargs=None, response_checks=None
    )
    names = {check.__name__ for check in ALL_CHECKS}
    assert names == set(CHECKS.get_all_names()) | {"max_response_time"}
    assert {check.__name__ for check in context.internals.checks} == names
    assert config.max_response_time.limit == MAX_RESPONSE_SECONDS
