"""A worker whose Redis restarts while its tasks are sending (tracker/worker.py): it keeps running, the sends in flight
finish and are acknowledged after the reconnection, and the outbox sweep queues again what the restart lost. Each
message is sent once."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.utils import timezone

from notifications.models import Delivery, DeliveryStatus
from tests.integration.conftest import address, make_dose_reminders, sweep_until_delivered, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_sends_in_flight_when_redis_restarts(
    builtin_protocols: Any, smtp: Any, broker: Any, throwaway_redis: Any, start_worker: Any
) -> None:
    recorder, port = smtp
    recorder.delay = 3.0  # each send outlasts the broker's absence
    broker(throwaway_redis.url)
    worker = start_worker(throwaway_redis.url, port)
    make_dose_reminders(8, due_at=timezone.now())
    sending = Delivery.objects.filter(status=DeliveryStatus.SENDING)
    wait_for(lambda: sending.count() == 4, 20, "a send in flight in each of the 4 worker processes")
    throwaway_redis.stop()  # the 4 messages still queued vanish with it
    time.sleep(1)
    throwaway_redis.start()
    wait_for(lambda: not sending.exists(), 30, "the sends in flight")
    sweep_until_delivered(8, rounds=12, worker=worker)
    log = worker.output()
    assert worker.proc.poll() is None, f"the worker exited; its log ends:\n{log[-4000:]}"
    assert "Unrecoverable error" not in log, log[-4000:]
    assert recorder.count_by_address() == {address(n): 1 for n in range(8)}
