"""One sweep fanned out over two real Celery worker processes (tracker/tasks.py): a throwaway redis-server is
the broker, the result backend the chord needs and the sweep lock; PostgreSQL is the test database. The
shards of one `run_sweep` land on both workers, the rows written are those of an inline run, and a second
`run_sweep` while the first is still going is skipped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from celery.result import AsyncResult
from django.db import transaction
from django.utils import timezone

from tests.integration.conftest import RedisServer, Worker, use_broker
from tests.tracker.test_sweep_shards import population, snapshot
from tracker import sweeps
from tracker.celery import app
from tracker.tasks import run_sweep

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LOCK = "cobalt:sweep-lock:monitoring"


@pytest.fixture
def fanout_redis(throwaway_redis: RedisServer, settings: Any) -> Iterator[str]:
    """This process sends to, reads results from and locks on the throwaway Redis; shards of 3 patient ids."""
    url = throwaway_redis.url
    saved = (app.conf.broker_url, app.conf.result_backend, app.conf.task_publish_retry)
    app.conf.task_publish_retry = False
    use_broker(url)
    app.conf.result_backend = url
    app._local.__dict__.pop("backend", None)  # the backend object is cached per thread
    settings.COBALT = {**settings.COBALT, "SWEEP_LOCK_URL": url, "SWEEP_SHARD_SIZE": 3}
    yield url
    app.conf.result_backend, app.conf.task_publish_retry = saved[1], saved[2]
    app._local.__dict__.pop("backend", None)
    use_broker(saved[0])


def finished(sent: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = AsyncResult(sent["finish"], app=app).get(timeout=40)
    return result


def test_one_run_sweep_is_shared_by_two_workers_and_writes_what_an_inline_run_writes(
    builtin_protocols: None, smtp: Any, fanout_redis: str, start_worker: Callable[..., Worker]
) -> None:
    population(timezone.localdate() - timedelta(days=40))  # overdue doses, neuro symptoms without B12
    now = timezone.now()
    with transaction.atomic():  # the rows an inline run writes, then back to the same database
        inline_counts = sweeps.run("monitoring", now)
        expected = snapshot()
        transaction.set_rollback(True)
    assert inline_counts["dose_overdue_raised"] > 0 and expected["alerts"]

    _recorder, port = smtp
    # One task at a time each, so the five shards cannot all go to whichever worker polls first.
    workers = [start_worker(fanout_redis, port, concurrency=1) for _ in range(2)]

    sent = run_sweep("monitoring", now.isoformat())  # as of the same instant
    assert sent["shards"] == 5
    # Beat fires again while the shards run: the lock, held until the chord's callback, skips it.
    assert run_sweep("monitoring") == {"skipped_running": 1}

    done = finished(sent)
    assert done["shards"] == 5 and done["skipped_shards"] == 0
    assert {w.split("@")[0] for w in done["workers"]} == {w.name for w in workers}
    assert done["counts"] == inline_counts
    assert snapshot() == expected
    client = redis.Redis.from_url(fanout_redis)
    try:
        assert not client.exists(LOCK)  # released by the callback
    finally:
        client.close()

    # The next run finds everything done: nothing raised, nothing resolved, the same rows.
    again = finished(run_sweep("monitoring", now.isoformat()))
    assert not any(v for k, v in again["counts"].items() if k.endswith(("_raised", "_resolved", "_escalated")))
    assert snapshot() == expected
