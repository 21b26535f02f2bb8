"""The periodic sweeps. Each app registers its sweep here; `run_sweeps --at` and Celery beat
both call them through this module, so the two can never drift apart.

A sweep is a function `sweep(at: datetime) -> dict[str, int]` (counts for the log). It must
be idempotent: running it twice for the same instant changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from importlib import import_module

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
