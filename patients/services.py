"""Write services for clinics and patients (HackSoft style: keyword-only, typed, each one atomic)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import transaction

from patients.models import PATIENT_LANGUAGES, Clinic, ClosedDate, Patient, ReminderChannel, new_ical_token
from tracker import events
from tracker.errors import ServiceError


def clinic_update_calendar(
    *,
    clinic: Clinic,
    open_weekdays: list[int] | None = None,
    closed_dates: list[date] | None = None,
    user: Any = None,
    background: bool = True,
) -> Clinic:
    """Change the clinic's open weekdays and/or closed dates (the full list); see clinic_change_calendar."""
    return clinic_change_calendar(
        clinic=clinic, open_weekdays=open_weekdays, closed_dates=closed_dates, user=user, background=background
    ).clinic


@dataclass(frozen=True)
class CalendarChange:
    clinic: Clinic
    # The job that re-plans the clinic's regimens in the background (regimens.models.ReplanJob), or None when
    # they were re-planned within the change.
    job: Any = None


def clinic_change_calendar(
    *,
    clinic: Clinic,
    open_weekdays: list[int] | None = None,
    closed_dates: list[date] | None = None,
    user: Any = None,
    background: bool = True,
) -> CalendarChange:
    """Change the clinic's open weekdays and/or closed dates (the full list). The change is announced
    ("clinic.calendar_changed") in the same transaction: regimens re-plans the planned doses of the
    clinic's active regimens (regimens/listeners.py), so the calendar and the doses change together; at a
    clinic with more than COBALT_CALENDAR_SYNC_MAX_REGIMENS active regimens (and `background`), regimens
    answers with a job that re-plans them in batches once the change commits (issue 16)."""
    if open_weekdays is not None:
        if (
            not isinstance(open_weekdays, list)
            or not open_weekdays
            or any(not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= 6 for d in open_weekdays)
        ):
            raise ServiceError("open_weekdays", "must be a non-empty list of numbers 0 (Monday) to 6 (Sunday)")
    with transaction.atomic():
        clinic = Clinic.objects.select_for_update().get(pk=clinic.pk)
        if open_weekdays is not None:
            clinic.open_weekdays = sorted(set(open_weekdays))
            clinic.save(update_fields=["open_weekdays"])
        if closed_dates is not None:
            wanted = set(closed_dates)
            current = clinic.closed_date_set()
            ClosedDate.objects.filter(clinic=clinic, date__in=current - wanted).delete()
            ClosedDate.objects.bulk_create([ClosedDate(clinic=clinic, date=d) for d in sorted(wanted - current)])
        job = events.answer("clinic.calendar_changed", None, clinic=clinic, user=user, background=background)
    return CalendarChange(clinic=clinic, job=job)


def patient_rotate_ical_token(*, patient: Patient, user: Any = None, reason: str = "calendar link renewed") -> str:
    """Give the patient a new random calendar-feed token: the old address stops working at once. Random
    (secrets), never derived from ids, so a feed address cannot be guessed from another."""
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        locked.ical_token = new_ical_token()
        locked._change_reason = reason  # type: ignore[attr-defined]  # django-simple-history reads it
        if user is not None and getattr(user, "is_authenticated", False):
            locked._history_user = user  # type: ignore[attr-defined]
        locked.save(update_fields=["ical_token", "updated_at"])
    patient.ical_token = locked.ical_token
    return locked.ical_token


def patient_set_reminders(
    *,
    patient: Patient,
    channel: str | None = None,
    language: str | None = None,
    reason: str,
    user: Any = None,
) -> Patient:
    """Change how the patient is reminded (email, sms or none = opted out) and in which language. The
    change is kept in the patient's history with `reason` (who asked: the portal, an unsubscribe link, an
    SMS STOP); pending reminders on the old channel are cancelled by the next reminders sweep."""
    if channel is not None and channel not in ReminderChannel.values:
        raise ServiceError("reminder_channel", f"must be one of: {', '.join(ReminderChannel.values)}")
    languages = [code for code, _name in PATIENT_LANGUAGES]
    if language is not None and language not in languages:
        raise ServiceError("language", f"must be one of: {', '.join(languages)}")
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        if channel == ReminderChannel.EMAIL and "@" not in (locked.email or ""):
            raise ServiceError("reminder_channel", "there is no email address on file to send reminders to")
        if channel == ReminderChannel.SMS and not (locked.phone or "").strip():
            raise ServiceError("reminder_channel", "there is no mobile phone number on file to text reminders to")
        fields = []
        if channel is not None and channel != locked.reminder_channel:
            locked.reminder_channel = channel
            fields.append("reminder_channel")
        if language is not None and language != locked.language:
            locked.language = language
            fields.append("language")
        if fields:
            locked._change_reason = reason  # type: ignore[attr-defined]
            if user is not None and getattr(user, "is_authenticated", False):
                locked._history_user = user  # type: ignore[attr-defined]
            locked.save(update_fields=[*fields, "updated_at"])
    for name in ("reminder_channel", "language"):
        setattr(patient, name, getattr(locked, name))
    return locked
