"""Cobalt's routes plus the bare create view of bench/bare_views.py (bench/results.py only)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

from bench.bare_views import BareLabResultCreate

BARE_LAB_RESULTS = "/bench/bare/lab-results/"

urlpatterns: list[URLPattern | URLResolver] = [
    path(BARE_LAB_RESULTS.strip("/") + "/", BareLabResultCreate.as_view()),
    path("", include("tracker.urls")),
]
