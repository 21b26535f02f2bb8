"""A sweep never overlaps itself (tracker.sweeps.sweep_lock): the beat's next run of a sweep still going is
skipped; the lock expires should its holder die. On the machine's Redis: db 14 for the first pytest-xdist worker,
db 5, 6, ... for the others (the tests of this file run on several workers at once, and each test empties the lock
keys before and after it: on one database a test's setup deleted the lock another test was holding)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.conftest import require_service
from tracker import sweeps
from tracker.tasks import finish_sweep, run_sweep, run_sweep_shard

WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
URL = f"redis://127.0.0.1:6379/{14 if WORKER == 0 else 4 + WORKER}"


@pytest.fixture
def lock_redis(settings: Any) -> Iterator[redis.Redis]:
    require_service("Redis", "127.0.0.1", 6379)
    settings.COBALT = {**settings.COBALT, "SWEEP_LOCK_URL": URL, "SWEEP_LOCK_SECONDS": 60}
    client = redis.Redis.from_url(URL)
    for key in client.scan_iter("cobalt:sweep-lock:*"):
        client.delete(key)
    yield client
    for key in client.scan_iter("cobalt:sweep-lock:*"):
        client.delete(key)
    client.close()


def test_a_second_run_of_a_sweep_still_going_does_not_get_the_lock(lock_redis: redis.Redis) -> None:
    with sweeps.sweep_lock("monitoring") as first:
        with sweeps.sweep_lock("monitoring") as second, sweeps.sweep_lock("reminders") as other:
            assert (first, second, other) == (True, False, True)
        # The run that did not get the lock leaves it in place
        assert lock_redis.exists("cobalt:sweep-lock:monitoring")
    # and the holder releases it when done.
    assert not lock_redis.exists("cobalt:sweep-lock:monitoring")
    with sweeps.sweep_lock("monitoring") as again:
        assert again is True


def test_a_long_run_keeps_its_lock_past_the_expiry(lock_redis: redis.Redis) -> None:
    with sweeps.sweep_lock("monitoring", seconds=1) as first:
        time.sleep(1.5)  # longer than the expiry: the holder renews it while it runs
        with sweeps.sweep_lock("monitoring") as second:
            assert (first, second) == (True, False)


def test_the_lock_of_a_dead_worker_expires(lock_redis: redis.Redis) -> None:
    # A worker died holding the lock: nobody renews it any more.
    lock_redis.set("cobalt:sweep-lock:monitoring", "dead-worker", ex=60)
    with sweeps.sweep_lock("monitoring") as meanwhile:
        assert meanwhile is False
    # Its expiry comes (brought forward rather than waited for: a loaded machine once took over a second to reach
    # the first check, and a one-second lock had expired before it)
    lock_redis.pexpire("cobalt:sweep-lock:monitoring", 50)
    time.sleep(0.2)
    with sweeps.sweep_lock("monitoring") as later:
        assert later is True


def test_a_late_release_frees_nothing_that_is_not_its_own(lock_redis: redis.Redis) -> None:
    stuck = sweeps.sweep_lock("monitoring", seconds=1, renew=False)  # a run whose renewals stopped
    assert stuck.__enter__() is True
    time.sleep(1.3)
    with sweeps.sweep_lock("monitoring") as next_run:
        assert next_run is True
        stuck.__exit__(None, None, None)  # the stuck run finishes now
        assert lock_redis.exists("cobalt:sweep-lock:monitoring")  # still held by the next run


@pytest.mark.django_db
def test_the_beat_task_skips_a_sweep_that_is_still_running(lock_redis: redis.Redis) -> None:
    with sweeps.sweep_lock("horizons"):
        assert run_sweep("horizons") == {"skipped_running": 1}
    assert run_sweep("horizons") == {"extended": 0}


# A fanned-out run (tracker/tasks.py): run_sweep takes the lock, its shards and callback hold it with its token.
AT = "2027-01-04T10:00:00+00:00"


def test_a_shard_of_a_run_that_lost_its_lock_to_another_run_does_nothing(lock_redis: redis.Redis) -> None:
    stale = sweeps.lock_acquire("staff", seconds=1)
    assert stale is not None
    time.sleep(1.3)  # its shards waited in the queue past the expiry
    current = sweeps.lock_acquire("staff")  # and the next beat's run took the lock
    assert current is not None

    assert run_sweep_shard("staff", AT, None, None, stale) == {"counts": {}, "worker": "inline", "skipped": True}
    # Its callback skips the digests and leaves the other run's lock alone.
    done = finish_sweep([{"counts": {"escalated": 0}, "worker": "w1", "skipped": False}], "staff", AT, stale)
    assert done["counts"] == {"escalated": 0}
    assert lock_redis.get("cobalt:sweep-lock:staff") == current.encode()


def test_a_shard_takes_back_its_expired_lock_when_no_other_run_took_it(lock_redis: redis.Redis) -> None:
    token = sweeps.lock_acquire("monitoring", seconds=1)
    assert token is not None
    time.sleep(1.3)
    assert not lock_redis.exists("cobalt:sweep-lock:monitoring")
    assert sweeps.lock_hold("monitoring", token) is True
    # Held again for SWEEP_LOCK_SECONDS: the next beat is skipped until the callback releases it.
    assert run_sweep("monitoring") == {"skipped_running": 1}
    assert lock_redis.ttl("cobalt:sweep-lock:monitoring") > 30
    sweeps.lock_release("monitoring", token)
    assert not lock_redis.exists("cobalt:sweep-lock:monitoring")


def test_without_a_lock_url_every_run_goes_ahead(settings: Any) -> None:
    settings.COBALT = {**settings.COBALT, "SWEEP_LOCK_URL": ""}
    with sweeps.sweep_lock("monitoring") as first, sweeps.sweep_lock("monitoring") as second:
        assert (first, second) == (True, True)


@pytest.mark.django_db
def test_a_shard_that_raises_still_lets_the_callback_run_the_global_part_and_free_the_lock(
    lock_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A chord whose member raised never calls its callback: the shard reports its failure instead, so the
    once-only part still runs and the lock is released for the next beat (which does the shard again)."""
    real = sweeps.load()
    finished: list[str] = []

    class Broken:
        def run_shard(self, at: Any, shard: sweeps.Shard) -> dict[str, int]:
            raise RuntimeError("the database went away")

        def finish(self, at: Any) -> dict[str, int]:
            finished.append(str(at))
            return {"digest_messages": 2}

    monkeypatch.setattr(sweeps, "load", lambda: {**real, "staff": Broken()})
    token = sweeps.lock_acquire("staff")
    assert token is not None

    failed = run_sweep_shard("staff", AT, 1, 5001, token)
    assert failed == {"counts": {}, "worker": "inline", "skipped": False, "failed": "RuntimeError"}
    assert "shard [1, 5001) failed" in caplog.text

    done = finish_sweep([failed, {"counts": {"escalated": 3}, "worker": "w2", "skipped": False}], "staff", AT, token)
    assert finished == ["2027-01-04 10:00:00+00:00"]
    assert done["failed_shards"] == 1 and done["counts"] == {"escalated": 3, "digest_messages": 2}
    assert not lock_redis.exists("cobalt:sweep-lock:staff")
    assert sweeps.lock_acquire("staff") is not None  # the next beat's run goes ahead
