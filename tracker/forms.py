"""Forms of the web pages in the NHS.UK design system's markup.

Every page form derives from `NHSUKForm` (or mixes in `NHSUKFormMixin` with a ModelForm): its widgets
get the design system's classes, and `{{ form }}` renders each field as an NHS.UK form group (label,
hint, error message, input) through `NHSUKRenderer` (settings.FORM_RENDERER). Radios and checkboxes
render as the design system's radios and checkboxes. The error summary at the top of a page is
`tracker/components/error_summary.html`.

Forms only parse and check input; the pages hand the cleaned data to the same services the API calls.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.forms.renderers import DjangoTemplates

WIDGET_CLASSES: list[tuple[type[forms.Widget], str]] = [
    # Order matters: subclasses before their bases.
    (forms.RadioSelect, "nhsuk-radios__input"),
    (forms.CheckboxSelectMultiple, "nhsuk-checkboxes__input"),
    (forms.CheckboxInput, "nhsuk-checkboxes__input"),
    (forms.Select, "nhsuk-select"),
    (forms.Textarea, "nhsuk-textarea"),
    (forms.ClearableFileInput, "nhsuk-file-upload"),
    (forms.FileInput, "nhsuk-file-upload"),
    (forms.widgets.Input, "nhsuk-input"),
]


class NHSUKRenderer(DjangoTemplates):
    form_template_name = "tracker/forms/form.html"
    field_template_name = "tracker/forms/field.html"


def style_widget(widget: forms.Widget, width: str | None = None) -> None:
    """Give `widget` the design system's class (and an input width class such as 'nhsuk-input--width-10')."""
    for kind, css in WIDGET_CLASSES:
        if isinstance(widget, kind):
            classes = [c for c in (widget.attrs.get("class", ""), css, width) if c]
            widget.attrs["class"] = " ".join(dict.fromkeys(" ".join(classes).split()))
            return


class NHSUKFormMixin:
    """Design-system classes on every widget; a field's `widget.attrs['data-width']` picks a width."""

    fields: dict[str, forms.Field]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        for field in self.fields.values():
            width = field.widget.attrs.pop("data-width", None)
            style_widget(field.widget, f"nhsuk-input--width-{width}" if width else None)


class NHSUKForm(NHSUKFormMixin, forms.Form):
    pass


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class DateTimeInput(forms.DateTimeInput):
    """A local date and time (the clinic's zone, which the middleware activates)."""

    input_type = "datetime-local"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%dT%H:%M")
