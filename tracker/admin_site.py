"""The Django admin is the superusers' tool (protocol library, clinics, system settings); clinic staff do
their work in the web app (their dashboard, staff and audit log pages included).

`CobaltAdminSite` is the project's default admin site (tracker.apps.CobaltAdminConfig replaces
django.contrib.admin in INSTALLED_APPS, so every app's `@admin.register` lands here). It lets only active
superusers in; anyone else signed in, even with `is_staff` and model permissions, gets a page that points
them to the web app (403), and the admin's sign-in form refuses a non-superuser with the same pointer. The
clinic-scoping admin bases (tracker/admin.py) stay: a superuser sees every clinic's rows.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any, TypeVar, cast

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

ViewType = TypeVar("ViewType", bound=Callable[..., HttpResponseBase])


class SuperuserAuthenticationForm(AdminAuthenticationForm):
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "not_superuser": _(
            "The Django admin is for Cobalt's system administrators. Clinic staff sign in to the web app at /login/."
        ),
    }

    def confirm_login_allowed(self, user: Any) -> None:
        if not user.is_active or not user.is_superuser:
            raise forms.ValidationError(self.error_messages["not_superuser"], code="not_superuser")
        super().confirm_login_allowed(user)


class CobaltAdminSite(admin.AdminSite):
    site_header = _("Cobalt administration")
    site_title = _("Cobalt administration")
    index_title = _("Protocols, clinics and records")
    login_form = SuperuserAuthenticationForm

    def has_permission(self, request: HttpRequest) -> bool:
        user: Any = request.user
        return bool(user.is_active and user.is_superuser)

    def refused(self, request: HttpRequest) -> HttpResponse:
        return render(request, "tracker/admin_refused.html", status=403)

    def admin_view(self, view: ViewType, cacheable: bool = False) -> ViewType:
        """Every admin page answers a signed-in user who is not a superuser with the refusal (403) rather
        than Django's redirect to the admin's sign-in form (the page's header has the web app's sign-out)."""
        inner = super().admin_view(view, cacheable)

        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.user.is_authenticated and not self.has_permission(request):
                return self.refused(request)
            response: HttpResponseBase = inner(request, *args, **kwargs)
            return response

        return cast(ViewType, update_wrapper(wrapper, view))

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """The admin's sign-in form; a signed-in user who is not a superuser is pointed to the web app
        instead of asked to sign in again."""
        if request.user.is_authenticated and not self.has_permission(request):
            return self.refused(request)
        return super().login(request, extra_context)
