"""A TOTP second factor (django-otp) for the web pages and the admin (issue 12, docs/security.md).

Clinicians and clinic admins (tracker.permissions.PRESCRIBERS), and superusers, must confirm a six-digit code
from an authenticator app after their password, when settings.COBALT["REQUIRE_SECOND_FACTOR"] is on (the
default; the test settings turn it off, and tests/security/test_two_factor.py turns it on). Nurses may set
one up at /login/two-factor/. The first time, the page shows the key to add to the app and confirms it with
a code; afterwards it asks for a code. Until then every page, the admin and the API by session answer the
sign-in step instead (SecondFactorMiddleware). The token endpoint (tracker/auth.py) asks the same users for the
app's code (`otp_token`): token_second_factor.
"""

from __future__ import annotations

from base64 import b32encode
from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from tracker.forms import NHSUKForm
from tracker.permissions import PRESCRIBERS

DEVICE_NAME = "Authenticator app"
# Paths a signed-in user who still owes the second factor may open: the step itself, sign-out, static files.
OPEN_PATHS = ("/login/two-factor/", "/logout/", "/static/")


def second_factor_required(user: Any) -> bool:
    if not settings.COBALT.get("REQUIRE_SECOND_FACTOR", False) or not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_superuser or user.memberships.filter(role__in=PRESCRIBERS).exists())


def token_second_factor(user: Any) -> tuple[bool, TOTPDevice | None]:
    """For the token endpoint: whether this user must send a code (the web sign-in's rule: required for the
    role, or set up by the user), and the confirmed device to check it against (None: none set up yet)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device is not None or second_factor_required(user), device


SESSION_KEY = "cobalt_second_factor"


def remember_at_sign_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """user_logged_in: whether this session owes the second factor is decided once, at sign-in (so pages pay
    no query for it): required for the role, or set up by the user. A token issued by the API (`api_token`)
    signs no session in: its second factor was checked by the token endpoint."""
    if request is None or not hasattr(request, "session") or kwargs.get("api_token"):
        return
    owed = second_factor_required(user) or TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    request.session[SESSION_KEY] = owed


def owes_second_factor(request: HttpRequest) -> bool:
    """Signed in with a password, second factor owed, and not yet given in this session."""
    user: Any = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not request.session.get(SESSION_KEY, False):
        return False
    return not user.is_verified()


def connect() -> None:
    user_logged_in.connect(remember_at_sign_in, dispatch_uid="cobalt-second-factor")


class SecondFactorMiddleware:
    """After django-otp's OTPMiddleware: a session that owes the second factor reaches only the step itself
    (pages and the admin are redirected to it, the API by session answers 403)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(OPEN_PATHS) or not owes_second_factor(request):
            return self.get_response(request)
        if request.path.startswith("/api/"):
            message = "Confirm your sign-in with your authenticator app's code first."
            return JsonResponse({"detail": message}, status=403)
        step = reverse("two-factor")
        return HttpResponseRedirect(f"{step}?next={request.get_full_path()}")


class CodeForm(NHSUKForm):
    code = forms.RegexField(
        label=_("Code from your authenticator app"),
        regex=r"^\s*\d{6}\s*$",
        error_messages={"invalid": _("Enter the 6 digits your authenticator app shows")},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "data-width": "10"}),
    )


def two_factor(request: HttpRequest) -> HttpResponse:
    """The second step of signing in: set up the authenticator app once, then confirm its code."""
    user: Any = request.user
    if not user.is_authenticated:
        return HttpResponseRedirect(f"{settings.LOGIN_URL}?next={request.path}")
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    setting_up = device is None
    if device is None:
        device = TOTPDevice.objects.filter(user=user, confirmed=False).first() or TOTPDevice.objects.create(
            user=user, name=DEVICE_NAME, confirmed=False
        )
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"].strip()):
            if setting_up:
                device.confirmed = True
                device.save(update_fields=["confirmed"])
            otp_login(request, device)
            return HttpResponseRedirect(_next(request))
        form.add_error("code", _("That code is not right or has expired: enter the code the app shows now"))
    context = {
        "form": form,
        "setting_up": setting_up,
        "secret": b32encode(device.bin_key).decode() if setting_up else "",
        "config_url": device.config_url if setting_up else "",
        "next": request.GET.get("next", ""),
    }
    return render(request, "registration/two_factor.html", context)


def _next(request: HttpRequest) -> str:
    target = request.GET.get("next") or request.POST.get("next") or settings.LOGIN_REDIRECT_URL
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return str(target)
    return str(settings.LOGIN_REDIRECT_URL)
