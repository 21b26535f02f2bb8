from __future__ import annotations

from django.urls import URLPattern, URLResolver
from rest_framework.routers import SimpleRouter

from patients.views import ClinicViewSet, PatientViewSet

router = SimpleRouter()
router.register("patients", PatientViewSet, basename="patient")
router.register("clinics", ClinicViewSet, basename="clinic")

urlpatterns: list[URLPattern | URLResolver] = [*router.urls]
