"""The API as integrators meet it: a typed client generated from the schema imports whole and runs the
everyday flow against a live server, using nothing but the generated code.

The client is generated with openapi-python-client (pinned in the Makefile) from its own virtual
environment, `.venv-contract/` (`make contract-venv`; `make test` builds it): the generator pins its
own versions of pydantic, httpx and ruff, which must not move the project's. The generated package
runs inside this pytest process; its runtime needs (httpx, attrs) are in requirements-dev.txt.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / ".venv-contract" / "bin" / "openapi-python-client"
PACKAGE = "cobalt_client"
PASSWORD = "pw-for-tests"  # tests/factories.py UserFactory


def missing(reason: str) -> None:
    """Skip locally, but fail under CI: the contract test must run there."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run the API contract test")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The package openapi-python-client generates from the schema the API serves."""
    if not GENERATOR.exists():
        missing(f"{GENERATOR.relative_to(ROOT)} is missing (run `make contract-venv`)")
    for runtime in ("httpx", "attrs", "dateutil"):
        try:
            importlib.import_module(runtime)
        except ImportError:
            missing(f"the generated client needs {runtime} in the project venv (requirements-dev.txt)")
    work = tmp_path_factory.mktemp("contract")
    schema = work / "schema.yaml"
    call_command("spectacular", "--file", str(schema))
    config = work / "config.yaml"
    # No post hooks: the generator would run ruff over the output, and the output is never committed.
    config.write_text(f"package_name_override: {PACKAGE}\npost_hooks: []\n")
    result = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(schema), "--output-path", str(work / PACKAGE),
         "--meta", "none", "--config", str(config)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, f"openapi-python-client failed:\n{result.stdout}\n{result.stderr}"
    sys.path.insert(0, str(work))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(work))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def test_every_generated_module_imports(client_package: ModuleType) -> None:
    failures: dict[str, str] = {}
    modules = list(pkgutil.walk_packages(client_package.__path__, f"{PACKAGE}."))
    for module in modules:
        try:
            importlib.import_module(module.name)
        except Exception as error:  # noqa: BLE001 - every failure is reported, whatever its kind
            failures[module.name] = f"{type(error).__name__}: {error}"
    assert any(m.name.startswith(f"{PACKAGE}.api.") for m in modules), "no endpoint modules were generated"
    assert not failures, f"{len(failures)} of {len(modules)} generated modules fail to import:\n" + "\n".join(
        f"  {name}: {error}" for name, error in sorted(failures.items())
    )


def api(name: str) -> Any:
    """One generated endpoint module (`patients.patients_list`) or model (`models`)."""
    return importlib.import_module(f"{PACKAGE}.{name}")


def ok(response: Any, status: int, model: str) -> Any:
    """The response has `status` and was parsed into the generated `model` (not left untyped)."""
    assert response.status_code == status, f"{response.status_code}: {response.content[:500]!r}"
    parsed = response.parsed
    assert type(parsed).__name__ == model, f"parsed as {type(parsed).__name__}, not {model}: {parsed!r}"
    return parsed


@pytest.mark.django_db(transaction=True)
def test_the_everyday_flow_runs_on_the_generated_client_alone(
    client_package: ModuleType, live_server: Any, builtin_protocols: None
) -> None:
    from patients.models import Role
    from tests.factories import ClinicFactory, staff_user

    clinic = ClinicFactory(name="Contract clinic")
    # A clinician: the flow starts a regimen, which only a prescriber may do.
    user = staff_user(clinic, role=Role.CLINICIAN)
    client_module = api("client")
    models = api("models")
    today = timezone.localdate()

    # raise_on_unexpected_status: a status the schema does not document fails the test.
    anonymous = client_module.Client(base_url=live_server.url, raise_on_unexpected_status=True)
    token = ok(
        api("api.auth.auth_token_create").sync_detailed(
            client=anonymous, body=models.CredentialsRequest(username=user.username, password=PASSWORD)
        ),
        200,
        "TokenResponse",
    ).token
    client = client_module.AuthenticatedClient(
        base_url=live_server.url, token=token, prefix="Token", raise_on_unexpected_status=True
    )

    patients = ok(api("api.patients.patients_list").sync_detailed(client=client), 200, "PaginatedPatientList")
    assert patients.count == 0

    patient = ok(
        api("api.patients.patients_create").sync_detailed(
            client=client,
            body=models.PatientRequest(
                clinic=clinic.pk, mrn="CT0001", given_name="Ada", family_name="Contract",
                birth_date=date(1961, 5, 17), sex=models.SexEnum("female"), timezone="Europe/London",
                deficiency_cause=models.DeficiencyCauseEnum("pernicious_anemia"),
            ),
        ),
        201,
        "Patient",
    )
    listed = ok(api("api.patients.patients_list").sync_detailed(client=client), 200, "PaginatedPatientList")
    assert [p.id for p in listed.results] == [patient.id]

    preview = ok(
        api("api.schedule.schedule_preview_create").sync_detailed(
            client=client,
            body=models.SchedulePreviewRequestRequest(
                protocol="hydroxo-uk-standard", start_date=today, timezone="Europe/London"
            ),
        ),
        200,
        "SchedulePreview",
    )
    assert preview.doses

    regimen = ok(
        api("api.regimens.regimens_create").sync_detailed(
            client=client,
            body=models.RegimenCreateRequest(patient=patient.id, protocol="hydroxo-uk-standard", start_date=today),
        ),
        201,
        "RegimenDetail",
    )

    doses = ok(
        api("api.doses.doses_list").sync_detailed(client=client, regimen=regimen.id), 200, "PaginatedDoseList"
    )
    assert doses.count == len(preview.doses)
    first = min(doses.results, key=lambda d: (d.due_date, d.id))
    # The RULES §7.2 codes of the dose's product, parsed into a generated model (not left a dict).
    assert not isinstance(first.drug_codes, dict)
    assert (first.drug_codes.rxnorm, first.drug_codes.atc) == ("317106", "B03BA03")
    assert str(first.drug_codes.evidence.snomed) == "S"
    assert preview.doses[0].drug_codes.to_dict() == first.drug_codes.to_dict()
    administer = models.DoseAdministerRequest(administered_at=timezone.now(), site="left deltoid")
    given = ok(
        api("api.doses.doses_administer_create").sync_detailed(id=first.id, client=client, body=administer),
        200,
        "Dose",
    )
    assert str(given.status) == "given"
    # The same request again is a no-op: the same dose, unchanged.
    again = ok(
        api("api.doses.doses_administer_create").sync_detailed(id=first.id, client=client, body=administer),
        200,
        "Dose",
    )
    assert again.to_dict() == given.to_dict()

    result = ok(
        api("api.lab_results.lab_results_create").sync_detailed(
            client=client,
            body=models.LabResultCreateRequest(
                patient=patient.id, analyte="hemoglobin", value=128, unit="g/L",
                collected_at=timezone.now() - timedelta(hours=2),
            ),
        ),
        201,
        "LabResult",
    )
    assert result.patient == patient.id

    alerts = api("api.alerts.alerts_list").sync_detailed(
        client=client, status=[models.AlertsListStatusItem("open")]
    )
    ok(alerts, 200, "PaginatedAlertList")
    ok(api("api.notifications.notifications_list").sync_detailed(client=client), 200, "PaginatedNotificationList")
    ok(
        api("api.notifications.notifications_inbox_list").sync_detailed(client=client),
        200,
        "PaginatedInboxMessageList",
    )

    # Signing out revokes the token: the next call is a documented 401.
    signed_out = api("api.auth.auth_sign_out_create").sync_detailed(client=client)
    assert signed_out.status_code == 204
    assert api("api.patients.patients_list").sync_detailed(client=client).status_code == 401
