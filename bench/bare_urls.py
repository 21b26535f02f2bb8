"""Cobalt's routes plus the bare views of bench/bare_views.py (bench/results.py only)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

from bench.bare_views import BareApiRead, BareDoseAdminister, BareLabResultCreate, bare_page_html, bare_page_read

BARE_LAB_RESULTS = "/bench/bare/lab-results/"
BARE_DOSES = "/bench/bare/doses/{pk}/"
BARE_API_READ = "/bench/bare/api/{key}/"
BARE_PAGE_READ = "/bench/bare/page/{key}/"
BARE_PAGE_HTML = "/bench/bare/page/{key}/html/"

urlpatterns: list[URLPattern | URLResolver] = [
    path(BARE_LAB_RESULTS.strip("/") + "/", BareLabResultCreate.as_view()),
    path("bench/bare/doses/<int:pk>/", BareDoseAdminister.as_view()),
    path("bench/bare/api/<str:key>/", BareApiRead.as_view()),
    path("bench/bare/page/<str:key>/", bare_page_read),
    path("bench/bare/page/<str:key>/html/", bare_page_html),
    path("", include("tracker.urls")),
]
