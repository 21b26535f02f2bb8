"""Bulk work cannot hold up a patient's reminder (CELERY_TASK_QUEUES and CELERY_TASK_ROUTES, docs/scaling.md "Workers
and queues"): PostgreSQL, the machine's Redis, an aiosmtpd server and a real Celery worker process that consumes
only the interactive queue ("celery"), as `make run`'s `worker` does.

A first monitoring run's shards wait in the "bulk" queue with nobody taking them, as when every bulk worker is busy
with a long sweep. A reminder written after them, and one that falls due and is handed over by the outbox sweep that
beat sends, both reach the patient's mailbox while the shards are still waiting. Before the split the reminders
queued behind the shards on the one queue every worker shared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import redis
from celery.beat import ScheduleEntry, Scheduler
from django.utils import timezone

from tests.integration.conftest import (
    SmtpRecorder,
    Worker,
    address,
    make_dose_reminders,
    status_counts,
    wait_delivered,
)
from tracker.celery import app
from tracker.tasks import run_sweep_shard

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SHARDS = 20  # a first monitoring run at 100,000 patients: 20 shards of 5,000 ids (docs/scaling.md)


@pytest.fixture
def queues(main_redis: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(main_redis, socket_connect_timeout=2)
    yield client
    client.close()


def send_as_beat(name: str) -> None:
    """Send the beat entry `name` of CELERY_BEAT_SCHEDULE through beat's own code (its options included)."""
    entry = ScheduleEntry(name=name, app=app, **app.conf.beat_schedule[name])
    Scheduler(app, lazy=True).apply_async(entry, advance=False)


def queue_a_first_monitoring_run(queues: redis.Redis) -> None:
    """The shards a first monitoring run fans out, as run_sweep sends them; no worker here takes them."""
    at = timezone.now().isoformat()
    for n in range(SHARDS):
        run_sweep_shard.si("monitoring", at, n * 5000, (n + 1) * 5000, "no-lock").apply_async()
    assert queues.llen("bulk") == SHARDS
    assert queues.llen("celery") == 0


def test_a_reminder_written_after_a_sweeps_shards_is_delivered_while_they_wait(
    builtin_protocols: None,
    smtp: tuple[SmtpRecorder, int],
    main_redis: str,
    start_worker: Callable[..., Worker],
    queues: redis.Redis,
) -> None:
    recorder, port = smtp
    worker = start_worker(main_redis, port, concurrency=1, queues="celery")
    queue_a_first_monitoring_run(queues)

    make_dose_reminders(1, due_at=timezone.now())  # due now: dispatched on commit
    wait_delivered(1, timeout=30)

    assert status_counts() == {"sent": 1}
    assert recorder.count_by_address() == {address(0): 1}
    assert queues.llen("bulk") == SHARDS, "the reminder went out before any shard ran"
    assert "Task tracker.run_sweep_shard[" not in worker.output()


def test_a_reminder_falling_due_is_handed_over_by_the_outbox_sweep_while_the_shards_wait(
    builtin_protocols: None,
    smtp: tuple[SmtpRecorder, int],
    main_redis: str,
    start_worker: Callable[..., Worker],
    queues: redis.Redis,
) -> None:
    """A reminder planned ahead waits in the outbox table until it falls due; beat's outbox sweep then hands it to a
    worker. That sweep goes to the interactive queue, so it does not wait behind the shards either."""
    recorder, port = smtp
    worker = start_worker(main_redis, port, concurrency=1, queues="celery")
    queue_a_first_monitoring_run(queues)
    make_dose_reminders(3, due_at=timezone.now() - timedelta(seconds=1), dispatch_now=False)
    assert status_counts() == {"pending": 3}

    send_as_beat("outbox")
    wait_delivered(3, timeout=30)

    assert status_counts() == {"sent": 3}
    assert recorder.count_by_address() == {address(n): 1 for n in range(3)}
    assert queues.llen("bulk") == SHARDS
    assert "Task tracker.run_sweep[" in worker.output()  # the outbox sweep ran on the interactive worker
    assert "Task tracker.run_sweep_shard[" not in worker.output()
