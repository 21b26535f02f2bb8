from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from monitoring.views import (
    AuditView,
    B12StatusView,
    DashboardNormalizationView,
    DashboardView,
    PlasmicView,
    PromptsView,
    TrendsView,
)

urlpatterns: list[URLPattern | URLResolver] = [
    path("patients/<int:pk>/plasmic/", PlasmicView.as_view(), name="patient-plasmic"),
    path("patients/<int:pk>/trends/", TrendsView.as_view(), name="patient-trends"),
    path("patients/<int:pk>/b12-status/", B12StatusView.as_view(), name="patient-b12-status"),
    path("patients/<int:pk>/prompts/", PromptsView.as_view(), name="patient-prompts"),
    path("dashboard/", DashboardView.as_view(), name="api-dashboard"),
    path("dashboard/normalization/", DashboardNormalizationView.as_view(), name="api-dashboard-normalization"),
    path("audit/", AuditView.as_view(), name="api-audit"),
]
