"""Lab pages (included by patients/page_urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from patients.labs import pages

urlpatterns: list[URLPattern | URLResolver] = [
    path("patients/<int:pk>/labs/new/", pages.lab_new, name="lab-new"),
    path("labs/import/", pages.lab_import, name="lab-import"),
    path("labs/import/<int:pk>/", pages.lab_import_job, name="lab-import-job"),
    path("labs/import/sample.csv", pages.lab_import_sample, name="lab-import-sample"),
]
