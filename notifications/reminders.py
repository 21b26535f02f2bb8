"""Patient reminders (issue 4). Filled in by the reminders work."""

from __future__ import annotations

from notifications.models import Delivery


def still_relevant(delivery: Delivery) -> bool:
    """Checked by the worker just before it sends: False cancels the delivery (e.g. the dose it
    reminds of was given, not given or cancelled since the reminder was written)."""
    return True
