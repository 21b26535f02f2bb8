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
  the committed rows); at once outside a transaction.
- `answer(name, default, **payload)`: one provider computes a value the caller needs (the lab flags the
  schedule engine plans rechecks from); `default` when no app provides it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import transaction

log = logging.getLogger(__name__)

Listener = Callable[..., Any]
F = TypeVar("F", bound=Listener)

_LISTENERS: dict[str, list[Listener]] = {}
_PROVIDERS: dict[str, Listener] = {}


def listen(name: str) -> Callable[[F], F]:
    """Register the decorated function as a listener of `name` (idempotent on re-import)."""

    def decorator(func: F) -> F:
        listeners = _LISTENERS.setdefault(name, [])
        key = (func.__module__, func.__qualname__)
        listeners[:] = [f for f in listeners if (f.__module__, f.__qualname__) != key]
        listeners.append(func)
        return func

    return decorator


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
    def run() -> None:
        for func in listeners(name):
            try:
                func(**payload)
            except Exception:  # the write has committed: log it, never fail the request after the fact.
                log.exception("listener %s of %s failed", func.__qualname__, name)

    transaction.on_commit(run)


def answer(name: str, default: Any, **payload: Any) -> Any:
    provider = _PROVIDERS.get(name)
    return default if provider is None else provider(**payload)
