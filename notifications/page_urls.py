"""This app's web pages (its `pages` module); tracker/web_urls.py includes them."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from notifications import pages

urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "patients/<int:patient_id>/alerts/<int:alert_id>/acknowledge/",
        pages.alert_acknowledge,
        name="patient-alert-acknowledge",
    ),
]
