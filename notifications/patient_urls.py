"""Addresses patients (and the SMS provider for them) reach without a staff login."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from notifications import patient_pages, portal

urlpatterns: list[URLPattern | URLResolver] = [
    path("unsubscribe/<str:token>", patient_pages.unsubscribe, name="unsubscribe"),
    path("hooks/sms/inbound/", patient_pages.sms_inbound, name="sms-inbound"),
    path("me/", portal.portal, name="portal"),
    path("me/link/", portal.request_link, name="portal-request-link"),
    path("me/sign-in/<str:token>", portal.sign_in, name="portal-sign-in"),
    path("me/card/", portal.card, name="portal-card"),
    path("me/reminders/", portal.reminders, name="portal-reminders"),
    path("me/calendar-link/", portal.rotate_calendar, name="portal-rotate-calendar"),
    path("me/sign-out/", portal.sign_out, name="portal-sign-out"),
    path("me/help/", portal.help_page, name="portal-help"),
]
