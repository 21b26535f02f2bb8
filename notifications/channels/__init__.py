"""The channel registry: one backend per Channel value ("email", "sms", "inbox")."""

from __future__ import annotations

from notifications.channels.base import ChannelBackend, PermanentError, TransientError
from notifications.channels.email import EmailChannel
from notifications.channels.inbox import InboxChannel
from notifications.channels.sms import SmsChannel

_REGISTRY: dict[str, ChannelBackend] = {"email": EmailChannel(), "sms": SmsChannel(), "inbox": InboxChannel()}


def register(name: str, backend: ChannelBackend) -> None:
    _REGISTRY[name] = backend


def get_channel(name: str) -> ChannelBackend:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise PermanentError(f"no channel '{name}'") from None


__all__ = ["ChannelBackend", "PermanentError", "TransientError", "get_channel", "register"]
