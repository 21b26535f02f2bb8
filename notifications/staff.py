"""Staff notifications for alerts. Implemented by the notifications work (issue 4)."""

from __future__ import annotations

from notifications.models import Alert


def on_alert_opened(alert: Alert) -> None:
    """Called in the transaction that opens `alert`: write the staff delivery rows here."""
