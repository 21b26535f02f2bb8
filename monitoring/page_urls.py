"""This app's web pages (its `pages` module); tracker/web_urls.py includes them."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from monitoring import pages

urlpatterns: list[URLPattern | URLResolver] = [
    path("dashboard/", pages.dashboard, name="dashboard"),
    path("dashboard/normalization/", pages.normalization, name="dashboard-normalization"),
    path("audit/", pages.audit, name="audit"),
    path("audit/export/", pages.audit_export, name="audit-export"),
]
