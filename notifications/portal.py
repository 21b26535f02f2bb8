"""The patient portal /me/: a patient's own appointments, how they are reminded, their calendar link.

Reached from a single-use sign-in link (notifications/portal_access.py). A patient only ever sees
themselves: the session holds their id and no address carries one. The pages use the web app's shell
without the staff header (notifications/templates/notifications/patient/base_patient.html). Views are thin:
they read through regimens' selector and write through patients' services, as the API does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from notifications.messages import language_of
from notifications.patient_pages import patient_page
from notifications.portal_access import (
    portal_link_patient,
    portal_patient,
    portal_request_link,
    portal_sign_in,
    portal_sign_out,
)
from notifications.unsubscribe import absolute
from patients.models import PATIENT_LANGUAGES, Patient, ReminderChannel
from patients.pages import card_context
from patients.services import patient_rotate_ical_token, patient_set_reminders
from regimens.selectors import patient_appointments
from tracker.clock import now, patient_today
from tracker.errors import ServiceError
from tracker.forms import NHSUKForm

# How far back "past appointments" reaches.
PAST_DAYS = 365


class LinkRequestForm(NHSUKForm):
    contact = forms.CharField(
        label=_("Email address or mobile phone number"),
        help_text=_("The one your clinic has for you. We will send you a link to your page."),
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "email", "spellcheck": "false"}),
    )


class RemindersForm(NHSUKForm):
    reminder_channel = forms.ChoiceField(
        label=_("How should we remind you of appointments?"),
        choices=[
            (ReminderChannel.EMAIL, _("By email")),
            (ReminderChannel.SMS, _("By text message")),
            (ReminderChannel.NONE, _("No reminders")),
        ],
        widget=forms.RadioSelect,
    )
    language = forms.ChoiceField(label=_("Language of reminders"), choices=PATIENT_LANGUAGES)


def signed_in(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The view runs with the signed-in patient; anyone else goes to the page that asks for a link."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        patient = portal_patient(request.session, now())
        if patient is None:
            return HttpResponseRedirect(reverse("portal"))
        return view(request, patient, *args, **kwargs)

    return wrapper


def _home(request: HttpRequest, patient: Patient, form: RemindersForm | None = None, status: int = 200) -> HttpResponse:
    today = patient_today(patient)
    appointments = patient_appointments(patient, since=today - timedelta(days=PAST_DAYS))
    upcoming = [a for a in appointments if a.status == "planned" and a.day >= today]
    past = sorted((a for a in appointments if a.status == "attended"), key=lambda a: a.day, reverse=True)
    feed = absolute(reverse("ical-feed", args=[patient.ical_token]))
    return patient_page(
        request,
        "portal_home.html",
        patient,
        status=status,
        me=patient,
        upcoming=upcoming,
        missed=[a for a in appointments if a.status == "planned" and a.day < today],
        past=past,
        form=form
        or RemindersForm(initial={"reminder_channel": patient.reminder_channel, "language": patient.language}),
        feed_url=feed,
        webcal_url="webcal://" + feed.split("://", 1)[1],
        portal_signed_in=True,
    )


@require_GET
def portal(request: HttpRequest) -> HttpResponse:
    patient = portal_patient(request.session, now())
    if patient is not None:
        return _home(request, patient)
    return patient_page(request, "portal_request.html", None, form=LinkRequestForm())


@require_POST
def request_link(request: HttpRequest) -> HttpResponse:
    form = LinkRequestForm(request.POST)
    if not form.is_valid():
        return patient_page(request, "portal_request.html", None, status=400, form=form)
    portal_request_link(contact=form.cleaned_data["contact"], at=now())
    # The same answer whether or not the contact is on file.
    return patient_page(request, "portal_sent.html", None)


@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest, token: str) -> HttpResponse:
    at = now()
    if request.method == "POST":
        patient = portal_sign_in(session=request.session, token=token, at=at)
    else:
        patient = portal_link_patient(token, at)
    if patient is None:
        return patient_page(request, "link_invalid.html", None, status=404, request_url=reverse("portal"))
    if request.method == "POST":
        return HttpResponseRedirect(reverse("portal"))
    return patient_page(request, "portal_sign_in.html", patient)


@require_POST
@signed_in
def reminders(request: HttpRequest, patient: Patient) -> HttpResponse:
    form = RemindersForm(request.POST)
    if form.is_valid():
        try:
            patient_set_reminders(
                patient=patient,
                channel=form.cleaned_data["reminder_channel"],
                language=form.cleaned_data["language"],
                reason="changed by the patient in the portal",
            )
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
    if not form.is_valid():
        return _home(request, patient, form=form, status=400)
    with translation.override(language_of(form.cleaned_data["language"])):  # stored as text, in their language
        flash.success(request, translation.gettext("Your reminder choices are saved."))
    return HttpResponseRedirect(reverse("portal"))


@require_POST
@signed_in
def rotate_calendar(request: HttpRequest, patient: Patient) -> HttpResponse:
    patient_rotate_ical_token(patient=patient, reason="calendar link renewed by the patient")
    with translation.override(language_of(patient.language)):
        flash.success(
            request,
            translation.gettext(
                "Your calendar link is new. The old one no longer works: add the new one to your calendar."
            ),
        )
    return HttpResponseRedirect(reverse("portal"))


@require_GET
@signed_in
def card(request: HttpRequest, patient: Patient) -> HttpResponse:
    """The patient's own printable appointment card: the same card, from the same data, as the one staff
    print at /patients/{id}/card/ (patients/pages.py card_context)."""
    return patient_page(request, "portal_card.html", patient, portal_signed_in=True, **card_context(patient))


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    portal_sign_out(request.session)
    return HttpResponseRedirect(reverse("portal"))


@require_GET
def help_page(request: HttpRequest) -> HttpResponse:
    return patient_page(request, "portal_help.html", portal_patient(request.session, now()))
