"""The alerts and reminders section of the patient page, and acknowledging an alert from it in place.

Acknowledging calls `alert_acknowledge_by_staff`, as POST /api/alerts/{id}/acknowledge/ does: any member of
staff of the patient's clinic, a note required for a critical alert. With htmx the alert's card is
swapped for its new state; without JavaScript the form posts and the page comes back.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as gettext_now
from django.utils.translation import gettext_lazy as _

from notifications.alerts import alert_acknowledge_by_staff
from notifications.models import SEVERITY_RANK, Alert, AlertStatus, Delivery, Purpose
from notifications.serializers import mask_recipient
from patients.models import Patient
from tracker.errors import ServiceError
from tracker.forms import NHSUKForm
from tracker.pages import PageSection, staff_page
from tracker.permissions import staff_clinic_ids

PAST_ALERTS_SHOWN = 20
REMINDERS_SHOWN = 20
PATIENT_PURPOSES = (Purpose.DOSE_REMINDER, Purpose.RECHECK_REMINDER, Purpose.DOSE_OVERDUE)


class AcknowledgeForm(NHSUKForm):
    note = forms.CharField(
        label=_("What was done"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Required for a critical alert."),
    )

    def __init__(self, *args: Any, alert: Alert, **kwargs: Any) -> None:
        # Unique ids: the patient page holds one form per alert.
        super().__init__(*args, auto_id=f"alert-{alert.pk}-%s", **kwargs)


def patient_alerts(patient: Patient) -> tuple[list[Any], list[Alert]]:
    """(open and acknowledged alerts, most severe first, then the latest opened; the PAST_ALERTS_SHOWN latest
    resolved ones), in one query: the unresolved alerts (one per kind at most) and the latest resolved, picked
    by a subquery, come together and are ordered here. Who acknowledged each is not read (the patient page reads
    the users its rows name once: `patient_sections`)."""
    resolved = Q(status=AlertStatus.RESOLVED)
    latest_resolved = (
        Alert.objects.filter(resolved, patient=patient).order_by("-resolved_at", "-id").values("pk")[:PAST_ALERTS_SHOWN]
    )
    rows = list(Alert.objects.filter(~resolved | Q(pk__in=latest_resolved), patient=patient))
    current = sorted(
        (a for a in rows if a.status != AlertStatus.RESOLVED),
        key=lambda a: (SEVERITY_RANK[a.severity], a.opened_at, a.pk),
        reverse=True,
    )
    # As ORDER BY resolved_at DESC, id DESC: PostgreSQL puts a missing time first.
    past = sorted(
        (a for a in rows if a.status == AlertStatus.RESOLVED),
        key=lambda a: (a.resolved_at is None, a.resolved_at.timestamp() if a.resolved_at else 0, a.pk),
        reverse=True,
    )
    return current, past


class ReminderRow:
    """A reminder of the patient page's table: the delivery, and its recipient masked as in the delivery log,
    worked out when shown (after the page has read the inbox accounts its rows name)."""

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery

    @cached_property
    def recipient(self) -> str:
        return mask_recipient(self.delivery)


def patient_reminders(patient: Patient) -> list[ReminderRow]:
    """The reminders sent (or due) to the patient (the account of an inbox message: `patient_sections`)."""
    rows = Delivery.objects.filter(patient=patient, purpose__in=PATIENT_PURPOSES).order_by("-due_at", "-id")
    return [ReminderRow(d) for d in rows[:REMINDERS_SHOWN]]


def alert_card(alert: Alert, patient: Patient, form: AcknowledgeForm | None = None) -> dict[str, Any]:
    return {
        "alert": alert,
        "patient": patient,
        "form": form or AcknowledgeForm(alert=alert),
        "can_acknowledge": alert.status == AlertStatus.OPEN,
    }


def patient_sections(*, patient: Patient, request: HttpRequest, record: Any) -> list[PageSection]:
    """The alerts and reminders sections; who acknowledged each alert and an inbox message's account come with
    the page's one read of the users its rows name (patients.pages.PatientRecord.name_users)."""
    current, past = patient_alerts(patient)
    reminders = patient_reminders(patient)
    record.name_users([*current, *past], "acknowledged_by")
    record.name_users([row.delivery for row in reminders], "user")
    return [
        PageSection(
            order=20,
            anchor="alerts",
            title=_("Alerts"),
            template="notifications/sections/alerts.html",
            context={"cards": [alert_card(a, patient) for a in current], "past": past},
        ),
        PageSection(
            order=60,
            anchor="reminders",
            title=_("Reminders sent to the patient"),
            template="notifications/sections/reminders.html",
            context={"reminders": reminders},
        ),
    ]


@staff_page
def alert_acknowledge(request: HttpRequest, patient_id: int, alert_id: int) -> HttpResponse:
    if request.method != "POST":
        return redirect(f"{reverse('patient', args=[patient_id])}#alerts")
    alert = (
        Alert.objects.filter(pk=alert_id, patient_id=patient_id, patient__clinic_id__in=staff_clinic_ids(request.user))
        .select_related("patient", "acknowledged_by")
        .first()
    )
    if alert is None:
        raise Http404(_("No such alert."))
    patient = alert.patient
    form = AcknowledgeForm(request.POST, alert=alert)
    if form.is_valid():
        try:
            alert = alert_acknowledge_by_staff(alert=alert, user=request.user, note=form.cleaned_data["note"])
            form = AcknowledgeForm(alert=alert)
        except ServiceError as exc:
            form.add_error("note" if exc.field == "note" else None, exc.message)
    if request.htmx:  # type: ignore[attr-defined]
        alert.refresh_from_db()
        return render(request, "notifications/sections/alert.html", alert_card(alert, patient, form))
    if form.errors:
        for error in [*form.errors.get("note", []), *form.non_field_errors()]:
            messages.error(request, str(error))
    else:
        messages.success(request, gettext_now("Alert acknowledged."))
    return redirect(f"{reverse('patient', args=[patient.pk])}#alert-{alert.pk}")
