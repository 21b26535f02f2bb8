"""A patient's appointments as an iCalendar feed (RFC 5545): GET /ical/{token}.ics.

The address is the secret: `Patient.ical_token` is random and rotated by staff (the patient API) or the
patient (portal), and the old address stops at once. Nothing in the feed is clinical: an event is "an
appointment at <clinic>" whether it is an injection or a blood test, like the reminders
(notifications/messages.py), because calendars are shared and shown on lock screens. UIDs are the rows'
own identity, so when Cobalt re-plans, calendar apps move the event rather than add a second one; a dose
that will not happen stays in the feed as a cancelled event so that the apps remove it. A dose with an
appointment time (its own, or the start of the clinic's session) is a timed event in the clinic's zone,
one slot long; otherwise, and for rechecks (the patient books a day in a window), an all-day event.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from icalendar import Calendar, Event
from icalendar.enums import STATUS, TRANSP

from patients.models import Patient
from regimens.selectors import Appointment, patient_appointments
from tracker.clock import now, patient_today

# How far back the feed reaches: calendar apps keep what they already have; a year of history is plenty.
HISTORY_DAYS = 365
# How often calendar apps should fetch it again (REFRESH-INTERVAL, RFC 7986; X-PUBLISHED-TTL for Outlook).
REFRESH = timedelta(hours=6)
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# How long a timed event lasts when the clinic sets session hours but no slot length (not clinical).
DEFAULT_SLOT_MINUTES = 15

TEXTS = {
    "en": {
        "calendar": "{clinic} appointments",
        "summary": "Appointment at {clinic}",
        "book": "Please book this appointment for a day between {start} and {end}.",
        "contact_phone": "To change it, call {clinic} on {phone}.",
        "contact": "To change it, contact {clinic}.",
    },
    "es": {
        "calendar": "Citas en {clinic}",
        "summary": "Cita en {clinic}",
        "book": "Reserve esta cita para un día entre el {start} y el {end}.",
        "contact_phone": "Para cambiarla, llame a {clinic} al {phone}.",
        "contact": "Para cambiarla, contacte con {clinic}.",
    },
}


def texts_for(language: str) -> dict[str, str]:
    base = (language or "").split("-")[0].split("_")[0].lower()
    return TEXTS.get(base, TEXTS["en"])


def _event(appointment: Appointment, *, patient: Patient, texts: dict[str, str], domain: str) -> Event:
    clinic = patient.clinic
    phone = (clinic.phone or "").strip()
    lines = []
    if appointment.window_start and appointment.window_end and appointment.status == "planned":
        lines.append(
            texts["book"].format(start=appointment.window_start.isoformat(), end=appointment.window_end.isoformat())
        )
    lines.append((texts["contact_phone"] if phone else texts["contact"]).format(clinic=clinic.name, phone=phone))
    location = ", ".join(part for part in [clinic.name, *(clinic.address or "").splitlines()] if part.strip())
    start: date | datetime = appointment.day
    end: date | datetime = appointment.day + timedelta(days=1)  # all-day: a day, no time
    if appointment.time is not None:
        # The clinic's wall-clock time in its own zone (TZID + VTIMEZONE), right on both sides of DST.
        start = datetime.combine(appointment.day, appointment.time, tzinfo=zoneinfo.ZoneInfo(clinic.timezone))
        end = start + timedelta(minutes=clinic.slot_minutes or DEFAULT_SLOT_MINUTES)
    return Event.new(
        uid=f"cobalt-{appointment.uid}@{domain}",
        summary=texts["summary"].format(clinic=clinic.name),
        start=start,
        end=end,
        location=location,
        description="\n".join(lines),
        status=STATUS.CANCELLED if appointment.status == "cancelled" else STATUS.CONFIRMED,
        stamp=now(),
        transparency=TRANSP.OPAQUE if appointment.time is not None else TRANSP.TRANSPARENT,
    )


def patient_calendar(patient: Patient, *, domain: str = "cobalt") -> Calendar:
    """The patient's feed as an icalendar Calendar (pure over the selector's rows)."""
    texts = texts_for(patient.language)
    since = patient_today(patient) - timedelta(days=HISTORY_DAYS)
    calendar = Calendar.new(
        prodid="-//Cobalt//Patient appointments//EN",
        method="PUBLISH",
        calscale="GREGORIAN",
        name=texts["calendar"].format(clinic=patient.clinic.name),
        refresh_interval=REFRESH,
        subcomponents=[
            _event(a, patient=patient, texts=texts, domain=domain) for a in patient_appointments(patient, since=since)
        ],
    )
    calendar.add("x-published-ttl", REFRESH)
    calendar.add_missing_timezones()
    return calendar


def uid_domain() -> str:
    """The right-hand side of every UID: the site's host name, fixed by configuration (not the request's
    Host header), so UIDs stay the same whichever address the calendar app used."""
    return urlsplit(str(settings.COBALT.get("SITE_URL") or "")).hostname or "cobalt"


@require_GET
def feed(request: HttpRequest, token: str) -> HttpResponse:
    """The feed of the patient whose token is in the address; 404 for any other (no hint whether it ever
    existed). The address never reaches a log: tracker/logging.py redacts it."""
    patient = (
        Patient.objects.select_related("clinic").filter(ical_token=token).first() if TOKEN.match(token) else None
    )
    if patient is None:
        return HttpResponse("No calendar at this address.\n", status=404, content_type="text/plain; charset=utf-8")
    body = patient_calendar(patient, domain=uid_domain()).to_ical()
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="appointments.ics"'
    response["Cache-Control"] = "no-store, private"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    return response
