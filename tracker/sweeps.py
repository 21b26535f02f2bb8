"""The periodic sweeps. Each app registers its sweep here; `run_sweeps --at` and Celery beat
both call them through this module, so the two can never drift apart.

A sweep has up to two parts, each a function `part(at: datetime) -> dict[str, int]` (counts for the log):

- its per-patient part (`@register(name)`), run once per shard: a range of patient ids (`Shard`). The part
  restricts the querysets that select its work with `in_shard(queryset, "patient_id")`, a no-op when no
  shard is set. Celery runs the shards of one sweep on several workers at once (tracker/tasks.py);
  `run_sweeps` and a small database run them one after the other in-process, through the same code.
- its global part (`@register(name, once=True)`), cheap and not per patient (the clinics' digests, the
  outbox), run once after every shard is done.

Each part must be idempotent: running it twice for the same instant changes nothing the second time, and
a shard run again (a redelivered task) changes nothing either.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from importlib import import_module
from typing import Any, TypeVar

from django.conf import settings
from django.db.models import QuerySet

from tracker import events

log = logging.getLogger(__name__)

SweepFunction = Callable[[datetime], dict[str, int]]
_INLINE_DELIVERY: ContextVar[bool] = ContextVar("inline_delivery", default=False)


def inline_delivery() -> bool:
    """True under `manage.py run_sweeps`: the outbox sweep sends due rows itself instead of queueing them."""
    return _INLINE_DELIVERY.get()


@contextmanager
def delivering_inline() -> Iterator[None]:
    token = _INLINE_DELIVERY.set(True)
    try:
        yield
    finally:
        _INLINE_DELIVERY.reset(token)


# --- Shards --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shard:
    """The patients with `lo <= id < hi`; None: no bound on that side (the last shard also takes the
    patients created after the shards were computed)."""

    lo: int | None = None
    hi: int | None = None

    def contains(self, patient_id: int) -> bool:
        return (self.lo is None or patient_id >= self.lo) and (self.hi is None or patient_id < self.hi)


_SHARD: ContextVar[Shard | None] = ContextVar("sweep_shard", default=None)
Q = TypeVar("Q", bound=QuerySet[Any])


def current_shard() -> Shard | None:
    """The shard the running sweep part works on; None outside a sharded run (everything)."""
    return _SHARD.get()


@contextmanager
def in_shard_of(shard: Shard | None) -> Iterator[None]:
    token = _SHARD.set(shard)
    try:
        yield
    finally:
        _SHARD.reset(token)


def in_shard(queryset: Q, patient_field: str) -> Q:
    """`queryset` restricted to the current shard's patients through `patient_field` ("patient_id",
    "regimen__patient_id", "pk" on patients, ...); unchanged when no shard is set."""
    shard = current_shard()
    if shard is None:
        return queryset
    if shard.lo is not None:
        queryset = queryset.filter(**{f"{patient_field}__gte": shard.lo})
    if shard.hi is not None:
        queryset = queryset.filter(**{f"{patient_field}__lt": shard.hi})
    return queryset


def shards(size: int | None = None) -> list[Shard]:
    """The patient id ranges of `size` ids (SWEEP_SHARD_SIZE) from the lowest patient id to the highest
    (the patients app answers "patients.id_range"; one query). The first is open below, the last above, so
    together they cover every patient, also one created meanwhile. One shard (everything) when they all fit."""
    size = int(size or settings.COBALT.get("SWEEP_SHARD_SIZE", 5000))
    bounds: tuple[int, int] | None = events.answer("patients.id_range", None)
    if bounds is None or size < 1:
        return [Shard()]
    lo, hi = bounds
    cuts = list(range(lo + size, hi + 1, size))
    if not cuts:
        return [Shard()]
    edges: list[int | None] = [None, *cuts, None]
    return [Shard(a, b) for a, b in zip(edges, edges[1:], strict=False)]


# --- Registry ------------------------------------------------------------------------------------------


def _add(counts: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    for key, value in more.items():
        counts[key] = counts.get(key, 0) + int(value)
    return counts


@dataclass
class Sweep:
    """A registered sweep; calling it runs the whole sweep in-process: every shard in turn, then the
    global part (what `run_sweeps` does, and a Celery run when there is one shard)."""

    name: str
    per_shard: SweepFunction | None = None
    once: SweepFunction | None = None

    def shards(self, size: int | None = None) -> list[Shard]:
        return shards(size) if self.per_shard is not None else []

    def run_shard(self, at: datetime, shard: Shard) -> dict[str, int]:
        if self.per_shard is None:
            return {}
        with in_shard_of(shard):
            return self.per_shard(at)

    def finish(self, at: datetime) -> dict[str, int]:
        return self.once(at) if self.once is not None else {}

    def __call__(self, at: datetime) -> dict[str, int]:
        counts: dict[str, int] = {}
        for shard in self.shards():
            _add(counts, self.run_shard(at, shard))
        return _add(counts, self.finish(at))


def add_counts(results: list[dict[str, int]]) -> dict[str, int]:
    """The counts of several shards summed per key."""
    counts: dict[str, int] = {}
    for result in results:
        _add(counts, result)
    return counts


_SWEEPS: dict[str, Sweep] = {}

# Modules that register sweeps when imported, in the order the sweeps run.
SWEEP_MODULES = ("regimens.sweeps", "monitoring.sweep", "monitoring.queue", "notifications.sweeps")


def register(name: str, *, once: bool = False) -> Callable[[SweepFunction], SweepFunction]:
    """Register the decorated function as the per-shard part of sweep `name`, or with `once=True` as its
    global part (run once, after the shards)."""

    def decorator(func: SweepFunction) -> SweepFunction:
        sweep = _SWEEPS.setdefault(name, Sweep(name))
        if once:
            sweep.once = func
        else:
            sweep.per_shard = func
        return func

    return decorator


def load() -> dict[str, Sweep]:
    for module in SWEEP_MODULES:
        try:
            import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return dict(_SWEEPS)


def run(name: str, at: datetime) -> dict[str, int]:
    return load()[name](at)


def run_all(at: datetime) -> dict[str, dict[str, int]]:
    return {name: sweep(at) for name, sweep in load().items()}


# --- Non-overlap ------------------------------------------------------------------------------------


# Delete the key only if it still holds our token: an expired lock another run has taken is not ours.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
# Push the expiry on, again only while the key holds our token.
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)
# A shard or callback of a fanned-out run: renew the lock while ours, take it back (same token) if it expired
# and nobody took it meanwhile; 0 when another run holds it.
_HOLD = (
    "local v = redis.call('get', KEYS[1]) "
    "if v == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end "
    "if not v then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end "
    "return 0"
)


def _lock_client() -> Any:
    url = str(settings.COBALT.get("SWEEP_LOCK_URL") or "")
    if not url:
        return None
    import redis

    return redis.Redis.from_url(url)


def _lock_key(name: str) -> str:
    return f"cobalt:sweep-lock:{name}"


def _ttl(seconds: int | None = None) -> int:
    return int(seconds or settings.COBALT.get("SWEEP_LOCK_SECONDS", 60))


def lock_acquire(name: str, *, seconds: int | None = None) -> str | None:
    """Take the lock of sweep `name` for `seconds` (SWEEP_LOCK_SECONDS): its token, or None when another run
    holds it. Without SWEEP_LOCK_URL: always a token."""
    token = uuid.uuid4().hex
    client = _lock_client()
    if client is None:
        return token
    try:
        return token if client.set(_lock_key(name), token, nx=True, ex=_ttl(seconds)) else None
    finally:
        client.close()


def lock_hold(name: str, token: str) -> bool:
    """For a shard or the callback of a run that holds `token`: push the expiry on, or take the lock back
    if it expired and no other run took it. False when another run holds it (this one then does nothing)."""
    client = _lock_client()
    if client is None:
        return True
    try:
        return bool(client.eval(_HOLD, 1, _lock_key(name), token, _ttl() * 1000))
    finally:
        client.close()


def lock_release(name: str, token: str) -> None:
    """Free the lock, only if it still holds `token`."""
    client = _lock_client()
    if client is None:
        return
    try:
        client.eval(_RELEASE, 1, _lock_key(name), token)
    finally:
        client.close()


@contextmanager
def keep_lock(name: str, token: str, *, seconds: int | None = None) -> Iterator[None]:
    """While the block runs, a thread renews the lock every third of its expiry (while it holds `token`)."""
    client = _lock_client()
    if client is None:
        yield
        return
    ttl = _ttl(seconds)
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(ttl / 3):
            try:
                client.eval(_RENEW, 1, _lock_key(name), token, ttl * 1000)
            except Exception:  # Redis unreachable for a moment: the next renewal tries again
                log.warning("could not renew the lock of sweep %s", name)

    renewer = threading.Thread(target=keep, name=f"sweep-lock-{name}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        client.close()


@contextmanager
def sweep_lock(name: str, *, seconds: int | None = None, renew: bool = True) -> Iterator[bool]:
    """Hold the lock of sweep `name` while the block runs: yields True when this run holds it, False when
    another run of the same sweep holds it (the caller then skips: beat fired again while a long run was
    still going, or two beats).

    The lock expires `seconds` (SWEEP_LOCK_SECONDS) after it was last renewed; while the block runs a thread
    renews it every third of that, so a long run keeps it and a dead worker's lock is free again within
    `seconds`. Released at the end of the block only if still ours. Without SWEEP_LOCK_URL: always True.
    A fanned-out run (tracker/tasks.py) uses the same functions across its tasks."""
    token = lock_acquire(name, seconds=seconds)
    if token is None:
        yield False
        return
    try:
        if renew:
            with keep_lock(name, token, seconds=seconds):
                yield True
        else:
            yield True
    finally:
        lock_release(name, token)
