"""Alerts routes (included under /api/ by tracker/urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver
from rest_framework.routers import SimpleRouter

from notifications.alert_views import AlertViewSet

router = SimpleRouter()
router.register("alerts", AlertViewSet, basename="alert")

urlpatterns: list[URLPattern | URLResolver] = [*router.urls]
