"""This app's web pages (its `pages` module and patients/labs/pages.py); tracker/web_urls.py includes them."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

from patients import pages

urlpatterns: list[URLPattern | URLResolver] = [
    path("patients/", pages.patient_search, name="patient-search"),
    path("patients/export.csv", pages.patient_export, name="patient-export"),
    path("patients/<int:patient_id>/", pages.patient_page, name="patient"),
    path("patients/<int:patient_id>/card/", pages.injection_card, name="patient-card"),
    path("", include("patients.labs.page_urls")),
]
