"""The periodic sweeps. Each app registers its sweep here; `run_sweeps --at` and Celery beat
both call them through this module, so the two can never drift apart.

A sweep is a function `sweep(at: datetime) -> dict[str, int]` (counts for the log). It must
be idempotent: running it twice for the same instant changes nothing the second time.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from importlib import import_module
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)

SweepFunction = Callable[[datetime], dict[str, int]]
_SWEEPS: dict[str, SweepFunction] = {}
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

# Modules that register sweeps when imported, in the order the sweeps run.
SWEEP_MODULES = ("regimens.sweeps", "monitoring.sweep", "notifications.sweeps")


def register(name: str) -> Callable[[SweepFunction], SweepFunction]:
    def decorator(func: SweepFunction) -> SweepFunction:
        _SWEEPS[name] = func
        return func

    return decorator


def load() -> dict[str, SweepFunction]:
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
    return {name: func(at) for name, func in load().items()}


# --- Non-overlap ------------------------------------------------------------------------------------


# Delete the key only if it still holds our token: an expired lock another run has taken is not ours.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
# Push the expiry on, again only while the key holds our token.
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)


def _lock_client() -> Any:
    url = str(settings.COBALT.get("SWEEP_LOCK_URL") or "")
    if not url:
        return None
    import redis

    return redis.Redis.from_url(url)


@contextmanager
def sweep_lock(name: str, *, seconds: int | None = None, renew: bool = True) -> Iterator[bool]:
    """Hold the lock of sweep `name` while the block runs: yields True when this run holds it, False when
    another run of the same sweep holds it (the caller then skips: beat fired again while a long run was
    still going, or two beats).

    The lock expires `seconds` (SWEEP_LOCK_SECONDS) after it was last renewed; while the block runs a thread
    renews it every third of that, so a long run keeps it and a dead worker's lock is free again within
    `seconds`. Released at the end of the block only if still ours. Without SWEEP_LOCK_URL: always True."""
    client = _lock_client()
    if client is None:
        yield True
        return
    key = f"cobalt:sweep-lock:{name}"
    token = uuid.uuid4().hex
    ttl = int(seconds or settings.COBALT.get("SWEEP_LOCK_SECONDS", 60))
    held = bool(client.set(key, token, nx=True, ex=ttl))
    stop = threading.Event()
    renewer = None
    if held and renew:

        def keep() -> None:
            while not stop.wait(ttl / 3):
                try:
                    client.eval(_RENEW, 1, key, token, ttl * 1000)
                except Exception:  # Redis unreachable for a moment: the next renewal tries again
                    log.warning("could not renew the lock of sweep %s", name)

        renewer = threading.Thread(target=keep, name=f"sweep-lock-{name}", daemon=True)
        renewer.start()
    try:
        yield held
    finally:
        stop.set()
        if renewer is not None:
            renewer.join()
        if held:
            client.eval(_RELEASE, 1, key, token)
        client.close()
