"""What patients (and the SMS provider on their behalf) reach without a staff login: the one-click
unsubscribe page and the inbound SMS hook. The portal is in notifications/portal.py. Views stay thin: the
work is in notifications/optout.py."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from notifications import messages, optout
from notifications.unsubscribe import patient_for_unsubscribe
from patients.models import Patient
from tracker.clock import now


def patient_page(
    request: HttpRequest, template: str, patient: Patient | None, /, status: int = 200, **context: Any
) -> HttpResponse:
    """A page for a patient, in their language, with their clinic's name in the header. `patient` is
    positional only: the context may carry its own `patient` (the injection card's)."""
    language = messages.language_of(patient.language) if patient is not None else "en"
    with translation.override(language):
        response = render(
            request,
            f"notifications/patient/{template}",
            {"clinic_name": patient.clinic.name if patient is not None else "", **context},
            status=status,
        )
    response["Cache-Control"] = "no-store, private"
    # Never send the address (a sign-in or unsubscribe token) to another site; "no-referrer" would also make
    # Chromium send "Origin: null" with the page's own forms, which Django's CSRF check refuses.
    response["Referrer-Policy"] = "same-origin"
    return response


# RFC 8058: the mail provider POSTs "List-Unsubscribe=One-Click" with no cookie and no CSRF token; the
# signed token in the address is what authorises it (the confirmation form posts the same way).
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    patient = patient_for_unsubscribe(token)
    if patient is None:
        return patient_page(request, "link_invalid.html", None, status=404)
    if request.method == "POST":
        how = "one-click unsubscribe" if request.POST.get("List-Unsubscribe") == "One-Click" else "unsubscribe link"
        optout.unsubscribe(patient, how=how)
        return patient_page(request, "unsubscribe.html", patient, done=True)
    # GET only asks: link scanners and previews open links, and must not opt anyone out.
    return patient_page(request, "unsubscribe.html", patient, done=False)


@csrf_exempt
@require_POST
def sms_inbound(request: HttpRequest) -> HttpResponse:
    """A text from a patient, posted form-encoded by the SMS provider (From, Body, MessageSid) with
    X-Cobalt-Signature: hex HMAC-SHA256 of the raw body under COBALT_SMS_INBOUND_SECRET. 403 when the
    signature is missing or wrong; 400 without a sender; otherwise 200 with what was done."""
    if not optout.signature_ok(request.body, request.headers.get("X-Cobalt-Signature", "")):
        return JsonResponse({"detail": "The signature is missing or wrong."}, status=403)
    sender = request.POST.get("From", "")
    if not optout.normalise_number(sender):
        return JsonResponse({"From": ["the sender's number is required"]}, status=400)
    result = optout.handle_inbound_sms(
        sender=sender,
        text=request.POST.get("Body", ""),
        message_id=request.POST.get("MessageSid", "") or request.body.hex()[:200],
        at=now(),
    )
    return JsonResponse({"keyword": result.keyword, "patients": result.patients, "replies": result.replies})
