"""The alerts page `/alerts/`: the open alerts of the user's clinics, most severe first, filtered by kind,
severity, status and clinic; each acknowledged in place (htmx swaps the alert's card) or, without
JavaScript, by an ordinary form post and redirect.

Reads come from notifications/selectors.py; the acknowledgement is the API's service
(notifications/alerts.py `alert_acknowledge_by_staff`: a note is required for a critical alert).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from notifications.alerts import alert_acknowledge_by_staff
from notifications.forms import AcknowledgeForm, AlertFilterForm
from notifications.models import Alert, AlertStatus, Severity
from notifications.selectors import clinic_alerts
from tracker.errors import ServiceError
from tracker.middleware import StaffClinic
from tracker.pages import staff_clinics

PER_PAGE = 50


def _clinics(request: HttpRequest) -> list[StaffClinic]:
    clinics = staff_clinics(request)
    if not clinics:
        raise PermissionDenied(_("Only clinic staff may see alerts."))
    return clinics


def _acknowledge_form(alert: Alert, data: Any = None) -> AcknowledgeForm:
    return AcknowledgeForm(data, prefix=f"alert-{alert.pk}", critical=alert.severity == Severity.CRITICAL)


def _list_context(request: HttpRequest, clinics: list[StaffClinic], bound: AcknowledgeForm | None = None,
                  bound_alert: Alert | None = None) -> dict[str, Any]:
    form = AlertFilterForm(request.GET or None, clinics=clinics)
    chosen: dict[str, Any] = form.cleaned_data if form.is_valid() else {}
    clinic_ids = [c.id for c in clinics]
    if chosen.get("clinic") in clinic_ids:
        clinic_ids = [chosen["clinic"]]
    alerts = clinic_alerts(
        clinic_ids=clinic_ids,
        statuses=[chosen.get("status") or AlertStatus.OPEN],
        kinds=[chosen["kind"]] if chosen.get("kind") else [],
        severities=[chosen["severity"]] if chosen.get("severity") else [],
    )
    page = Paginator(alerts, PER_PAGE).get_page(request.GET.get("page"))
    rows = [
        (alert, bound if bound_alert is not None and alert.pk == bound_alert.pk else _acknowledge_form(alert))
        for alert in page.object_list
    ]
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "filter_form": form,
        "rows": rows,
        "page": page,
        "query": query.urlencode(),
        "here": request.get_full_path(),
        "several_clinics": len(clinics) > 1,
        "status": chosen.get("status") or AlertStatus.OPEN,
        # A form posted without JavaScript that was refused: its errors lead the page.
        "error_form": bound,
        "error_alert": bound_alert,
    }


@login_required
@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    return render(request, "notifications/alerts.html", _list_context(request, _clinics(request)))


@login_required
@require_POST
def alert_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    """Acknowledge one alert of the user's clinics (another clinic's is a 404, as in the API)."""
    clinics = _clinics(request)
    alert = get_object_or_404(
        Alert.objects.select_related("patient", "patient__clinic"),
        pk=pk,
        patient__clinic_id__in=[c.id for c in clinics],
    )
    form = _acknowledge_form(alert, request.POST)
    if form.is_valid():
        try:
            alert = alert_acknowledge_by_staff(alert=alert, user=request.user, note=form.cleaned_data["note"])
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
    if form.errors:
        if request.htmx:  # type: ignore[attr-defined]
            # htmx swaps only 2xx answers: the card comes back with its errors in place.
            card = {**_card_context(request, clinics), "alert": alert, "form": form}
            return render(request, "notifications/_alert.html", card)
        return render(
            request, "notifications/alerts.html", _list_context(request, clinics, form, alert), status=400
        )
    if request.htmx:  # type: ignore[attr-defined]
        alert = Alert.objects.select_related("patient", "patient__clinic", "acknowledged_by").get(pk=alert.pk)
        return render(
            request, "notifications/_alert.html", {**_card_context(request, clinics), "alert": alert, "done": True}
        )
    messages.success(
        request,
        _("Alert acknowledged: %(kind)s for %(patient)s.")
        % {"kind": alert.get_kind_display(), "patient": f"{alert.patient.family_name}, {alert.patient.given_name}"},
    )
    return redirect(_next(request))


def _card_context(request: HttpRequest, clinics: list[StaffClinic]) -> dict[str, Any]:
    """What an alert's card needs besides the alert, when htmx asks for the card alone."""
    return {"query": request.GET.urlencode(), "here": _next(request), "several_clinics": len(clinics) > 1}


def _next(request: HttpRequest) -> str:
    """Back to the list as it was filtered (only a path on this site)."""
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse("alerts")
