"""Medications and patient facts routes (included by patients/urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver
from rest_framework.routers import SimpleRouter

from patients.clinical.views import MedicationViewSet, PatientFactViewSet

router = SimpleRouter()
router.register("medications", MedicationViewSet, basename="medication")
router.register("patient-facts", PatientFactViewSet, basename="patient-fact")

urlpatterns: list[URLPattern | URLResolver] = [*router.urls]
