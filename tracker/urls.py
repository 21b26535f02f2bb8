"""URL layout. Each app keeps its own API routes in its own module (one owner per file)."""

from __future__ import annotations

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from tracker.auth import ObtainTokenView, SignOutView

# The Django admin is the superusers' tool (protocol library, system settings; tracker/admin_site.py, its
# branding too); clinic staff work in the web app. Its times are the clinic's: tracker.middleware activates
# the user's first clinic's zone on every page outside /api/, the admin's included.

# The API docs (Swagger UI) for signed-in users; its start-up script is a separate request (the split view)
# so the CSP needs no inline script; Swagger UI's page keeps an inline <style>, allowed on this page only.
api_docs = login_required(
    csp_update({"style-src": [UNSAFE_INLINE]})(SpectacularSwaggerSplitView.as_view(url_name="api-schema"))
)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/auth/token/", ObtainTokenView.as_view(), name="api-token"),
    path("api/auth/sign-out/", SignOutView.as_view(), name="api-sign-out"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", api_docs, name="api-docs"),
    path("api/", include("patients.urls")),
    path("api/", include("monitoring.urls")),
    path("api/", include("regimens.urls")),
    path("api/", include("notifications.urls")),
    path("", include("tracker.web_urls")),
]

handler404 = "tracker.api.not_found"
