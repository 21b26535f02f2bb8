"""The outbox worker (notifications/delivery.py): claim, retry with backoff, permanent failure, channels."""

from __future__ import annotations

import json
import smtplib
from datetime import timedelta
from io import StringIO
from typing import Any
from unittest import mock

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from notifications import channels
from notifications.channels import PermanentError, TransientError
from notifications.channels.email import EmailChannel
from notifications.delivery import deliver_one
from notifications.models import Alert, Delivery
from notifications.outbox import enqueue
from notifications.tasks import deliver
from tracker import sweeps

pytestmark = pytest.mark.django_db


def reminder(patient: Any, key: str = "t:1", **fields: Any) -> Delivery:
    values: dict[str, Any] = {
        "purpose": "staff_task",
        "channel": "email",
        "body": "Hello",
        "subject": "Hi",
        "due_at": timezone.now() - timedelta(minutes=1),
        "patient": patient,
        "address": "pat@example.test",
        **fields,
    }
    delivery, _ = enqueue(key=key, **values)
    return delivery


class Failing:
    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)

    def send(self, delivery: Delivery) -> str:
        if self.errors:
            raise self.errors.pop(0)
        return "ok-1"


@pytest.fixture
def fake_channel() -> Any:
    def install(*errors: Exception) -> None:
        channels.register("webhook", Failing(*errors))

    yield install
    channels._REGISTRY.pop("webhook", None)


def test_two_workers_handed_the_same_row_send_it_once(patient: Any) -> None:
    delivery = reminder(patient)

    assert deliver_one(delivery.pk) == "sent"
    assert deliver_one(delivery.pk) == "skipped"
    assert len(mail.outbox) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.attempt_log.count()) == ("sent", 1, 1)


def test_a_row_not_yet_due_or_cancelled_is_not_sent(patient: Any) -> None:
    later = reminder(patient, key="t:later", due_at=timezone.now() + timedelta(hours=1))
    cancelled = reminder(patient, key="t:cancelled")
    Delivery.objects.filter(pk=cancelled.pk).update(status="cancelled")

    assert deliver_one(later.pk) == "skipped"
    assert deliver_one(cancelled.pk) == "skipped"
    assert mail.outbox == []


def test_a_transient_failure_retries_with_backoff_then_fails_and_alerts(
    patient: Any, settings: Any, fake_channel: Any
) -> None:
    settings.COBALT = {**settings.COBALT, "DELIVERY_MAX_ATTEMPTS": 2, "DELIVERY_BACKOFF_SECONDS": 60}
    fake_channel(TransientError("451 try later"), TransientError("451 try later"))
    delivery = reminder(patient, channel="webhook")
    now = timezone.now()

    assert deliver_one(delivery.pk, now=now) == "retry"
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    assert delivery.due_at == now + timedelta(seconds=60)
    assert deliver_one(delivery.pk, now=now + timedelta(seconds=30)) == "skipped"  # backoff holds

    assert deliver_one(delivery.pk, now=now + timedelta(seconds=61)) == "failed"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert [a.outcome for a in delivery.attempt_log.all()] == ["transient", "permanent"]
    assert Alert.objects.filter(patient=patient, kind="delivery_failed").count() == 1


def test_a_permanent_failure_fails_at_once_and_raises_one_alert(patient: Any, fake_channel: Any) -> None:
    fake_channel(PermanentError("550 no such user"), PermanentError("550 no such user"))
    first = reminder(patient, key="t:a", channel="webhook")
    second = reminder(patient, key="t:b", channel="webhook")

    assert deliver_one(first.pk) == "failed"
    assert deliver_one(second.pk) == "failed"
    alerts = Alert.objects.filter(patient=patient, kind="delivery_failed")
    assert alerts.count() == 1
    assert "550" in alerts.get().message


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (smtplib.SMTPRecipientsRefused({"a@b": (451, b"later")}), TransientError),
        (smtplib.SMTPRecipientsRefused({"a@b": (550, b"unknown")}), PermanentError),
        (smtplib.SMTPDataError(554, b"rejected"), PermanentError),
        (smtplib.SMTPServerDisconnected("gone"), TransientError),
        (ConnectionRefusedError("refused"), TransientError),
    ],
)
def test_smtp_errors_map_to_transient_or_permanent(
    patient: Any, monkeypatch: Any, error: Exception, expected: type
) -> None:
    def send(self: Any, fail_silently: bool = False) -> int:
        raise error

    monkeypatch.setattr("django.core.mail.EmailMessage.send", send)
    with pytest.raises(expected):
        EmailChannel().send(reminder(patient))


def test_run_sweeps_delivers_what_is_due_once(patient: Any) -> None:
    reminder(patient, key="t:due")
    reminder(patient, key="t:tomorrow", due_at=timezone.now() + timedelta(days=1))

    call_command("run_sweeps", "--only", "outbox")
    call_command("run_sweeps", "--only", "outbox")

    assert len(mail.outbox) == 1
    assert Delivery.objects.get(idempotency_key="t:tomorrow").status == "pending"


def test_the_outbox_sweep_reclaims_rows_a_dead_worker_left_sending(patient: Any, settings: Any) -> None:
    delivery = reminder(patient)
    stale = timezone.now() - timedelta(seconds=settings.COBALT["DELIVERY_LEASE_SECONDS"] + 1)
    Delivery.objects.filter(pk=delivery.pk).update(status="sending", claimed_at=stale, attempts=1)

    call_command("run_sweeps", "--only", "outbox")

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert len(mail.outbox) == 1


def test_queue_health_reports_waiting_failed_and_sent_rows(patient: Any) -> None:
    reminder(patient, key="t:sent")
    call_command("run_sweeps", "--only", "outbox")
    reminder(patient, key="t:waiting")
    failed = reminder(patient, key="t:failed", channel="sms", address="")
    deliver_one(failed.pk)

    out = StringIO()
    call_command("queue_health", "--json", stdout=out)
    health = json.loads(out.getvalue())

    assert (health["pending"], health["due_now"]) == (1, 1)
    assert health["failed_last_24h_by_channel"] == {"sms": 1}
    assert health["sent_last_24h_by_channel"] == {"email": 1}
    text = StringIO()
    call_command("queue_health", stdout=text)
    assert "pending: 1 (due now: 1)" in text.getvalue()


def test_queue_health_reads_the_outbox_in_two_queries_whatever_its_size(
    patient: Any, django_assert_num_queries: Any
) -> None:
    from django.conf import settings

    from notifications.management.commands.queue_health import queue_health

    now = timezone.now()
    stale = now - timedelta(seconds=settings.COBALT["DELIVERY_LEASE_SECONDS"] + 1)
    stuck = reminder(patient, key="t:stuck")
    Delivery.objects.filter(pk=stuck.pk).update(status="sending", claimed_at=stale)
    reminder(patient, key="t:claimed")
    Delivery.objects.filter(idempotency_key="t:claimed").update(status="sending", claimed_at=now)
    reminder(patient, key="t:later", due_at=now + timedelta(hours=1))
    for size, pending, due_now in ((1, 2, 1), (40, 42, 41)):  # the rows so far, and one not due yet
        oldest = now - timedelta(hours=size)
        for n in range(size):
            reminder(patient, key=f"t:{size}:{n}", due_at=oldest + timedelta(minutes=n))
        with django_assert_num_queries(2):
            health = queue_health(now)
        assert (health["pending"], health["due_now"]) == (pending, due_now)
        assert (health["sending"], health["sending_lease_expired"]) == (2, 1)
        assert health["oldest_due_at"] == oldest.isoformat()
        assert health["oldest_due_age_seconds"] == size * 3600


def test_the_admin_log_masks_recipients_and_retries_failed_rows(patient: Any, admin_client: Any) -> None:
    failed = reminder(patient, key="t:failed", address="jane.doe@example.test")
    Delivery.objects.filter(pk=failed.pk).update(status="failed")

    page = admin_client.get("/admin/notifications/delivery/")
    assert page.status_code == 200
    assert b"j***@example.test" in page.content
    assert b"jane.doe@example.test" not in page.content

    admin_client.post(
        "/admin/notifications/delivery/", {"action": "retry_now", "_selected_action": [failed.pk]}
    )
    assert Delivery.objects.get(pk=failed.pk).status == "pending"


def test_the_outbox_sweep_hands_each_due_row_to_a_worker_once_in_due_order_past_a_broker_refusal(
    patient: Any,
) -> None:
    due = [reminder(patient, key=f"t:{n}", due_at=timezone.now() - timedelta(minutes=10 - n)) for n in range(3)]
    reminder(patient, key="t:later", due_at=timezone.now() + timedelta(hours=1))
    handed: list[int] = []

    def delay(delivery_id: int) -> None:
        handed.append(delivery_id)
        if len(handed) == 2:
            raise ConnectionRefusedError("broker down")

    with mock.patch.object(deliver, "delay", side_effect=delay):
        counts = sweeps.run("outbox", timezone.now())

    # The refused one stays pending, like the others until a worker claims them: the next sweep hands it out again.
    assert handed == [d.pk for d in due]
    assert (counts["due"], counts["dispatched"]) == (3, 3)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"pending"}
