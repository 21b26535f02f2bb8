"""Patients stopping (and restarting) their reminders without calling the clinic.

- Email: every patient email carries `List-Unsubscribe` and `List-Unsubscribe-Post:
  List-Unsubscribe=One-Click` (RFC 8058) pointing at /unsubscribe/<token>, and the clinic's Reply-To
  (notifications/unsubscribe.py, notifications/channels/email.py); opening it shows a confirmation page,
  and a POST to it (the page's button, or the mail provider's one click) opts the patient out.
- SMS: the provider posts the patient's texts to /hooks/sms/inbound/, signed with the shared secret
  COBALT_SMS_INBOUND_SECRET (hex HMAC-SHA256 of the body). STOP stops text reminders, START restarts
  them, HELP says who is texting and how to reach them; every one gets an answer (through the outbox, like
  every message), and every change is in the patient's history with its reason (django-simple-history).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction

from notifications import messages, outbox
from notifications.models import Channel, Purpose
from patients.models import Patient, ReminderChannel
from patients.services import patient_set_reminders

# Keywords as carriers and regulators use them (CTIA / Ofcom practice), plus Spanish ones.
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "BAJA", "PARAR", "ALTO"})
START_WORDS = frozenset({"START", "UNSTOP", "YES", "SUBSCRIBE", "ALTA", "SI", "SÍ"})
HELP_WORDS = frozenset({"HELP", "INFO", "AYUDA"})


# --- One-click unsubscribe (the link and headers: notifications/unsubscribe.py) -------------------------


def unsubscribe(patient: Patient, *, how: str) -> Patient:
    """Stop every reminder to the patient (channel "none"); pending ones are cancelled by the next sweep and
    checked again by the worker before it sends."""
    return patient_set_reminders(patient=patient, channel=ReminderChannel.NONE, reason=f"opted out: {how}")


# --- Texts from patients --------------------------------------------------------------------------------


def signature(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(body: bytes, given: str) -> bool:
    """Fails closed: with no secret configured, no inbound text is believed."""
    secret = str(settings.COBALT.get("SMS_INBOUND_SECRET") or "")
    return bool(secret) and hmac.compare_digest(signature(body, secret), (given or "").strip().lower())


def keyword(text: str) -> str:
    """"stop", "start", "help" or "" from the first word of a text ("Stop please" is a stop)."""
    words = re.findall(r"[^\W\d_]+", (text or "").upper())
    first = words[0] if words else ""
    if first in STOP_WORDS:
        return "stop"
    if first in START_WORDS:
        return "start"
    if first in HELP_WORDS:
        return "help"
    return ""


def normalise_number(number: str) -> str:
    return re.sub(r"[\s\-().]", "", number or "")


@dataclass(frozen=True)
class InboundResult:
    keyword: str
    patients: int  # patients whose reminders the text changed or answered
    replies: int  # replies written to the outbox


def handle_inbound_sms(*, sender: str, text: str, message_id: str, at: datetime) -> InboundResult:
    """Act on one patient text. Every patient with that mobile number gets the change (a parent may hold
    the number of two children on file); STOP applies to those reminded by text, START to those who opted
    out. The answer goes out once per number, even if the provider retries the webhook (`message_id`)."""
    number = normalise_number(sender)
    kind = keyword(text) or "help"
    if not number:
        return InboundResult(kind, 0, 0)
    with transaction.atomic():
        patients = list(Patient.objects.select_related("clinic").filter(phone=number).order_by("id"))
        for patient in patients:
            if kind == "stop" and patient.reminder_channel == ReminderChannel.SMS:
                patient_set_reminders(patient=patient, channel=ReminderChannel.NONE, reason="opted out: texted STOP")
            elif kind == "start" and patient.reminder_channel == ReminderChannel.NONE:
                patient_set_reminders(patient=patient, channel=ReminderChannel.SMS, reason="opted in: texted START")
        if not patients:
            return InboundResult(kind, 0, 0)
        first = patients[0]
        body = messages.sms_reply(kind, first.language, clinic=first.clinic.name, clinic_phone=first.clinic.phone)
        _reply, created = outbox.enqueue(
            key=f"sms-reply:{hashlib.sha256(f'{number}|{message_id}'.encode()).hexdigest()[:40]}",
            purpose=Purpose.PATIENT_REPLY,
            channel=Channel.SMS,
            body=body,
            due_at=at,
            patient=first,
            address=number,
            language=messages.language_of(first.language),
            now=at,
        )
    return InboundResult(kind, len(patients), int(created))
