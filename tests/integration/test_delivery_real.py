"""Delivery with the real parts): PostgreSQL, Redis, Celery worker processes, aiosmtpd.

"Exactly once" is counted at the SMTP server: every delivery goes to its own address
(patient<n>@example.test), so a duplicate shows as two messages for one address.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from notifications.models import Alert, Delivery, DeliveryStatus
from tests.integration.conftest import (
    address,
    make_dose_reminders,
    status_counts,
    sweep_until_delivered,
    wait_delivered,
    wait_for,
)
from tracker import sweeps

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def assert_each_once(smtp: Any, count: int) -> None:
    counts = smtp.count_by_address()
    missing = [address(n) for n in range(count) if address(n) not in counts]
    twice = {a: c for a, c in counts.items() if c > 1}
    assert not missing, f"{len(missing)} never delivered, e.g. {missing[:3]}"
    assert not twice, f"{len(twice)} delivered more than once, e.g. {list(twice.items())[:3]}"
    assert smtp.total() == count


def test_a_thousand_due_reminders_are_each_delivered_once(builtin_protocols, smtp, main_redis, start_worker):
    recorder, port = smtp
    start_worker(main_redis, port)
    make_dose_reminders(1000, due_at=timezone.now())
    wait_delivered(1000, timeout=60)
    assert status_counts() == {"sent": 1000}
    assert_each_once(recorder, 1000)
    assert all(m.subject.startswith("Reminder") for m in recorder.messages)


def test_a_worker_killed_mid_batch_and_restarted_still_delivers_each_once(
    builtin_protocols, smtp, main_redis, start_worker, settings
):
    recorder, port = smtp
    recorder.delay = 0.01
    worker = start_worker(main_redis, port)
    make_dose_reminders(300, due_at=timezone.now())
    wait_for(lambda: recorder.total() >= 60, 30, "the first messages")
    worker.kill()
    in_flight = set(Delivery.objects.filter(status=DeliveryStatus.SENDING).values_list("address", flat=True))
    before = status_counts()
    assert before.get("pending", 0) + before.get("sending", 0) > 0, "killed too late to test anything"

    start_worker(main_redis, port)
    # The dead worker's claims are reclaimed after the lease; the sweep re-dispatches every pending row.
    settings.COBALT = {**settings.COBALT, "DELIVERY_LEASE_SECONDS": 0}
    sweeps.run("outbox", timezone.now() + timedelta(seconds=1))
    wait_delivered(300, timeout=30)

    assert status_counts() == {"sent": 300}
    counts = recorder.count_by_address()
    assert sorted(counts) == sorted(address(n) for n in range(300)), "a delivery was lost"
    # At-least-once edge: a row killed while 'sending' may have been accepted by SMTP just before SIGKILL
    # and is then sent again after the lease. Every other row must have gone exactly once.
    twice = {a for a, c in counts.items() if c > 1}
    assert twice <= in_flight, f"duplicates outside the in-flight rows: {sorted(twice - in_flight)[:5]}"
    assert len(in_flight) <= 4  # at most one per prefork process


def test_broker_going_away_loses_nothing(builtin_protocols, smtp, broker, throwaway_redis, start_worker):
    recorder, port = smtp
    recorder.delay = 0.01
    broker(throwaway_redis.url)
    worker = start_worker(throwaway_redis.url, port)
    make_dose_reminders(100, due_at=timezone.now())
    wait_for(lambda: recorder.total() >= 10, 20, "the first messages")
    throwaway_redis.stop()  # queued task messages vanish with it (no persistence)
    # Rows written while the broker is down: dispatch fails quietly, the rows wait in the table
    # (few: each failed publish costs ~2 s of redis-py connect retries).
    more = make_dose_reminders(5, due_at=timezone.now(), first=100)
    assert Delivery.objects.filter(pk__in=more, status=DeliveryStatus.PENDING).count() == 5

    throwaway_redis.start()  # same port: the worker reconnects
    wait_for(lambda: not Delivery.objects.filter(status=DeliveryStatus.SENDING).exists(), 20, "in-flight sends")
    # The outbox sweep is the safety net that re-queues what the dead broker lost; beat runs it every minute. Up to two
    # minutes of sweeps: on a loaded machine the worker's reconnection can take a minute.
    sweep_until_delivered(105, rounds=24, worker=worker)
    assert status_counts() == {"sent": 105}
    assert_each_once(recorder, 105)


def test_smtp_4xx_then_accept_delivers_once_on_the_second_attempt(builtin_protocols, smtp, main_redis, start_worker):
    recorder, port = smtp
    recorder.mode, recorder.tempfail_times = "tempfail", 1
    start_worker(main_redis, port)
    (delivery_id,) = make_dose_reminders(1, due_at=timezone.now())

    def retried() -> bool:
        row = Delivery.objects.get(pk=delivery_id)
        return row.status == DeliveryStatus.PENDING and row.attempts == 1

    wait_for(retried, 20, "the 451 to put the row back to pending")
    row = Delivery.objects.get(pk=delivery_id)
    assert row.due_at > timezone.now() - timedelta(seconds=1)  # backoff, not an immediate retry
    wait_for(lambda: timezone.now() >= row.due_at, 5, "the backoff")
    sweeps.run("outbox", timezone.now())
    wait_delivered(1, timeout=20)
    row.refresh_from_db()
    assert (row.status, row.attempts) == (DeliveryStatus.SENT, 2)
    assert recorder.count_by_address() == {address(0): 1}
    assert recorder.rcpt_attempts[address(0)] == 2


def test_smtp_5xx_fails_the_row_and_raises_a_delivery_failed_alert(builtin_protocols, smtp, main_redis, start_worker):
    recorder, port = smtp
    recorder.mode = "reject"
    start_worker(main_redis, port)
    (delivery_id,) = make_dose_reminders(1, due_at=timezone.now())
    wait_delivered(1, timeout=20)
    row = Delivery.objects.get(pk=delivery_id)
    assert (row.status, row.attempts) == (DeliveryStatus.FAILED, 1)
    assert "550" in row.last_error
    alert = Alert.objects.get(patient_id=row.patient_id)
    assert alert.kind == "delivery_failed"
    assert recorder.total() == 0


def test_two_outbox_sweeps_at_once_send_each_message_once(builtin_protocols, smtp, main_redis, start_worker):
    recorder, port = smtp
    start_worker(main_redis, port)
    # Rows due a second ago but never dispatched: only the sweeps hand them to the worker.
    make_dose_reminders(200, due_at=timezone.now() - timedelta(seconds=1), dispatch_now=False)
    assert status_counts() == {"pending": 200}
    at = timezone.now()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            barrier.wait(5)
            sweeps.run("outbox", at)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    wait_delivered(200, timeout=30)
    assert Delivery.objects.count() == 200
    assert status_counts() == {"sent": 200}
    assert_each_once(recorder, 200)
