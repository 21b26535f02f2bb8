"""`make run`'s demo runs on SQLite, where the dashboard's PostgreSQL statements (adherence, open alerts in grouping
sets, time to normalization, the median wait to acknowledge) cannot run: monitoring/portable.py computes the same
figures in Python from plain ORM reads. Here both paths answer on the same data (the portable one chosen by
reporting another database vendor), and must give the same dashboard, and the same list behind it."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from monitoring.dashboard import Grace
from tests.factories import PatientFactory, RegimenFactory
from tests.monitoring.test_dashboard import clinic_data, given  # noqa: F401 (a fixture)
from tests.monitoring.test_normalization import outcomes  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


def both_ways(api: Any, url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    in_postgresql = api.get(url)
    assert in_postgresql.status_code == 200, in_postgresql.content
    with monkeypatch.context() as patched:
        patched.setattr(connection, "vendor", "sqlite")
        portable = api.get(url)
    assert portable.status_code == 200, portable.content
    return in_postgresql.json(), portable.json()


@pytest.fixture
def on_the_edge_of_the_grace(clinic: Any) -> None:
    """Doses given on the last day of the S-4 grace and the day after, for a patient with and one without
    neurological involvement: on time, then late, in both paths."""
    grace = Grace.from_settings()
    for neurological, days in ((False, grace.days), (True, grace.neuro_days)):
        regimen = RegimenFactory(patient=PatientFactory(clinic=clinic, neurological_involvement=neurological))
        given(regimen, -40, -40 + days)
        given(regimen, -30, -30 + days + 1)


@pytest.mark.usefixtures("clinic_data", "outcomes", "on_the_edge_of_the_grace")
@pytest.mark.parametrize("query", ["", "&from=2026-07-01&to=2027-01-10"])
def test_the_portable_dashboard_gives_the_same_figures(
    clinic: Any, admin_api: Any, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    assert connection.vendor == "postgresql"
    in_postgresql, portable = both_ways(admin_api, f"/api/dashboard/?clinic={clinic.pk}{query}", monkeypatch)
    # Something to compare in every part the portable path computes.
    assert in_postgresql["adherence"]["due"] > 0 and in_postgresql["outcomes"]["open_alerts"] > 0
    assert in_postgresql["outcomes"]["time_to_normalization"]["hemoglobin"]["patients"] > 0
    assert portable == in_postgresql


@pytest.mark.usefixtures("outcomes")
def test_the_portable_list_behind_it_is_the_same(clinic: Any, admin_api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    in_postgresql, portable = both_ways(admin_api, f"/api/dashboard/normalization/?clinic={clinic.pk}", monkeypatch)
    assert in_postgresql["count"] if "count" in in_postgresql else in_postgresql
    assert portable == in_postgresql


def test_the_clinics_patients_zones_are_the_same_without_postgresql(
    clinic: Any, other_clinic: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The overdue worklist's zones (patients.selectors.clinic_patient_zones): a recursive skip along an index in
    PostgreSQL, a plain DISTINCT elsewhere."""
    from patients.selectors import clinic_patient_zones

    for zone in ("Europe/London", "Pacific/Auckland", "America/New_York"):
        PatientFactory(clinic=clinic, timezone=zone)
    PatientFactory(clinic=other_clinic, timezone="Asia/Tokyo")
    in_postgresql = clinic_patient_zones([clinic.pk])
    with monkeypatch.context() as patched:
        patched.setattr(connection, "vendor", "sqlite")
        portable = clinic_patient_zones([clinic.pk])
    assert in_postgresql == portable == {"Europe/London", "Pacific/Auckland", "America/New_York"}
