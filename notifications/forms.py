"""Forms of the notifications app's web pages (tracker/forms.py renders them in the NHS.UK markup)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from notifications.models import AlertKind, AlertStatus, Severity
from tracker.forms import NHSUKForm
from tracker.middleware import StaffClinic

# The same limit as the API's acknowledge body (notifications/serializers.py AlertAcknowledgeSerializer).
NOTE_MAX_LENGTH = 2000


class AlertFilterForm(NHSUKForm):
    """The alerts page's filters (a GET form): every field is optional; empty means all."""

    clinic = forms.TypedChoiceField(label=_("Clinic"), required=False, coerce=int, empty_value=None)
    kind = forms.ChoiceField(label=_("Kind"), required=False, choices=[("", _("All kinds")), *AlertKind.choices])
    severity = forms.ChoiceField(
        label=_("Severity"),
        required=False,
        # Most severe first, as the list is ordered.
        choices=[("", _("All severities")), *reversed(Severity.choices)],
    )
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        help_text=_("Acknowledged alerts stay here until they resolve."),
        choices=[
            (AlertStatus.OPEN, _("Open")),
            (AlertStatus.ACKNOWLEDGED, _("Acknowledged")),
        ],
    )

    def __init__(self, *args: Any, clinics: list[StaffClinic], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clinic"].choices = [("", _("All my clinics")), *((c.id, c.name) for c in clinics)]  # type: ignore[attr-defined]
        if len(clinics) < 2:
            self.fields["clinic"].widget = forms.HiddenInput()


class AcknowledgeForm(NHSUKForm):
    note = forms.CharField(
        label=_("What was done"),
        required=False,
        max_length=NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, critical: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if critical:
            # The service refuses an empty note on a critical alert (RULES §3.6); the hint says so first.
            self.fields["note"].help_text = _("Required for a critical alert.")
        else:
            self.fields["note"].label = _("What was done (optional)")
