"""Queue health of the outbox: what waits, how old it is, what failed, by channel."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Count, Min, Q
from django.utils import timezone

from notifications.models import Delivery, DeliveryStatus


def queue_health(now: Any = None) -> dict[str, Any]:
    """Two queries whatever the outbox's size: one pass over the open rows (pending and sending, through
    delivery_open_due_idx) and one over the last day's sent and failed rows (delivery_done_updated_idx)."""
    now = now or timezone.now()
    day_ago = now - timedelta(hours=24)
    lease = timedelta(seconds=int(settings.COBALT["DELIVERY_LEASE_SECONDS"]))
    pending = Q(status=DeliveryStatus.PENDING)
    sending = Q(status=DeliveryStatus.SENDING)
    open_rows = Delivery.objects.filter(status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING]).aggregate(
        pending=Count("due_at", filter=pending),
        due_now=Count("due_at", filter=pending & Q(due_at__lte=now)),
        oldest_due=Min("due_at", filter=pending & Q(due_at__lte=now)),
        sending=Count("due_at", filter=sending),
        sending_lease_expired=Count("due_at", filter=sending & Q(claimed_at__lt=now - lease)),
    )
    done: dict[str, dict[str, int]] = {DeliveryStatus.FAILED: {}, DeliveryStatus.SENT: {}}
    for row in (
        Delivery.objects.filter(status__in=list(done), updated_at__gte=day_ago)
        .values("status", "channel")
        .annotate(n=Count("*"))
        .order_by("status", "channel")
    ):
        done[row["status"]][row["channel"]] = row["n"]
    oldest_due = open_rows["oldest_due"]
    return {
        "pending": open_rows["pending"],
        "due_now": open_rows["due_now"],
        "oldest_due_at": oldest_due.isoformat() if oldest_due else None,
        "oldest_due_age_seconds": int((now - oldest_due).total_seconds()) if oldest_due else 0,
        "sending": open_rows["sending"],
        "sending_lease_expired": open_rows["sending_lease_expired"],
        "failed_last_24h_by_channel": done[DeliveryStatus.FAILED],
        "sent_last_24h_by_channel": done[DeliveryStatus.SENT],
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
