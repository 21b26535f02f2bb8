"""Addresses patients (and the SMS provider for them) reach without a staff login."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from notifications import patient_pages

urlpatterns: list[URLPattern | URLResolver] = [
    path("unsubscribe/<str:token>", patient_pages.unsubscribe, name="unsubscribe"),
    path("hooks/sms/inbound/", patient_pages.sms_inbound, name="sms-inbound"),
]
