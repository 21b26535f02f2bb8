"""What a channel is: something that sends one delivery and says how it went."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from notifications.models import Delivery


class TransientError(Exception):
    """Worth trying again later: a 4xx from an SMTP server, a timeout, a refused connection, HTTP 5xx/429."""


class PermanentError(Exception):
    """Trying again cannot help: a 5xx from an SMTP server, a rejected number, no address at all."""


class ChannelBackend(Protocol):
    def send(self, delivery: Delivery) -> str:
        """Send `delivery`; return the provider's id for it. Raise TransientError or PermanentError."""
        ...
