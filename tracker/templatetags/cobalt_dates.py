"""`{{ value|day }}` ("4 Mar 2027") and `{{ value|moment }}` ("4 Mar 2027 14:05", in the current time zone): the
same text as `|date:"j M Y"` and `|date:"j M Y H:i"`, from tracker.display's cache (a tenth of the filter's cost,
which counts on pages with a row per dose or result). Built in to every template (settings TEMPLATES "builtins")."""

from __future__ import annotations

from datetime import date, datetime

from django import template

from tracker import display

register = template.Library()


@register.filter(expects_localtime=False, is_safe=False)
def day(value: date | datetime | None) -> str:
    return display.day(value) if isinstance(value, date) else ""


@register.filter(expects_localtime=False, is_safe=False)
def moment(value: datetime | None) -> str:
    return display.moment(value) if isinstance(value, datetime) else ""
