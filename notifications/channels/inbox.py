"""The in-app staff inbox: the delivery row itself is the message (GET /api/notifications/inbox/)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from notifications.channels.base import PermanentError

if TYPE_CHECKING:
    from notifications.models import Delivery


class InboxChannel:
    def send(self, delivery: Delivery) -> str:
        if delivery.user_id is None:
            raise PermanentError("an inbox message needs a staff user")
        return f"inbox:{delivery.pk}"
