"""The patients app's API routes: clinics and patients, lab results (labs/) and medications and facts
(clinical/). tracker/urls.py includes this module under /api/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from rest_framework.routers import SimpleRouter

from patients.staff_views import StaffViewSet
from patients.views import ClinicViewSet, PatientViewSet

router = SimpleRouter()
router.register("patients", PatientViewSet, basename="patient")
router.register("clinics", ClinicViewSet, basename="clinic")
router.register("staff", StaffViewSet, basename="staff")

urlpatterns: list[URLPattern | URLResolver] = [
    *router.urls,
    path("", include("patients.labs.urls")),
    path("", include("patients.clinical.urls")),
]
