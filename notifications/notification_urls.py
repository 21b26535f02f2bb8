"""Notifications routes (included under /api/ through notifications/urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver
from rest_framework.routers import SimpleRouter

from notifications.notification_views import NotificationViewSet

router = SimpleRouter()
router.register("notifications", NotificationViewSet, basename="notification")

urlpatterns: list[URLPattern | URLResolver] = [*router.urls]
