"""Celery task of the outbox: deliver one row by id (notifications/delivery.py).

acks_late: a worker that dies mid-task leaves the message to be redelivered; the claim makes a
redelivery of a finished row a no-op, and the outbox sweep re-queues rows a dead worker left "sending".
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from notifications.delivery import deliver_one


@shared_task(name="notifications.deliver", acks_late=True, bind=True)
def deliver(self: Any, delivery_id: int) -> str:
    return deliver_one(int(delivery_id), worker=str(self.request.hostname or ""))
