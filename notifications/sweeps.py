"""The notification sweeps (tracker/sweeps.py): patient reminders, then staff digests and escalation.
Both are idempotent for the same instant; the outbox sweep that runs after them sends what is due."""

from __future__ import annotations

from datetime import datetime

from notifications.reminders import plan_reminders
from notifications.staff import staff_sweep
from tracker.sweeps import register


@register("reminders")
def reminders(at: datetime) -> dict[str, int]:
    return plan_reminders(at)


@register("staff")
def staff(at: datetime) -> dict[str, int]:
    return staff_sweep(at)
