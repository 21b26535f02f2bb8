"""This app's web pages (its `pages` module); tracker/web_urls.py includes them."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from notifications import pages, patient_sections

urlpatterns: list[URLPattern | URLResolver] = [
    path("alerts/", pages.alert_list, name="alerts"),
    path("alerts/<int:pk>/acknowledge/", pages.alert_acknowledge, name="alert-acknowledge"),
    path(
        "patients/<int:patient_id>/alerts/<int:alert_id>/acknowledge/",
        patient_sections.alert_acknowledge,
        name="patient-alert-acknowledge",
    ),
]
