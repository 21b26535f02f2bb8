"""The notifications API routes (included under /api/ by tracker/urls.py): alerts, and the delivery log
with the staff inbox."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver
from rest_framework.routers import SimpleRouter

from notifications.views import AlertViewSet, NotificationViewSet

router = SimpleRouter()
router.register("alerts", AlertViewSet, basename="alert")
router.register("notifications", NotificationViewSet, basename="notification")

urlpatterns: list[URLPattern | URLResolver] = [*router.urls]
