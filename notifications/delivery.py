"""Delivering one outbox row: claim it, check it still matters, send it, record the attempt.

The claim is a compare-and-set UPDATE (pending and due -> sending), so of two workers handed the same
row only one sends it; it works the same on PostgreSQL and SQLite. A transient failure puts the row back
to pending with a later due time (exponential backoff) for the outbox sweep to hand out again: no
far-future broker messages. A permanent failure, or too many transient ones, fails the row and raises a
`delivery_failed` alert for the patient's clinic. See docs/delivery.md.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from notifications import purposes
from notifications.alerts import alert_raise
from notifications.channels import PermanentError, TransientError, get_channel
from notifications.models import AlertKind, AttemptOutcome, Delivery, DeliveryAttempt, DeliveryStatus

logger = logging.getLogger(__name__)


def backoff(attempts: int) -> timedelta:
    """Wait before attempt `attempts + 1`: BACKOFF * 2**(attempts-1) seconds, capped."""
    cobalt = settings.COBALT
    seconds = int(cobalt["DELIVERY_BACKOFF_SECONDS"]) * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, int(cobalt["DELIVERY_BACKOFF_MAX_SECONDS"])))


def deliver_one(delivery_id: int, *, now: datetime | None = None, worker: str = "") -> str:
    """Deliver one row. Returns "sent", "retry", "failed", "cancelled", "deferred" or "skipped"."""
    now = now or timezone.now()
    claimed = Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING, due_at__lte=now).update(
        status=DeliveryStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1, updated_at=now
    )
    if not claimed:
        return "skipped"  # another worker has it, it is not due yet, or it is finished
    delivery = Delivery.objects.select_related("patient__clinic").get(pk=delivery_id)

    # The writer of each purpose decides (notifications/purposes.py): e.g. a reminder of a dose since given
    # is cancelled, and one that would reach the patient in their quiet hours waits for the morning.
    if not purposes.still_relevant(delivery):
        Delivery.objects.filter(pk=delivery_id).update(
            status=DeliveryStatus.CANCELLED, attempts=F("attempts") - 1, last_error="no longer relevant", updated_at=now
        )
        return "cancelled"
    wait_until = purposes.hold_until(delivery, now)
    if wait_until is not None:
        Delivery.objects.filter(pk=delivery_id).update(
            status=DeliveryStatus.PENDING, attempts=F("attempts") - 1, due_at=wait_until, updated_at=now
        )
        return "deferred"
    purposes.prepare(delivery, now)

    try:
        provider_id = get_channel(delivery.channel).send(delivery)
    except TransientError as exc:
        error = scrub(str(exc), delivery)
        if delivery.attempts < int(settings.COBALT["DELIVERY_MAX_ATTEMPTS"]):
            _record(delivery, now, worker, AttemptOutcome.TRANSIENT, error)
            Delivery.objects.filter(pk=delivery_id).update(
                status=DeliveryStatus.PENDING, due_at=now + backoff(delivery.attempts), last_error=error[:2000],
                updated_at=now,
            )
            return "retry"
        _fail(delivery, now, worker, f"gave up after {delivery.attempts} attempts: {error}")
        return "failed"
    except PermanentError as exc:
        _fail(delivery, now, worker, scrub(str(exc), delivery))
        return "failed"
    with transaction.atomic():
        _record(delivery, now, worker, AttemptOutcome.SENT, "", provider_id)
        Delivery.objects.filter(pk=delivery_id).update(
            status=DeliveryStatus.SENT, sent_at=now, provider_id=provider_id[:200], last_error="", updated_at=now
        )
    return "sent"


EMAIL_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Seven digits or more, with the separators people and providers write (+44 7700 900123, (555) 010-9999).
PHONE_NUMBER = re.compile(r"\+?\(?\d(?:[\s().-]{0,2}\d){6,}")
HIDDEN = "[recipient]"


def scrub(error: str, delivery: Delivery) -> str:
    """A provider's error without the recipient's address or any other address or number in it: the text is
    stored on the delivery and its attempts, shown in the delivery log, the admin, the failure alert and the
    staff digest, all read by staff who need the reason, not the address (issue 12)."""
    text = str(error)
    address = (delivery.address or "").strip()
    if address:
        text = re.sub(re.escape(address), HIDDEN, text, flags=re.IGNORECASE)
    text = EMAIL_ADDRESS.sub(HIDDEN, text)
    return PHONE_NUMBER.sub(HIDDEN, text)


def _record(
    delivery: Delivery, now: datetime, worker: str, outcome: str, error: str, provider_id: str = ""
) -> None:
    DeliveryAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempts,
        attempted_at=now,
        outcome=outcome,
        error=error[:2000],
        provider_id=provider_id[:200],
        worker=worker[:200],
    )


def _fail(delivery: Delivery, now: datetime, worker: str, error: str) -> None:
    with transaction.atomic():
        _record(delivery, now, worker, AttemptOutcome.PERMANENT, error)
        Delivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.FAILED, last_error=error[:2000], updated_at=now
        )
        if delivery.patient is None:
            logger.error("staff delivery %s failed: %s", delivery.pk, error)
            return
        alert_raise(
            patient=delivery.patient,
            kind=AlertKind.DELIVERY_FAILED,
            severity="medium",
            message=f"A {delivery.get_purpose_display().lower()} could not be sent by {delivery.channel}: {error}",
            action_text="Check the patient's contact details and tell the patient in another way.",
            evidence={"delivery_id": delivery.pk, "channel": delivery.channel, "error": error[:500]},
            at=now,
        )
