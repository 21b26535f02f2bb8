"""Forms of the worklist and the calendar (regimens/worklist_pages.py). They parse and check input only; the pages
hand the cleaned data to the same services the API calls (regimens/services/doses.py)."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from regimens.models import Route
from tracker.api import PlausibleDateField
from tracker.errors import SafetyWarning
from tracker.forms import DateInput, DateTimeInput, NHSUKForm

# Coded injection sites (recorded as the label's code; not clinical numbers).
SITES = [
    ("", _("Not recorded")),
    ("left deltoid", _("Left deltoid (upper arm)")),
    ("right deltoid", _("Right deltoid (upper arm)")),
    ("left thigh", _("Left thigh (vastus lateralis)")),
    ("right thigh", _("Right thigh (vastus lateralis)")),
    ("left gluteal", _("Left gluteal")),
    ("right gluteal", _("Right gluteal")),
    ("abdomen", _("Abdomen")),
]

# Coded reasons a dose was not given; the service stores the label (and the note after it).
NOT_GIVEN_REASONS = [
    ("did_not_attend", _("Did not attend")),
    ("refused", _("Patient declined")),
    ("held_clinical", _("Held on clinical advice")),
    ("unwell", _("Patient unwell")),
    ("no_stock", _("Product not available")),
    ("other", _("Other (say why in the note)")),
]


class DoseGivenForm(NHSUKForm):
    administered_at = forms.DateTimeField(
        label=_("Given at"),
        widget=DateTimeInput(),
        help_text=_("Date and time in the clinic's time zone."),
    )
    lot_number = forms.CharField(
        label=_("Batch (lot) number"), max_length=60, required=False, widget=forms.TextInput(attrs={"autofocus": True})
    )
    expiry_date = forms.DateField(label=_("Expiry date"), required=False, widget=DateInput())
    site = forms.ChoiceField(label=_("Injection site"), choices=SITES, required=False)
    route = forms.ChoiceField(label=_("Route"), choices=Route.choices)
    acknowledge = forms.MultipleChoiceField(
        label=_("Warnings seen before giving this dose"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Tick each warning to confirm you have read it and will give the dose anyway."),
    )
    override_reason = forms.CharField(
        label=_("Reason to override a hard stop"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("A hard stop is given only with a reason, kept with the alert it opens."),
    )

    def __init__(self, *args: Any, warnings: list[SafetyWarning] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.warnings = warnings or []
        if self.warnings:
            acknowledge = self.fields["acknowledge"]
            assert isinstance(acknowledge, forms.MultipleChoiceField)
            acknowledge.choices = [(w.code, f"{w.rule}: {w.message}") for w in self.warnings]
        else:
            del self.fields["acknowledge"]
        if not any(w.hard_stop for w in self.warnings):
            del self.fields["override_reason"]


class DoseNotGivenForm(NHSUKForm):
    reason = forms.ChoiceField(label=_("Why was it not given?"), choices=NOT_GIVEN_REASONS, widget=forms.RadioSelect)
    note = forms.CharField(label=_("Note"), required=False, max_length=150)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("reason") == "other" and not (data.get("note") or "").strip():
            self.add_error("note", _("Say why the dose was not given."))
        return data

    def reason_text(self) -> str:
        """What the service stores: the coded reason's label, then the note."""
        label = str(dict(NOT_GIVEN_REASONS)[self.cleaned_data["reason"]])
        note = (self.cleaned_data.get("note") or "").strip()
        return f"{label}: {note}" if note else label


class CalendarForm(forms.Form):
    """The calendar's query string: ?view=week|month|day&date=YYYY-MM-DD&clinic=ID&home=1."""

    view = forms.ChoiceField(choices=[("week", "week"), ("month", "month"), ("day", "day")], required=False)
    date = PlausibleDateField(required=False, input_formats=["%Y-%m-%d"])
    clinic = forms.IntegerField(required=False, min_value=1)
    home = forms.BooleanField(required=False)

    # The API's range filters, as the dashboard links them (monitoring/pages.py list_link): the range's first
    # day in the view that holds it (a day, a week or a month) when no `date` is given.
    due_from = PlausibleDateField(required=False, input_formats=["%Y-%m-%d"])
    due_to = PlausibleDateField(required=False, input_formats=["%Y-%m-%d"])

    def cleaned(self, today: datetime.date) -> tuple[str, datetime.date, int | None, bool]:
        data = self.cleaned_data
        view, on = data.get("view"), data.get("date")
        first, last = data.get("due_from"), data.get("due_to")
        if on is None and first is not None:
            on = first
            if not view:
                days = (last - first).days if last is not None else 31
                view = "day" if days == 0 else "week" if days < 7 else "month"
        return view or "week", on or today, data.get("clinic"), bool(data.get("home"))


class AppointmentTimeForm(forms.Form):
    """A planned clinic dose's appointment time from the calendar's day view: clinic-local HH:MM, empty for the
    clinic's default (the start of its session). The service checks it is within the session."""

    appointment_time = forms.TimeField(label=_("Appointment time"), required=False, input_formats=["%H:%M", "%H:%M:%S"])


class WorklistForm(forms.Form):
    """The worklist's filters: ?clinic=ID&route=IM&home=1&overdue=true (only the doses overdue, as the
    dashboard's "Overdue doses" figure links it)."""

    clinic = forms.IntegerField(required=False, min_value=1)
    route = forms.ChoiceField(choices=[("", ""), *Route.choices], required=False)
    home = forms.BooleanField(required=False)
    overdue = forms.BooleanField(required=False)
