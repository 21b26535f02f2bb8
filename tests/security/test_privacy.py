"""Issue 12: provider errors are kept and shown without addresses; staff email subjects name no patient and
no diagnosis."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from notifications import channels, messages
from notifications.channels import PermanentError, TransientError
from notifications.delivery import deliver_one, scrub
from notifications.models import Alert, Delivery, DeliveryAttempt
from notifications.outbox import enqueue

pytestmark = pytest.mark.django_db

ADDRESS = "Jane.Doe+b12@example.org"


class Refusing:
    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)

    def send(self, delivery: Delivery) -> str:
        raise self.errors.pop(0)


@pytest.fixture
def refusing() -> Any:
    def install(*errors: Exception) -> None:
        channels.register("webhook", Refusing(*errors))

    yield install
    channels._REGISTRY.pop("webhook", None)


def delivery_for(patient: Any, address: str = ADDRESS) -> Delivery:
    delivery, _ = enqueue(
        key="privacy:1", purpose="staff_task", channel="webhook", body="Hello", subject="Hi",
        due_at=timezone.now() - timedelta(minutes=1), patient=patient, address=address,
    )  # fmt: skip
    return delivery


def everything_stored(delivery: Delivery) -> str:
    delivery.refresh_from_db()
    attempts = list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("error", flat=True))
    alerts = [(a.message, json.dumps(a.evidence)) for a in Alert.objects.filter(patient=delivery.patient)]
    return json.dumps([delivery.last_error, attempts, alerts])


def test_a_permanent_failure_stores_and_alerts_without_the_address(patient: Any, refusing: Any) -> None:
    refusing(PermanentError(f"550 5.1.1 <{ADDRESS.lower()}>: Recipient address rejected"))
    delivery = delivery_for(patient)
    assert deliver_one(delivery.pk) == "failed"
    stored = everything_stored(delivery)
    assert "jane.doe" not in stored.lower()
    assert "example.org" not in stored
    assert "550 5.1.1 <[recipient]>: Recipient address rejected" in stored
    assert Alert.objects.get(patient=patient, kind="delivery_failed")


def test_a_transient_failure_stores_no_phone_number(patient: Any, refusing: Any) -> None:
    refusing(TransientError("21211 The 'To' number +44 7700 900123 is not reachable, retry"))
    delivery = delivery_for(patient, address="+447700900123")
    assert deliver_one(delivery.pk) == "retry"
    stored = everything_stored(delivery)
    assert "900123" not in stored
    assert "21211" in stored  # the provider's error code stays: it is the reason


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("smtp: {'someone.else@clinic.nhs.uk': (550, b'unknown')}", "smtp: {'[recipient]': (550, b'unknown')}"),
        ("HTTP 400: invalid number (555) 010-9999", "HTTP 400: invalid number [recipient]"),
        ("451 4.7.1 try again later", "451 4.7.1 try again later"),
    ],
)
def test_scrub_removes_any_address_but_keeps_the_reason(patient: Any, error: str, expected: str) -> None:
    assert scrub(error, Delivery(address="")) == expected


def alert_context() -> dict[str, Any]:
    alert = {
        "id": 7, "patient": "Doe, Jane (MRN123)", "kind": "platelets_falling", "severity": "critical",
        "rule_id": "A-P3", "opened_at": "2027-01-04 10:00", "message": "Platelets 18", "action_text": "",
    }  # fmt: skip
    return {"alert": alert, "clinic": "Riverside", "hours": 1}


@pytest.mark.parametrize("render", [messages.staff_alert, messages.staff_escalation])
def test_staff_email_subjects_carry_no_patient_and_no_diagnosis(render: Any) -> None:
    subject, body = render(alert_context())
    for secret in ("Doe", "Jane", "MRN123", "platelets", "Platelets", "A-P3"):
        assert secret not in subject, (secret, subject)
    assert "CRITICAL" in subject and "Riverside" in subject
    assert "Doe, Jane (MRN123)" in body and "Platelets 18" in body  # the body, for staff, keeps the detail
    reopened, _ = messages.staff_alert({**alert_context(), "reopened": {"by": "lead", "note": "seen"}})
    assert "REOPENED" in reopened and "Doe" not in reopened and "platelets" not in reopened
