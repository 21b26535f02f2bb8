"""The monitoring sweep opens its new alerts in bulk (notifications.alerts.alerts_open_many): the first run
after a go-live, an outage or an import costs the same queries at 5 and at 25 patients, and every alert
still has its history row and, when HIGH or CRITICAL, its staff notifications."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from monitoring.sweep import monitoring
from notifications.alerts import NewAlert, alerts_open_many
from notifications.models import Alert, Delivery, Purpose
from patients.models import PatientFact, Role
from tests.factories import ClinicFactory, staff_user
from tests.monitoring.test_monitoring_sweep import START, at, new_patient, start

pytestmark = pytest.mark.django_db

WHEN = at(START + timedelta(days=30))


@pytest.fixture(autouse=True)
def clock() -> Iterator[Any]:
    with time_machine.travel(at(START), tick=False) as traveller:
        yield traveller


def population(name: str, n: int) -> Any:
    """n patients at a new clinic with two staff, each with overdue doses (opens dose_overdue alerts, HIGH for
    the neurological ones) and a third with neurological symptoms recorded (S-6(a))."""
    clinic = ClinicFactory(name=name)
    staff_user(clinic, Role.NURSE, username=f"{name}-nurse")
    staff_user(clinic, Role.CLINICIAN, username=f"{name}-clinician")
    for i in range(n):
        patient = new_patient(clinic=clinic, neurological_involvement=i % 2 == 0)
        start(patient, "ileal-resection" if i % 3 else "hydroxo-uk-neuro", give_first=i % 3 == 0)
        if i % 3 == 0:
            PatientFact.objects.create(patient=patient, kind="neuro_symptoms", onset_date=START)
    return clinic


def first_run_queries() -> tuple[int, int]:
    before = Alert.objects.count()
    with CaptureQueriesContext(connection) as queries:
        monitoring(WHEN)
    return len(queries), Alert.objects.count() - before


def test_the_first_run_costs_the_same_queries_at_5_and_25_patients(django_assert_max_num_queries: Any) -> None:
    population("Small", 5)
    few, opened_few = first_run_queries()
    Alert.objects.all().delete()
    Delivery.objects.all().delete()
    population("Large", 20)  # 25 patients in all
    many, opened_many = first_run_queries()

    assert opened_few >= 5 and opened_many >= 25
    # Opening 5x the alerts costs no more queries.
    assert many == few
    with django_assert_max_num_queries(few):
        monitoring(WHEN + timedelta(hours=1))


def test_alerts_opened_in_bulk_have_their_history_and_staff_messages() -> None:
    clinic = population("Riverside", 6)

    monitoring(WHEN)

    opened = list(Alert.objects.filter(patient__clinic=clinic))
    assert opened and any(a.severity == "high" for a in opened)
    for alert in opened:
        assert list(alert.history.values_list("history_type", flat=True)) == ["+"]
        sent = Delivery.objects.filter(alert=alert, purpose=Purpose.ALERT)
        keys = set(sent.values_list("idempotency_key", flat=True))
        if alert.severity in ("high", "critical"):
            # Every staff member of the clinic: an email (they have an address) and an inbox message.
            users = clinic.memberships.values_list("user_id", flat=True)
            assert keys == {f"alert:{alert.id}:{u}:{c}" for u in users for c in ("email", "inbox")}
        else:
            assert keys == set()  # MEDIUM waits for the digest, INFO is a timeline note
    # A second run for the same instant changes nothing.
    deliveries = Delivery.objects.count()
    monitoring(WHEN)
    assert Alert.objects.filter(patient__clinic=clinic).count() == len(opened)
    assert Delivery.objects.count() == deliveries


def test_a_patient_whose_alert_was_opened_meanwhile_keeps_that_one(clinic: Any) -> None:
    patient = new_patient(clinic=clinic)
    other = new_patient(clinic=clinic)
    existing = Alert.objects.create(
        patient=patient, kind="dose_overdue", severity="medium", message="opened by an evaluation", opened_at=WHEN
    )

    with transaction.atomic():
        opened = alerts_open_many(
            [
                NewAlert(patient_id=p.pk, kind="dose_overdue", severity="high", message="from the sweep")
                for p in (patient, other)
            ],
            at=WHEN,
        )

    # The constraint (one unresolved alert per patient and kind) kept the existing one, untouched.
    assert [a.patient_id for a in opened] == [other.pk]
    existing.refresh_from_db()
    assert (existing.severity, existing.message) == ("medium", "opened by an evaluation")
    assert Alert.objects.filter(patient=patient).count() == 1
