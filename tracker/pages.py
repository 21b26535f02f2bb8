"""The web pages' shell: sign-in, sign-out, password reset, and the navigation every page shows.

Each app's own pages live in its `pages` module (patients/pages.py, regimens/pages.py, ...), listed in
its `page_urls.py`; this module holds only what every page shares. Views here and there parse input
with forms (tracker/forms.py) and call the same services and selectors as the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _
from django_htmx.http import HttpResponseClientRefresh

from tracker.forms import NHSUKFormMixin
from tracker.middleware import StaffClinic
from tracker.permissions import PRESCRIBERS


def staff_clinics(request: HttpRequest) -> list[StaffClinic]:
    return list(getattr(request, "cobalt_clinics", []))


def roles(request: HttpRequest) -> set[str]:
    return {clinic.role for clinic in staff_clinics(request)}


def clinic_role(request: HttpRequest, clinic_id: int) -> str | None:
    """The user's role in the clinic `clinic_id` (None when they do not work there); no query."""
    return next((clinic.role for clinic in staff_clinics(request) if clinic.id == clinic_id), None)


def requested_clinic_id(request: HttpRequest) -> int | None:
    """The `clinic` a clinic admin's page was asked for (query string or form), None when absent or not a
    whole number (plain ASCII digits: "²".isdigit() is True but int() refuses it)."""
    raw = request.GET.get("clinic") or request.POST.get("clinic")
    return int(raw) if raw and raw.isascii() and raw.isdigit() else None


def prescriber_here(request: HttpRequest, clinic_id: int) -> bool:
    """Whether the user may do a prescriber's action (tracker/permissions.py PRESCRIBERS) in this clinic."""
    return clinic_role(request, clinic_id) in PRESCRIBERS


@dataclass(frozen=True)
class PageSection:
    """A part of a page that another app contributes (tracker/events.py `collect`): the patient page
    (patients/pages.py) asks "patient.page_sections" and shows what regimens, notifications and monitoring
    return, ordered by `order`, each under a heading with the id `anchor`, rendered from `template` (in the
    owning app) with `context`. The lab entry page (patients/labs/pages.py) asks "patient.lab_entry_sections"
    and shows them above its form, in `order`, without a heading of their own."""

    order: int
    anchor: str
    title: Any
    template: str
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CardEntry:
    """One line of a patient's printed injection card ("patient.card_entries"): an appointment on `on`
    (`kind` "injection" or "blood_test"), or a blood test to have between `on` and `until`."""

    on: date
    kind: str
    until: date | None = None


# (url name, label, roles that see it). A link shows once its page exists (the name resolves).
NAVIGATION: list[tuple[str, Any, set[str]]] = [
    ("worklist", _("Worklist"), {"nurse", "clinician", "admin"}),
    ("calendar", _("Calendar"), {"nurse", "clinician", "admin"}),
    ("patient-search", _("Patients"), {"nurse", "clinician", "admin"}),
    ("alerts", _("Alerts"), {"nurse", "clinician", "admin"}),
    ("lab-import", _("Import results"), {"nurse", "clinician", "admin"}),
    ("dashboard", _("Dashboard"), {"admin"}),
    ("staff", _("Staff"), {"admin"}),
    ("staff-protocols", _("Protocols"), {"admin"}),
    ("audit", _("Audit log"), {"admin"}),
]


def navigation(request: HttpRequest) -> dict[str, Any]:
    """Template context of every page: the header's links for the user's roles, and their clinics. Worked out
    once per request: a page rendering parts with the request's context (the patient page's sections) asks again."""
    found: dict[str, Any] | None = getattr(request, "_cobalt_navigation", None)
    if found is None:
        found = request._cobalt_navigation = _navigation(request)  # type: ignore[attr-defined]
    return found


def _navigation(request: HttpRequest) -> dict[str, Any]:
    clinics = staff_clinics(request)
    mine = roles(request)
    items = []
    for name, label, allowed in NAVIGATION:
        if not mine & allowed:
            continue
        try:
            href = reverse(name)
        except NoReverseMatch:
            continue
        current = request.path == href if href == "/" else request.path.startswith(href)
        items.append({"href": href, "label": label, "current": current})
    # One current link: the longest that matches (/staff/protocols/ is Protocols, not also Staff).
    longest = max((len(item["href"]) for item in items if item["current"]), default=0)
    for item in items:
        item["current"] = item["current"] and len(item["href"]) == longest
    return {
        "nav_items": items,
        "nav_clinics": [clinic.name for clinic in clinics],
        "clinic_timezone": clinics[0].timezone if clinics else None,
    }


def site_url(request: HttpRequest | None = None) -> str:
    """The address emails link to: COBALT SITE_URL, else the address this request came to."""
    configured = str(settings.COBALT.get("SITE_URL") or "").rstrip("/")
    if configured or request is None:
        return configured
    return f"{request.scheme}://{request.get_host()}"


class SignInForm(NHSUKFormMixin, AuthenticationForm):
    pass


class ResetForm(NHSUKFormMixin, PasswordResetForm):
    pass


class NewPasswordForm(NHSUKFormMixin, SetPasswordForm):
    pass


class SignInView(auth_views.LoginView):
    """Every staff role signs in here and lands on the worklist (LOGIN_REDIRECT_URL)."""

    form_class = SignInForm
    redirect_authenticated_user = True


class ResetView(auth_views.PasswordResetView):
    form_class = ResetForm

    def form_valid(self, form: Any) -> Any:
        self.extra_email_context = {"site_url": site_url(self.request)}
        return super().form_valid(form)


class ResetConfirmView(auth_views.PasswordResetConfirmView):
    form_class = NewPasswordForm


sign_out = auth_views.LogoutView.as_view()


def staff_page(view: Any) -> Any:
    """A page for clinic staff: sign-in first (LOGIN_URL, back here after), then 403 for a signed-in
    user who works in no clinic."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not staff_clinics(request):
            raise PermissionDenied(_("Only clinic staff may open this page."))
        return view(request, *args, **kwargs)

    return login_required(wrapped)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a form posted with a token that is no longer good (the user signed in again in another
    tab, which gives a new token, or the session ended). An htmx request reloads the page whole (`HX-Refresh`: a
    fresh form, or the sign-in when the session ended) and says why; a page answers 403 with what to do. Nothing
    was written. Django's `reason` is for its own debug page, not shown to users."""
    if request.headers.get("HX-Request") == "true":
        messages.warning(
            request, _("This page was out of date, so it was loaded again. Nothing was recorded: please do it again.")
        )
        return HttpResponseClientRefresh()
    return render(request, "403_csrf.html", status=403)
