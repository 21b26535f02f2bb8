"""The one-click unsubscribe link (RFC 8058) and the headers every patient email carries.

The token is the patient's id signed with the SECRET_KEY (django.core.signing, its own salt): it cannot be
forged or guessed and needs no table. The email channel imports this module, so it imports nothing of the
outbox (notifications/optout.py acts on the link).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import signing

from patients.models import Patient

UNSUBSCRIBE_SALT = "cobalt.notifications.unsubscribe"


def unsubscribe_token(patient_id: int) -> str:
    return signing.dumps(patient_id, salt=UNSUBSCRIBE_SALT)


def patient_for_unsubscribe(token: str) -> Patient | None:
    """The patient a link was made for, or None for a forged, damaged or stale (patient gone) token."""
    try:
        patient_id = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(patient_id, int):
        return None
    return Patient.objects.select_related("clinic").filter(pk=patient_id).first()


def absolute(path: str) -> str:
    """An absolute address for links that leave the site (email headers, texts). COBALT_SITE_URL must be set
    in production; `make run` serves on localhost:8000."""
    base = str(settings.COBALT.get("SITE_URL") or "").rstrip("/") or "http://localhost:8000"
    return f"{base}{path}"


def unsubscribe_url(patient_id: int) -> str:
    return absolute(f"/unsubscribe/{unsubscribe_token(patient_id)}")


def email_headers(delivery: Any) -> dict[str, str]:
    """The headers a patient email carries: one-click unsubscribe (RFC 8058) and the clinic's Reply-To,
    so that "reply to this message" reaches the clinic rather than a no-reply address."""
    patient = delivery.patient
    if patient is None or delivery.user_id is not None:
        return {}
    headers = {
        "List-Unsubscribe": f"<{unsubscribe_url(patient.pk)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    clinic_email = (patient.clinic.email or "").strip()
    if clinic_email:
        headers["Reply-To"] = clinic_email
    return headers


FOOTER = {
    "en": "To stop these reminders: {url}",
    "es": "Para dejar de recibir estos recordatorios: {url}",
}


def email_body(delivery: Any) -> str:
    """A patient email's text with the unsubscribe link at the bottom, for mail programs that do not show
    the List-Unsubscribe header (the link is the patient's own, so it is added as it is sent, not stored)."""
    patient = delivery.patient
    if patient is None or delivery.user_id is not None:
        return str(delivery.body)
    footer = FOOTER.get(delivery.language, FOOTER["en"]).format(url=unsubscribe_url(patient.pk))
    return f"{delivery.body}\n\n--\n{footer}\n"
