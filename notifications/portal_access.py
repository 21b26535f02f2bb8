"""Signing patients in to their portal (/me/) without a password (notifications/portal.py is the pages).

1. The patient types their email address or mobile number. Every patient with that contact on file gets a
   sign-in link through the outbox (email or text, as they typed it); the page says the same whether or not
   anyone matched, so the form cannot be used to learn who is a patient.
2. The link (/me/sign-in/<token>) is random, expires after PORTAL_LINK_MINUTES and works once: the row keeps
   only the token's SHA-256 (the message in the delivery log holds the link until then), and redeeming is a
   compare-and-set on `used_at`. Opening it shows a "continue" button; only the POST signs in, so mail
   scanners that open links do not use it up.
3. The portal session holds the patient's id and ends PORTAL_SESSION_MINUTES after sign-in. It carries no
   staff rights: the staff pages read `request.user`, the portal reads only this.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction

from notifications import messages, outbox
from notifications.models import Channel, PortalLink, Purpose
from notifications.optout import normalise_number
from notifications.unsubscribe import absolute
from patients.models import Patient

SESSION_PATIENT = "cobalt_portal_patient"
SESSION_UNTIL = "cobalt_portal_until"
# At most one link per patient this often, so the form cannot be used to flood someone's phone.
RESEND_AFTER = timedelta(minutes=1)
MAX_PATIENTS_PER_REQUEST = 5


def _minutes(name: str) -> int:
    return int(settings.COBALT[name])


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def portal_request_link(*, contact: str, at: datetime) -> int:
    """Send a sign-in link to every patient with this email address or mobile number; returns how many were
    sent (for tests and logs only: never show it to the person asking)."""
    contact = (contact or "").strip()
    if "@" in contact:
        channel, patients = Channel.EMAIL, Patient.objects.filter(email__iexact=contact)
    else:
        number = normalise_number(contact)
        if not number:
            return 0
        channel, patients = Channel.SMS, Patient.objects.filter(phone=number)
    sent = 0
    for patient in patients.select_related("clinic").order_by("id")[:MAX_PATIENTS_PER_REQUEST]:
        with transaction.atomic():
            if PortalLink.objects.filter(patient=patient, created_at__gt=at - RESEND_AFTER).exists():
                continue
            token = secrets.token_urlsafe(32)
            minutes = _minutes("PORTAL_LINK_MINUTES")
            link = PortalLink.objects.create(
                patient=patient,
                token_hash=token_hash(token),
                channel=channel,
                created_at=at,
                expires_at=at + timedelta(minutes=minutes),
            )
            subject, body = messages.render(
                Purpose.PORTAL_LINK,
                patient.language,
                {
                    "name": patient.given_name,
                    "clinic": patient.clinic.name,
                    "link": absolute(f"/me/sign-in/{token}"),
                    "minutes": minutes,
                },
            )
            outbox.enqueue(
                key=f"portal-link:{link.pk}",
                purpose=Purpose.PORTAL_LINK,
                channel=channel,
                subject=subject,
                body=body,
                due_at=at,
                patient=patient,
                address=patient.email if channel == Channel.EMAIL else patient.phone,
                language=messages.language_of(patient.language),
                now=at,
            )
            sent += 1
    return sent


def portal_link_patient(token: str, at: datetime) -> Patient | None:
    """The patient of a link that still works (not used, not expired), without using it."""
    link = (
        PortalLink.objects.select_related("patient__clinic")
        .filter(token_hash=token_hash(token), used_at__isnull=True, expires_at__gt=at)
        .first()
    )
    return link.patient if link else None


def portal_sign_in(*, session: SessionBase, token: str, at: datetime) -> Patient | None:
    """Use the link (once) and start a portal session; None if it is unknown, used or expired."""
    hashed = token_hash(token)
    used = PortalLink.objects.filter(token_hash=hashed, used_at__isnull=True, expires_at__gt=at).update(used_at=at)
    if not used:
        return None
    patient = PortalLink.objects.select_related("patient__clinic").get(token_hash=hashed).patient
    session.cycle_key()  # a new session id: a fixated one from before sign-in is worthless
    minutes = _minutes("PORTAL_SESSION_MINUTES")
    session[SESSION_PATIENT] = patient.pk
    session[SESSION_UNTIL] = (at + timedelta(minutes=minutes)).isoformat()
    session.set_expiry(minutes * 60)
    return patient


def portal_patient(session: SessionBase, at: datetime) -> Patient | None:
    """The signed-in patient of this session, or None (never signed in, or the session ran out)."""
    patient_id, until = session.get(SESSION_PATIENT), session.get(SESSION_UNTIL)
    if patient_id is None or until is None:
        return None
    if datetime.fromisoformat(until) <= at:
        portal_sign_out(session)
        return None
    return Patient.objects.select_related("clinic").filter(pk=patient_id).first()


def portal_sign_out(session: SessionBase) -> None:
    for key in (SESSION_PATIENT, SESSION_UNTIL):
        session.pop(key, None)
