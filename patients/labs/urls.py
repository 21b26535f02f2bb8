"""Lab results routes (included by patients/urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path
from rest_framework.routers import SimpleRouter

from patients.labs.views import AnalyteCatalogueView, LabResultViewSet

router = SimpleRouter()
router.register("lab-results", LabResultViewSet, basename="lab-result")

urlpatterns: list[URLPattern | URLResolver] = [
    path("analytes/", AnalyteCatalogueView.as_view(), name="analyte-catalogue"),
    *router.urls,
]
