"""URL layout. Each app keeps its own API routes in its own module (one owner per file)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from tracker.auth import ObtainTokenView

# The Django admin is the superusers' tool (protocol library, system settings); clinic staff work in
# the web app. Its times are the clinic's: tracker.middleware activates the user's first clinic's zone
# on every page outside /api/, the admin's included.
admin.site.site_header = _("Cobalt administration")
admin.site.site_title = _("Cobalt administration")
admin.site.index_title = _("Protocols, clinics and records")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/auth/token/", ObtainTokenView.as_view(), name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("patients.urls")),
    path("api/", include("monitoring.urls")),
    path("api/", include("regimens.urls")),
    path("api/", include("notifications.urls")),
    path("", include("tracker.web_urls")),
]

handler404 = "tracker.api.not_found"
