"""Lab results routes (included by patients/urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path
from rest_framework.routers import SimpleRouter

from patients.labs.views import AnalyteCatalogueView, LabImportJobViewSet, LabResultViewSet

router = SimpleRouter()
router.register("lab-results", LabResultViewSet, basename="lab-result")
router.register("lab-imports", LabImportJobViewSet, basename="lab-import-job")

urlpatterns: list[URLPattern | URLResolver] = [
    path("analytes/", AnalyteCatalogueView.as_view(), name="analyte-catalogue"),
    *router.urls,
]
