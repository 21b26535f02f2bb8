"""Writing to the delivery outbox.

`enqueue` is called inside the transaction of the event that causes the message, so the message and
its cause commit together or not at all. The unique idempotency key makes a second enqueue of the same
message a no-op (two sweeps at once, a retried request, a redelivered task). Rows due now are handed
to a worker after the commit; rows due later wait in the table and the outbox sweep dispatches them
when they fall due: no far-future ETA tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from notifications.models import Delivery, DeliveryStatus
from notifications.tasks import deliver

logger = logging.getLogger(__name__)


def enqueue(
    *,
    key: str,
    purpose: str,
    channel: str,
    body: str,
    due_at: datetime,
    subject: str = "",
    patient: Any = None,
    user: Any = None,
    address: str = "",
    language: str = "en",
    dose: Any = None,
    recheck: Any = None,
    alert: Any = None,
    now: datetime | None = None,
) -> tuple[Delivery, bool]:
    """Write one delivery row unless one with `key` exists. Returns (delivery, created)."""
    # get_or_create inserts in a savepoint and, should a concurrent writer enqueue the same message
    # first, returns that one: the unique key keeps one.
    delivery, created = Delivery.objects.get_or_create(
        idempotency_key=key,
        defaults={
            "purpose": purpose,
            "channel": channel,
            "body": body,
            "subject": subject,
            "due_at": due_at,
            "patient": patient,
            "user": user,
            "address": address,
            "language": language,
            "dose": dose,
            "recheck": recheck,
            "alert": alert,
        },
    )
    if not created:
        return delivery, False
    if due_at <= (now or timezone.now()):
        delivery_id = delivery.pk
        transaction.on_commit(lambda: dispatch(delivery_id))
    return delivery, True


def dispatch(delivery_id: int) -> None:
    """Hand one delivery to a worker. Losing this message is harmless: the outbox sweep re-dispatches
    every pending row that is due, and the claim makes a duplicate dispatch send nothing twice."""
    dispatch_many([delivery_id])


def dispatch_many(delivery_ids: Iterable[int]) -> int:
    """`dispatch` each of `delivery_ids` in turn (the outbox sweep's due rows); how many. The shared task is a
    lazy proxy that resolves itself on every attribute read: resolved once here, not per row (a few microseconds a
    row, about a third of the sweep's time with the broker left out at 10,000 patients; bench/RESULTS.md)."""
    task = deliver._get_current_object()  # type: ignore[attr-defined]
    count = 0
    for delivery_id in delivery_ids:
        try:
            task.delay(delivery_id)
        except Exception:  # broker down: the row stays pending and the sweep picks it up
            logger.warning("could not dispatch delivery %s; the sweep will", delivery_id)
        count += 1
    return count


def cancel(queryset: Any, reason: str) -> int:
    """Cancel the pending deliveries in `queryset` (e.g. a dose's reminders once it is given)."""
    return queryset.filter(status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.CANCELLED, last_error=reason[:500], updated_at=timezone.now()
    )
