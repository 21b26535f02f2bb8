"""Queue health of the outbox: what waits, how old it is, what failed, by channel."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Count, Min
from django.utils import timezone

from notifications.models import Delivery, DeliveryStatus


def queue_health(now: Any = None) -> dict[str, Any]:
    now = now or timezone.now()
    day_ago = now - timedelta(hours=24)
    lease = timedelta(seconds=int(settings.COBALT["DELIVERY_LEASE_SECONDS"]))
    pending = Delivery.objects.filter(status=DeliveryStatus.PENDING)
    oldest_due = pending.filter(due_at__lte=now).aggregate(oldest=Min("due_at"))["oldest"]

    def by_channel(status: str) -> dict[str, int]:
        rows = Delivery.objects.filter(status=status, updated_at__gte=day_ago).values("channel").annotate(n=Count("id"))
        return {row["channel"]: row["n"] for row in rows}

    return {
        "pending": pending.count(),
        "due_now": pending.filter(due_at__lte=now).count(),
        "oldest_due_at": oldest_due.isoformat() if oldest_due else None,
        "oldest_due_age_seconds": int((now - oldest_due).total_seconds()) if oldest_due else 0,
        "sending": Delivery.objects.filter(status=DeliveryStatus.SENDING).count(),
        "sending_lease_expired": Delivery.objects.filter(
            status=DeliveryStatus.SENDING, claimed_at__lt=now - lease
        ).count(),
        "failed_last_24h_by_channel": by_channel(DeliveryStatus.FAILED),
        "sent_last_24h_by_channel": by_channel(DeliveryStatus.SENT),
    }


class Command(BaseCommand):
    help = "Shows the outbox: pending and due rows, the oldest due, stuck sends, failures and sends by channel."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON instead of text.")

    def handle(self, *args: Any, **options: Any) -> None:
        health = queue_health()
        if options["json"]:
            self.stdout.write(json.dumps(health, indent=2))
            return
        age = timedelta(seconds=health["oldest_due_age_seconds"])
        self.stdout.write(f"pending: {health['pending']} (due now: {health['due_now']})")
        self.stdout.write(f"oldest due: {health['oldest_due_at'] or '-'} (waiting {age})")
        self.stdout.write(f"sending: {health['sending']} (lease expired: {health['sending_lease_expired']})")
        for key, label in (("failed_last_24h_by_channel", "failed"), ("sent_last_24h_by_channel", "sent")):
            counts = ", ".join(f"{k}={v}" for k, v in sorted(health[key].items())) or "none"
            self.stdout.write(f"{label} in the last 24 h: {counts}")
