"""Announcements between apps, in the style of tracker/sweeps.py.

An app that records something (a dose given, a lab result, a regimen started) does not import the apps
that care about it: it *announces* the event here, and the interested app registers a listener when
Django loads it (its AppConfig.ready). So `regimens` and `patients` never import `monitoring`, and the
import graph stays a tree: tracker <- patients <- regimens <- notifications <- monitoring.

Four ways to talk, each named by what the caller needs back:

- `collect(name, **payload)`: before a write, every listener returns a list (safety warnings that
  must be acknowledged); the lists are joined in registration order.
- `announce(name, **payload)`: now, inside the caller's transaction (an alert written together with the
  dose it is about, or not at all).
- `announce_on_commit(name, **payload)`: once the caller's transaction commits (evaluation that reads
  the committed rows); at once outside a transaction. Listeners registered with `listen_in_transaction`
  run at once, inside the caller's transaction (what must commit with the change or not at all: the
  monitoring app's durable "evaluate this patient" marker).
  Inside `coalesced()`, each distinct announcement reaches the after-commit listeners once.
- `answer(name, default, **payload)`: one provider computes a value the caller needs (the lab flags the
  schedule engine plans rechecks from); `default` when no app provides it.

`at_once()`: while it is active, a listener that may hand its after-commit work to a Celery worker does it in
this process instead, before the caller goes on. The web pages run inside it (tracker.middleware.AtOnceMiddleware):
a nurse who has just entered a result waits for the alerts it opens; an API client's feed does not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from django.db import transaction

log = logging.getLogger(__name__)

Listener = Callable[..., Any]
F = TypeVar("F", bound=Listener)

_LISTENERS: dict[str, list[Listener]] = {}
_IN_TRANSACTION: dict[str, list[Listener]] = {}
_AT_ONCE: ContextVar[bool] = ContextVar("cobalt_events_at_once", default=False)
_PROVIDERS: dict[str, Listener] = {}
_COALESCING: ContextVar[dict[tuple[Any, ...], tuple[str, dict[str, Any], bool]] | None] = ContextVar(
    "cobalt_events_coalescing", default=None
)


def _register(registry: dict[str, list[Listener]], name: str) -> Callable[[F], F]:
    def decorator(func: F) -> F:
        listeners = registry.setdefault(name, [])
        key = (func.__module__, func.__qualname__)
        listeners[:] = [f for f in listeners if (f.__module__, f.__qualname__) != key]
        listeners.append(func)
        return func

    return decorator


def listen(name: str) -> Callable[[F], F]:
    """Register the decorated function as a listener of `name` (idempotent on re-import)."""
    return _register(_LISTENERS, name)


def listen_in_transaction(name: str) -> Callable[[F], F]:
    """Register the decorated function to run inside the announcer's transaction when `name` is announced with
    `announce_on_commit` (before the after-commit listeners are scheduled); its error undoes the write."""
    return _register(_IN_TRANSACTION, name)


@contextmanager
def at_once() -> Iterator[None]:
    """Listeners run their after-commit work in this process while the block runs (see the module docstring)."""
    token = _AT_ONCE.set(True)
    try:
        yield
    finally:
        _AT_ONCE.reset(token)


def wanted_at_once() -> bool:
    """Whether the caller waits for the after-commit work (inside `at_once()`)."""
    return _AT_ONCE.get()


def provide(name: str) -> Callable[[F], F]:
    """Register the decorated function as the one provider of `name`."""

    def decorator(func: F) -> F:
        _PROVIDERS[name] = func
        return func

    return decorator


def listeners(name: str) -> list[Listener]:
    return list(_LISTENERS.get(name, ()))


def collect(name: str, **payload: Any) -> list[Any]:
    out: list[Any] = []
    for func in listeners(name):
        out.extend(func(**payload) or ())
    return out


def announce(name: str, **payload: Any) -> None:
    for func in listeners(name):
        func(**payload)


def announce_on_commit(name: str, **payload: Any) -> None:
    for func in list(_IN_TRANSACTION.get(name, ())):
        func(**payload)
    # The after-commit listeners see at_once() as it was when the change was announced (what the in-transaction
    # listeners decided by), even if the transaction commits outside the block.
    _after_commit(name, payload, wanted_at_once())


def _after_commit(name: str, payload: dict[str, Any], at_once_then: bool) -> None:
    pending = _COALESCING.get()
    if pending is not None:
        pending.setdefault((name, tuple(sorted(payload.items())), at_once_then), (name, payload, at_once_then))
        return

    def run() -> None:
        token = _AT_ONCE.set(at_once_then)
        try:
            _run()
        finally:
            _AT_ONCE.reset(token)

    def _run() -> None:
        for func in listeners(name):
            try:
                func(**payload)
            except Exception:  # the write has committed: log it, never fail the request after the fact.
                log.exception("listener %s of %s failed", func.__qualname__, name)

    transaction.on_commit(run)


@contextmanager
def coalesced() -> Iterator[None]:
    """Inside a transaction that announces the same change many times (a patient's history recorded in one go), the
    after-commit listeners run once per distinct announcement instead of once per call: they read what has
    committed, so the later runs would read and do what the first did. The announcements are handed to the
    transaction when the block ends without an error, in the order they were first made; the in-transaction
    listeners still run at every call. Use it inside the transaction: outside one, the listeners run at the
    block's end rather than at each call."""
    pending: dict[tuple[Any, ...], tuple[str, dict[str, Any], bool]] = {}
    token = _COALESCING.set(pending)
    try:
        yield
    finally:
        _COALESCING.reset(token)
    for name, payload, at_once_then in pending.values():
        _after_commit(name, payload, at_once_then)


def answer(name: str, default: Any, **payload: Any) -> Any:
    provider = _PROVIDERS.get(name)
    return default if provider is None else provider(**payload)
