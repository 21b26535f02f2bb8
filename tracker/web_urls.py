"""The web pages' URLs: the shell here (sign-in, password reset), then each app's pages from its own
`page_urls.py` (one owner per file)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path

from tracker import pages, two_factor

urlpatterns: list[URLPattern | URLResolver] = [
    path("login/", pages.SignInView.as_view(), name="login"),
    path("logout/", pages.sign_out, name="logout"),
    path("login/two-factor/", two_factor.two_factor, name="two-factor"),
    path("password-reset/", pages.ResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("password-reset/<uidb64>/<token>/", pages.ResetConfirmView.as_view(), name="password_reset_confirm"),
    path("password-reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("", include("patients.page_urls")),
    path("", include("regimens.page_urls")),
    path("", include("regimens.feed_urls")),
    path("", include("notifications.page_urls")),
    path("", include("notifications.patient_urls")),
    path("", include("monitoring.page_urls")),
]
