"""Shared fixtures. The suite runs on PostgreSQL (DATABASE_URL); see README "Tests".

Also marks every test that needs the database `needs_db` (pytest_collection_modifyitems below), so
`make test-fast` (-m "not needs_db ...") runs the rest in seconds without PostgreSQL.
"""

from __future__ import annotations

import html as html_module
import os
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.test import TransactionTestCase
from rest_framework.test import APIClient

from patients.models import Clinic, Role
from tests.factories import ClinicFactory, PatientFactory, staff_user
from tests.timeline import T0, noon

# pytest-django's fixtures that open the test database; a test uses the database when it asks for one
# of them directly or through another fixture (item.fixturenames is the whole closure).
DB_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_setup",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
        "client",
        "async_client",
        "admin_client",
        "admin_user",
        "live_server",
        "django_user_model",
    }
)


def needs_db(item: pytest.Item) -> bool:
    if item.get_closest_marker("django_db") is not None:
        return True
    if DB_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    # Django's own TestCase classes open the database without a marker or a fixture.
    cls = getattr(item, "cls", None)
    return cls is not None and issubclass(cls, TransactionTestCase)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if needs_db(item):
            item.add_marker(pytest.mark.needs_db)
    # The tests marked `slow` go first (a stable sort keeps the rest in order): handed out last, one of them would
    # run alone on one xdist process for half a minute at the end of `make test` while the other waits. Only those
    # that use no test database: pytest-django puts the transactional tests last, since their flush empties it.
    items.sort(key=lambda item: not (item.get_closest_marker("slow") and not needs_db(item)))


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


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any, request: pytest.FixtureRequest) -> None:
    """pytest-django's test database. Under `--no-migrations` (`make test`'s first run: the tables are made from the
    models, seconds instead of a quarter of a minute per process; the integration run after it applies every
    migration) the built-in protocols that the data migrations load are loaded here."""
    if not request.config.getoption("nomigrations", default=False):
        return
    from regimens.models import Protocol, ProtocolPhase, ProtocolRecheckStep
    from regimens.protocol_data import load_protocols

    with django_db_blocker.unblock():
        load_protocols(Protocol, ProtocolPhase, ProtocolRecheckStep)


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
def clinic_admin(clinic: Clinic) -> Any:
    """A clinic admin of `clinic` (API role; not a Django superuser: that is pytest-django's admin_user)."""
    return staff_user(clinic, Role.ADMIN, username="clinic-admin")


@pytest.fixture
def patient(clinic: Clinic) -> Any:
    return PatientFactory(clinic=clinic)


@pytest.fixture
def other_patient(other_clinic: Clinic) -> Any:
    """A patient of another clinic: staff of `clinic` must not see them. Their family name is one no page holds
    otherwise (a random last name such as "Day" or "Ward" is also a word of the page a test says they are not on)."""
    return PatientFactory(clinic=other_clinic, family_name="Quillfeather")


def page_text(html: str) -> str:
    """What a reader of the page sees: the body's text without tags, attributes or the head (whose CSRF token
    is random and would now and then contain any short word a test looks for)."""
    body = re.sub(r"(?is)<head\b.*?</head>", " ", html)
    body = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", body)
    return html_module.unescape(re.sub(r"(?s)<[^>]*>", " ", body))


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
def nurse_api(nurse: Any) -> APIClient:
    return client_for(nurse)


@pytest.fixture
def clinician_api(clinician: Any) -> APIClient:
    return client_for(clinician)


@pytest.fixture
def admin_api(clinic_admin: Any) -> APIClient:
    """An API client logged in as the clinic admin of `clinic`."""
    return client_for(clinic_admin)


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


def admin_request(user: Any, path: str = "/admin/") -> Any:
    """A GET request to the Django admin by `user`, for calling a ModelAdmin's methods directly: the admin
    site refuses anyone but a superuser (tracker/admin_site.py), yet its clinic-scoping code
    (tracker/admin.py) is kept and tested this way."""
    from django.test import RequestFactory

    request = RequestFactory().get(path)
    request.user = user
    return request


def assert_admin_refused(response: Any) -> None:
    """The admin's answer to a signed-in user who is not a superuser: 403 and a pointer to the web app."""
    assert response.status_code == 403
    assert b"The Django admin is for system administrators" in response.content
    assert b"Go to the web app" in response.content
