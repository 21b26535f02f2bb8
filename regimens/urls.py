from __future__ import annotations

from django.urls import URLPattern, URLResolver, path
from rest_framework.routers import SimpleRouter

from regimens.views import (
    DoseViewSet,
    LabRecheckViewSet,
    ProtocolViewSet,
    RegimenViewSet,
    ReplanJobViewSet,
    SchedulePreviewView,
)

router = SimpleRouter()
router.register("protocols", ProtocolViewSet, basename="protocol")
router.register("regimens", RegimenViewSet, basename="regimen")
router.register("doses", DoseViewSet, basename="dose")
router.register("lab-rechecks", LabRecheckViewSet, basename="lab-recheck")
router.register("replan-jobs", ReplanJobViewSet, basename="replan-job")

urlpatterns: list[URLPattern | URLResolver] = [
    path("schedule/preview/", SchedulePreviewView.as_view(), name="schedule-preview"),
    *router.urls,
]
