"""The notification sweeps (tracker/sweeps.py), registered in the order they run: patient reminders, staff
digests and escalation (which also fails lab import jobs whose worker stopped), then the outbox. The first
two are idempotent for the same instant and only write rows. Reminders and escalation run per shard of
patients (tracker/sweeps.py); the clinics' digests, the stale import jobs and the outbox run once per run,
after the shards. The outbox sweep that runs after them sends what is due:

1. Rows left "sending" longer than the lease belong to a dead worker: back to pending.
2. Pending rows that are due go to a worker (Celery beat), or are delivered right here when
   `manage.py run_sweeps` runs (tracker.sweeps.delivering_inline), so a day-by-day `run_sweeps --at`
   sends what falls due that day with no worker running. The outbox is the safety net under the broker.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from notifications.delivery import deliver_one
from notifications.models import Delivery, DeliveryStatus
from notifications.outbox import dispatch_many
from notifications.reminders import plan_reminders
from notifications.staff import escalate, send_digests
from patients.labs.jobs import fail_stale_jobs
from tracker.sweeps import inline_delivery, register


@register("reminders")
def reminders(at: datetime) -> dict[str, int]:
    return plan_reminders(at)


@register("staff")
def staff(at: datetime) -> dict[str, int]:
    """Per shard: escalation of the shard's patients' alerts."""
    return escalate(at)


@register("staff", once=True)
def staff_once(at: datetime) -> dict[str, int]:
    """Once per run, after the shards: one digest per clinic (it gathers alerts of every shard), and the lab
    import jobs whose worker stopped are failed, so that no job stays "running" unread."""
    with transaction.atomic():
        digests = send_digests(at)
    return {"digest_messages": digests, "stale_import_jobs": fail_stale_jobs(at)}


@register("outbox", once=True)
def outbox(at: datetime) -> dict[str, int]:
    """Global, once per run: it reads only due delivery ids, staff messages (no patient) among them."""
    lease = timedelta(seconds=int(settings.COBALT["DELIVERY_LEASE_SECONDS"]))
    reclaimed = Delivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lt=at - lease).update(
        status=DeliveryStatus.PENDING, updated_at=at
    )
    due = list(
        Delivery.objects.filter(status=DeliveryStatus.PENDING, due_at__lte=at)
        .order_by("due_at", "id")
        .values_list("id", flat=True)
    )
    counts = {"reclaimed": reclaimed, "due": len(due)}
    if inline_delivery():
        for delivery_id in due:
            outcome = deliver_one(delivery_id, now=at, worker="run_sweeps")
            counts[outcome] = counts.get(outcome, 0) + 1
    else:
        counts["dispatched"] = dispatch_many(due)
    return counts
