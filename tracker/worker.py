"""The Celery worker's consumer: Celery's own, made to survive a broker restart (setting CELERY_WORKER_CONSUMER).

On losing the broker, Celery 5.7.0's consumer (`on_connection_error_after_connected`) collects the lost connection
and then closes it through kombu's `ignore_errors`, which passes over connection errors only. That close can run
kombu's Redis channel close a second time, on a transport `collect()` has already detached, and its restore of the
unacknowledged messages then raises AttributeError ("'NoneType' object has no attribute 'hostname'"). The error
reaches the worker: it logs "Unrecoverable error" and exits, so nothing is delivered until something restarts it
(seen on a loaded machine in tests/integration/test_delivery_real.py, the broker stopped mid-delivery). Celery 5.6
did not close there.

Here that close cannot stop the worker: it reconnects as it would after any other connection loss. Nor can the
acknowledgement of a task that was running then and ends after it (acks_late), which goes to the same dead channel
and fails the same way in the worker's event loop. The messages that close failed to restore and those
acknowledgements lose nothing: each task names a row in the delivery outbox or another table, is idempotent, and the
sweeps queue again whatever is still to do (docs/delivery.md, "The broker").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer

logger = logging.getLogger(__name__)


def quietly(call: Callable[..., Any], failed: str) -> Callable[..., Any]:
    """`call` (closing the lost connection, or acknowledging a message that came on it), with the AttributeError of
    kombu's half-closed Redis transport logged ("`failed` (error)") instead of raised: the connection is gone, and
    the broker no longer holds its messages for this worker."""

    def call_on_lost_connection(*args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except AttributeError as exc:
            logger.warning("%s (%r)", failed, exc)
            return None

    return call_on_lost_connection


class Consumer(CeleryConsumer):  # type: ignore[misc]
    def call_soon_ack(self, p: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        acknowledge = quietly(p, "could not acknowledge a message of the lost broker connection")
        return super().call_soon_ack(acknowledge, *args, **kwargs)

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        connection = self.connection
        if connection is not None:
            # An instance attribute: Celery reads `connection.close` when it closes the connection.
            failed = "closing the lost broker connection failed; reconnecting anyway"
            connection.close = quietly(connection.close, failed)
        super().on_connection_error_after_connected(exc)
