"""What the delivery worker asks a message's purpose just before it sends (notifications/delivery.py).

The module that writes the messages of a purpose knows when they stop mattering (a reminder of a dose
that has since been given), when they may go out (not in the patient's quiet hours) and what else should
go in the same message (a reminder and a missed-appointment follow-up due the same day become one). The worker does
not import those modules: each registers its purposes here when it is imported, and
NotificationsConfig.ready imports them in every process. A purpose nobody registered always matters and
may go at any hour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notifications.models import Delivery

Relevance = Callable[["Delivery"], bool]
Hold = Callable[["Delivery", datetime], "datetime | None"]
Prepare = Callable[["Delivery", datetime], None]


def always_relevant(delivery: Delivery) -> bool:
    return True


def any_hour(delivery: Delivery, now: datetime) -> datetime | None:
    return None


def as_written(delivery: Delivery, now: datetime) -> None:
    return None


@dataclass(frozen=True)
class PurposeRules:
    # False cancels the delivery instead of sending it.
    relevant: Relevance = always_relevant
    # An instant to wait for (the delivery goes back to pending, due then), or None to send now.
    hold_until: Hold = any_hour
    # Last changes to the claimed row before it is sent (e.g. merge the patient's other messages due today).
    prepare: Prepare = as_written


_RULES: dict[str, PurposeRules] = {}


def register(
    purpose: str, *, relevant: Relevance = always_relevant, hold_until: Hold = any_hour, prepare: Prepare = as_written
) -> None:
    _RULES[str(purpose)] = PurposeRules(relevant=relevant, hold_until=hold_until, prepare=prepare)


def rules(purpose: str) -> PurposeRules:
    return _RULES.get(str(purpose), PurposeRules())


def still_relevant(delivery: Delivery) -> bool:
    return rules(delivery.purpose).relevant(delivery)


def hold_until(delivery: Delivery, now: datetime) -> datetime | None:
    return rules(delivery.purpose).hold_until(delivery, now)


def prepare(delivery: Delivery, now: datetime) -> None:
    rules(delivery.purpose).prepare(delivery, now)
