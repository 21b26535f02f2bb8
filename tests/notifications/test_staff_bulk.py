"""Issue 16: staff deliveries are written set-based (INSERT ... ON CONFLICT DO NOTHING on the idempotency key):
an escalation sweep costs the same queries for 1 alert as for 20, the fan-out of one alert the same for 2 staff
as for 20, and what was written once is never written twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications import outbox, staff
from notifications.alerts import alert_acknowledge, alert_raise
from notifications.models import Alert, Delivery
from patients.models import Clinic, Patient, Role
from tests.factories import PatientFactory, staff_user

pytestmark = pytest.mark.django_db

OPENED = datetime(2027, 1, 4, 12, tzinfo=UTC)


def raise_alert(patient: Patient, severity: str = "high", at: datetime = OPENED, result_id: int = 1) -> Alert:
    alert, _created = alert_raise(
        patient=patient,
        kind="platelets_critical",
        severity=severity,
        message="Platelets 18 x10^9/L (A-P3).",
        action_text="Review today.",
        evidence={"result_ids": [result_id]},
        rule_id="A-P3",
        at=at,
    )
    return alert


def members(clinic: Clinic, count: int) -> list[Any]:
    return [staff_user(clinic, Role.NURSE, username=f"nurse-{clinic.pk}-{i}") for i in range(count)]


def escalation_queries(clinic: Clinic, alerts: int) -> tuple[int, int]:
    for _ in range(alerts):
        raise_alert(PatientFactory(clinic=clinic))
    with CaptureQueriesContext(connection) as queries:
        result = staff.escalate(OPENED + timedelta(hours=25))
    assert result["escalated"] == alerts
    return len(queries), Delivery.objects.filter(purpose="escalation").count()


def test_escalating_20_alerts_costs_the_queries_of_one(clinic: Clinic, other_clinic: Clinic) -> None:
    members(clinic, 2)
    members(other_clinic, 2)
    one, one_rows = escalation_queries(clinic, 1)
    twenty, twenty_rows = escalation_queries(other_clinic, 20)

    assert one_rows == 4  # 2 staff x (email + inbox), no lead and no admin: all clinic staff
    assert twenty_rows - one_rows == 20 * 4
    assert twenty == one


def test_an_escalation_is_written_once_however_often_the_sweep_runs(clinic: Clinic) -> None:
    members(clinic, 2)
    alert = raise_alert(PatientFactory(clinic=clinic))
    assert staff.escalate(OPENED + timedelta(hours=25))["escalated"] == 1
    Alert.objects.filter(pk=alert.pk).update(escalated_at=None)  # as if a concurrent sweep had not set it yet

    assert staff.escalate(OPENED + timedelta(hours=26))["escalated"] == 1
    assert Delivery.objects.filter(purpose="escalation").count() == 4  # the keys were already there


@pytest.mark.parametrize("severity", ["high", "critical"])
def test_the_reopen_fan_out_costs_the_same_for_2_and_20_staff(
    clinic: Clinic, other_clinic: Clinic, severity: str
) -> None:
    def reopen_queries(at_clinic: Clinic, staff_count: int) -> int:
        people = members(at_clinic, staff_count)
        alert = raise_alert(PatientFactory(clinic=at_clinic), severity)
        alert_acknowledge(alert=alert, user=people[0], note="Seen", at=OPENED + timedelta(minutes=30))
        with CaptureQueriesContext(connection) as queries:
            raise_alert(alert.patient, severity, at=OPENED + timedelta(days=1), result_id=2)  # new evidence: reopens
        reopened = Delivery.objects.filter(alert=alert, due_at=OPENED + timedelta(days=1), purpose="alert")
        assert reopened.count() == 2 * staff_count
        return len(queries)

    assert reopen_queries(clinic, 2) == reopen_queries(other_clinic, 20)


def test_a_reopened_alert_goes_to_a_worker_at_commit_once(
    clinic: Clinic, django_capture_on_commit_callbacks: Any
) -> None:
    people = members(clinic, 2)
    alert = raise_alert(PatientFactory(clinic=clinic))
    alert_acknowledge(alert=alert, user=people[0], note="Seen", at=OPENED + timedelta(minutes=30))

    with mock.patch.object(outbox, "dispatch") as dispatch, time_machine.travel(OPENED + timedelta(days=1, hours=1)):
        with django_capture_on_commit_callbacks(execute=True):
            raise_alert(alert.patient, at=OPENED + timedelta(days=1), result_id=2)
        with django_capture_on_commit_callbacks(execute=True):
            staff.on_alert_reopened(alert=Alert.objects.get(pk=alert.pk), acknowledged={})  # announced twice

    rows = Delivery.objects.filter(alert=alert, due_at=OPENED + timedelta(days=1))
    assert sorted(call.args[0] for call in dispatch.call_args_list) == sorted(rows.values_list("pk", flat=True))
    assert rows.count() == 4


# Issue 16, the lab POST: an alert opened by alert_raise holds the patient the caller read, so its staff messages are
# rendered from it and its clinic comes with the staff (no read of the alert back); an alert read from the database
# (a severity rise, a reopening) is read with its patient and clinic as before. Both write the same rows.
def _deliveries(alert: Alert) -> list[tuple[Any, ...]]:
    fields = ("idempotency_key", "purpose", "channel", "user_id", "address", "subject", "body", "due_at", "alert_id")
    return list(Delivery.objects.filter(alert=alert).order_by("idempotency_key").values_list(*fields))


def test_the_fan_out_of_an_alert_just_opened_writes_what_the_read_back_would(clinic: Clinic) -> None:
    members(clinic, 2)
    patient = PatientFactory(clinic=clinic, given_name="Ann", family_name="O'Neil")
    with CaptureQueriesContext(connection) as queries:
        alert = raise_alert(patient)
    opened = _deliveries(alert)
    assert len(opened) == 4 and "O'Neil, Ann" in opened[0][6]
    # The unresolved alert of the kind looked up, the alert, its history row, the staff with their clinic, the
    # deliveries (8 before: a savepoint around the alert, and the alert read back with its patient and clinic).
    assert len(queries) == 5

    Delivery.objects.filter(alert=alert).delete()
    staff.on_alert_opened(alert=Alert.objects.get(pk=alert.pk))  # read back: no patient held

    assert _deliveries(alert) == opened


def test_the_fan_out_of_an_alert_just_opened_in_a_clinic_without_staff_writes_nothing(clinic: Clinic) -> None:
    alert = raise_alert(PatientFactory(clinic=clinic))

    assert _deliveries(alert) == []


def test_an_alert_opened_without_a_savepoint_keeps_the_history_row_of_a_save(clinic: Clinic, nurse: Any) -> None:
    from simple_history.models import HistoricalRecords

    patient = PatientFactory(clinic=clinic)
    request = mock.Mock(user=nurse)
    HistoricalRecords.context.request = request
    try:
        opened = raise_alert(patient)
        saved = Alert.objects.create(patient=patient, kind="hemoglobin_falling", severity="high", opened_at=OPENED)
    finally:
        del HistoricalRecords.context.request
    rows = {h.id: h for h in Alert.history.filter(id__in=[opened.pk, saved.pk])}

    assert len(rows) == 2
    for row in rows.values():
        assert (row.history_type, row.history_user_id, row.history_change_reason) == ("+", nurse.pk, None)
    assert rows[opened.pk].instance.evidence == {"result_ids": [1]} and rows[opened.pk].status == "open"


def test_alert_raise_returns_the_alert_a_concurrent_transaction_opened(clinic: Clinic) -> None:
    patient = PatientFactory(clinic=clinic)
    first = raise_alert(patient)

    again, created = alert_raise(
        patient=patient, kind="platelets_critical", severity="high", message="m", rule_id="A-P3", none_unresolved=True
    )

    assert (again.pk, created) == (first.pk, False)
    assert Alert.objects.filter(patient=patient).count() == 1
