"""This app's web pages (its `pages` module); tracker/web_urls.py includes them."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from regimens import pages

urlpatterns: list[URLPattern | URLResolver] = [
    path("patients/<int:patient_id>/regimens/new/", pages.regimen_start, name="regimen-start"),
    path("regimens/<int:regimen_id>/stop/", pages.regimen_stop, name="regimen-stop"),
    path("regimens/<int:regimen_id>/end-phase/", pages.regimen_end_phase, name="regimen-end-phase"),
    path("regimens/<int:regimen_id>/review/", pages.regimen_review, name="regimen-review"),
    path("doses/<int:dose_id>/entered-in-error/", pages.dose_entered_in_error, name="dose-entered-in-error"),
]
