"""The page django-axes answers when a username is locked out of the web sign-in or the admin's (settings
AXES_LOCKOUT_CALLABLE): the NHS.UK page with the cool-off in minutes, status 429 and Retry-After."""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def locked_out(request: HttpRequest, response: Any = None, credentials: Any = None) -> HttpResponse:
    seconds = math.ceil(settings.AXES_COOLOFF_TIME.total_seconds())
    page = render(
        request,
        "registration/locked_out.html",
        {"cooloff_minutes": math.ceil(seconds / 60)},
        status=429,
    )
    page["Retry-After"] = str(seconds)
    return page
