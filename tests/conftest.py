"""Shared fixtures. The suite runs on PostgreSQL (DATABASE_URL); see README "Tests"."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from patients.models import Clinic, Role
from tests.factories import ClinicFactory, PatientFactory, staff_user
from tests.timeline import T0, noon


def service_reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip locally when a real service is missing, but fail loudly under CI."""
    if service_reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI must run integration tests against real services.")
    pytest.skip(message)


@pytest.fixture
def clinic(db: Any) -> Clinic:
    return ClinicFactory(name="Riverside Haematology")


@pytest.fixture
def other_clinic(db: Any) -> Clinic:
    return ClinicFactory(name="Hilltop Surgery")


@pytest.fixture
def nurse(clinic: Clinic) -> Any:
    return staff_user(clinic, Role.NURSE, username="nurse")


@pytest.fixture
def clinician(clinic: Clinic) -> Any:
    return staff_user(clinic, Role.CLINICIAN, username="clinician")


@pytest.fixture
def patient(clinic: Clinic) -> Any:
    return PatientFactory(clinic=clinic)


def client_for(user: Any) -> APIClient:
    """An API client logged in as `user`."""
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def api(nurse: Any) -> APIClient:
    """An API client logged in as a nurse of `clinic`."""
    return client_for(nurse)


@pytest.fixture
def anon_api() -> APIClient:
    return APIClient()


@pytest.fixture
def builtin_protocols(transactional_db: Any) -> None:
    """The built-in protocols for transactional tests: the database is flushed between those,
    which removes the rows the data migration loaded (idempotent, as in the migration)."""
    from regimens.models import Protocol, ProtocolPhase, ProtocolRecheckStep
    from regimens.protocol_data import load_protocols

    load_protocols(Protocol, ProtocolPhase, ProtocolRecheckStep)


@pytest.fixture
def clock() -> Iterator[Any]:
    """Time stands still at noon UTC on T0 (tests/timeline.py); `clock.move_to(...)` moves it."""
    with time_machine.travel(noon(T0), tick=False) as traveller:
        yield traveller
