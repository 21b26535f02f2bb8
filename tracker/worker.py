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


def closing_quietly(close: Callable[[], Any]) -> Callable[[], Any]:
    """`close`, with the AttributeError of kombu's half-closed Redis transport logged instead of raised."""

    def close_lost_connection() -> Any:
        try:
            return close()
        except AttributeError as exc:
            logger.warning("closing the lost broker connection failed (%r); reconnecting anyway", exc)
            return None

    return close_lost_connection


def acking_quietly(acknowledge: Callable[..., Any]) -> Callable[..., Any]:
    """`acknowledge` (a message's ack or reject), with the same AttributeError logged instead of raised: the message
    came on a connection that was lost, and the broker no longer holds it for this worker."""

    def acknowledge_on_lost_connection(*args: Any, **kwargs: Any) -> Any:
        try:
            return acknowledge(*args, **kwargs)
        except AttributeError as exc:
            logger.warning("could not acknowledge a message of the lost broker connection (%r)", exc)
            return None

    return acknowledge_on_lost_connection


class Consumer(CeleryConsumer):  # type: ignore[misc]
    def call_soon_ack(self, p: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return super().call_soon_ack(acking_quietly(p), *args, **kwargs)

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        connection = self.connection
        if connection is not None:
            # An instance attribute: Celery reads `connection.close` when it closes the connection.
            connection.close = closing_quietly(connection.close)
        super().on_connection_error_after_connected(exc)
