"""The project's own middleware: NUL refused in paths and query strings, no-store caching, an htmx request sent to
sign in again loading the sign-in page whole, the clinic's time zone on pages, and the pages' after-commit work
done before they answer.

PostgreSQL text cannot hold a NUL byte, so a lookup such as `?analyte=%00` or `/api/protocols/%00/`
would end in a database error (500). DRF already refuses NUL in body fields; RefuseNulMiddleware covers the rest.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django_htmx.http import HttpResponseClientRedirect

from tracker import events

NUL = "\x00"


class RefuseNulMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if NUL in request.path:
            return JsonResponse({"detail": "The path may not contain a NUL character."}, status=400)
        for name, values in request.GET.lists():
            if NUL in name or any(NUL in value for value in values):
                field = name.replace(NUL, "") or "query"
                return JsonResponse({field: ["may not contain a NUL character."]}, status=400)
        return self.get_response(request)


def current_page(request: HttpRequest) -> str:
    """The page an htmx request was made from (its `HX-Current-URL`, this site's path and query only), else the
    address asked for."""
    current = urlsplit(request.headers.get("HX-Current-URL", ""))
    if current.path.startswith("/") and current.netloc in ("", request.get_host()):
        return current.path + (f"?{current.query}" if current.query else "")
    return request.get_full_path()


class HtmxSignInMiddleware:
    """An htmx request (a dose row's "Given", an alert's "Acknowledge") answered by a redirect to the sign-in or its
    second step (the session ended, or the second factor is owed) would have the whole sign-in page swapped into the
    row. It answers `HX-Redirect` instead: the browser loads the sign-in page whole, and comes back to the page the
    request was made from (`next`), not to the part of it. Above the middleware that redirect there
    (SecondFactorMiddleware) and below SessionMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.headers.get("HX-Request") != "true" or response.status_code not in (301, 302, 303, 307, 308):
            return response
        target = urlsplit(response.get("Location", "")).path
        if target not in (settings.LOGIN_URL, reverse("two-factor")):
            return response
        return HttpResponseClientRedirect(f"{target}?{urlencode({'next': current_page(request)})}")


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every response Django itself builds (pages, the API, the admin, a patient's
    calendar feed): they carry patient data, which must not stay in a shared clinic computer's browser cache or
    a proxy's. Static files (WhiteNoise, above this middleware) keep their long cache lifetimes."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response["Cache-Control"] = "no-store"
        response.headers.pop("Expires", None)
        return response


class AtOnceMiddleware:
    """A web page's request runs inside `events.at_once()`: the monitoring rules a write triggers run before the
    page answers, so the page that stored a result can say which alerts it opened and the next page shows them.
    The API (`/api/`) is left alone: its writes hand the rules to a Celery worker (COBALT_EVALUATE_IN_WORKER),
    so an integrator's feed of results is answered at the speed of the write."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            return self.get_response(request)
        with events.at_once():
            return self.get_response(request)


@dataclass(frozen=True)
class StaffClinic:
    """A clinic the signed-in user works in, with their role there."""

    id: int
    name: str
    timezone: str
    role: str


class ClinicTimezoneMiddleware:
    """For a signed-in member of staff: their clinics (with their role in each) on
    `request.cobalt_clinics`, and the first clinic's time zone active, so that pages show times as
    the clinic's clock reads them. One query per page (staff_clinic_ids then reads no other); the API is
    left alone (DRF serializes times with their offset, and authenticates tokens only inside the view)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        clinics: list[StaffClinic] = []
        if user is not None and user.is_authenticated and not request.path.startswith("/api/"):
            # user.memberships: patients.ClinicMembership (the kernel does not import the app).
            rows = user.memberships.order_by("clinic__name").values_list(
                "clinic_id", "clinic__name", "clinic__timezone", "role"
            )
            clinics = [StaffClinic(*row) for row in rows]
            # The same clinics answer staff_clinic_ids (tracker/permissions.py) for the rest of the request.
            user._cobalt_clinic_ids = [clinic.id for clinic in clinics]
        request.cobalt_clinics = clinics  # type: ignore[attr-defined]
        zone = clinics[0].timezone if clinics else None
        superuser = user is not None and getattr(user, "is_superuser", False)
        if zone is None and superuser and not request.path.startswith("/api/"):
            zone = shared_clinic_zone(user)
        if zone:
            with timezone.override(zoneinfo.ZoneInfo(zone)):
                return self.get_response(request)
        return self.get_response(request)


def shared_clinic_zone(user: Any) -> str | None:
    """The time zone every clinic shares, for a superuser who works in none (the admin then shows times on
    the clinics' clock); None when clinics are in different zones (times stay in UTC, with their offset)."""
    clinic_model = user.memberships.model._meta.get_field("clinic").related_model  # patients.Clinic
    zones = list(clinic_model.objects.values_list("timezone", flat=True).distinct().order_by()[:2])
    return zones[0] if len(zones) == 1 else None
