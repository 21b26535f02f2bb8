"""Monitoring API routes, one module per owner: lab results and import (lab_urls), medications,
patient facts (clinical_urls), PLASMIC and trends (insight_urls)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

urlpatterns: list[URLPattern | URLResolver] = [
    path("", include("patients.lab_urls")),
    path("", include("patients.clinical_urls")),
    path("", include("patients.insight_urls")),
]
