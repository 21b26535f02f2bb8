"""The monitoring rules of API writes run by a real Celery worker (COBALT_EVALUATE_IN_WORKER, issue 16): the POST
answers with the result stored and the marker committed, and the worker opens the alert moments later and clears the
marker. Evaluations whose tasks no worker runs (as when a worker is killed holding them) are not lost: the markers
stay, and the "evaluations" sweep runs them. PostgreSQL, Redis and a worker process."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone as djtz

from monitoring.models import PendingEvaluation
from notifications.models import Alert
from patients.models import Patient
from regimens.models import Protocol, ScheduledDose
from regimens.services import dose_record_administration, regimen_start
from tests.conftest import client_for
from tests.factories import ClinicFactory, LabResultFactory, PatientFactory, staff_user
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def critical_platelets(api: Any, patient: Patient) -> None:
    """A platelet count of 15 x10^9/L: A-P3 opens a CRITICAL alert (RULES §3.4, §10 V-4)."""
    body = {
        "patient": patient.pk,
        "analyte": "platelets",
        "value": "15",
        "unit": "10^9/L",
        "collected_at": (djtz.now() - timedelta(hours=1)).isoformat(),
    }
    response = api.post("/api/lab-results/", body, format="json")
    assert response.status_code == 201, response.content


def critical_open(patient: Patient) -> bool:
    return Alert.objects.filter(patient=patient, kind="platelets_critical").exclude(status="resolved").exists()


def patients_on_treatment(count: int) -> tuple[Any, list[Patient]]:
    """Patients on hydroxocobalamin for a week (first dose given: T0), each with a low baseline platelet count of 90
    the day before T0; written without the API (no evaluation is queued)."""
    clinic = ClinicFactory()
    protocol = Protocol.objects.get(code="hydroxo-uk-standard")
    patients = [PatientFactory(clinic=clinic) for _ in range(count)]
    for patient in patients:
        regimen = regimen_start(patient=patient, protocol=protocol, start_date=djtz.now().date() - timedelta(days=7))
        first = ScheduledDose.objects.filter(regimen=regimen).order_by("due_date").first()
        assert first is not None
        t0 = datetime.combine(first.due_date, time(10), tzinfo=UTC)
        dose_record_administration(dose=first, administered_at=t0)
        LabResultFactory(
            patient=patient, analyte="platelets", loinc="777-3", value_as_entered="90", unit_as_entered="10^9/L",
            unit_canonical="10^9/L", interpretation="low", collected_at=t0 - timedelta(days=1),
        )  # fmt: skip
    PendingEvaluation.objects.all().delete()  # the starts' and doses' markers: no worker was running yet
    return clinic, patients


def test_the_worker_opens_the_alert_of_a_result_posted_to_the_api(
    main_redis: str, start_worker: Any, builtin_protocols: None, settings: Any
) -> None:
    settings.COBALT = {**settings.COBALT, "EVALUATE_IN_WORKER": True}
    clinic, [patient] = patients_on_treatment(1)
    start_worker(main_redis, 25)

    critical_platelets(client_for(staff_user(clinic, username="feed")), patient)

    wait_for(lambda: critical_open(patient), 30, "the worker to open the critical platelet alert", 0.1)
    wait_for(lambda: not PendingEvaluation.objects.exists(), 10, "the worker to clear the marker", 0.1)


def test_evaluations_no_worker_runs_are_run_by_the_sweep(
    main_redis: str, builtin_protocols: None, settings: Any
) -> None:
    settings.COBALT = {**settings.COBALT, "EVALUATE_IN_WORKER": True}
    clinic, patients = patients_on_treatment(3)

    # The tasks reach Redis, and no worker takes them off it
    api = client_for(staff_user(clinic, username="feed"))
    for patient in patients:
        critical_platelets(api, patient)
    assert PendingEvaluation.objects.count() == 3
    assert not any(critical_open(p) for p in patients)

    # Beat's "evaluations" sweep, a minute on: every marker is run, in this process as in a worker
    out = StringIO()
    call_command("run_sweeps", "--at", (djtz.now() + timedelta(seconds=61)).isoformat(), stdout=out)

    assert all(critical_open(p) for p in patients)
    assert not PendingEvaluation.objects.exists()
