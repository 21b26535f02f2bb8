"""Dates and times as the staff pages write them, made in Python for rows that a page shows many of.

The template filter `{{ value|date:"j M Y" }}` costs about 25 microseconds a call (it looks up the active
language, its month names and the format's parts each time), and a table row names several dates: the patient
page's dose and recheck tables spent a quarter of their time there (docs/scaling.md, "The patient page's
templates"). These give the same text as that filter, from a cache keyed by the value, the format and the active
language, so a date the page shows again costs a dictionary lookup.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import get_language

DAY = "j M Y"
DAY_MONTH = "j M"
MOMENT = "j M Y H:i"


@lru_cache(maxsize=4096)
def _formatted(value: date, fmt: str, language: str | None) -> str:
    # `language` is only the cache's key: date_format reads the active language, which is the same one.
    return str(date_format(value, fmt))


def formatted(value: date | datetime | None, fmt: str) -> str:
    """`value` written as the template filter `date:fmt` writes it, an aware datetime in the current time zone
    (`fmt`: one of the formats above, which write no time zone); "" for None."""
    if value is None:
        return ""
    if isinstance(value, datetime) and timezone.is_aware(value):
        # The wall time in the current zone, without its zone: aware datetimes that are the same instant compare
        # equal, so one would find another zone's text in the cache. (No format here writes the zone.)
        value = timezone.localtime(value).replace(tzinfo=None)
    return _formatted(value, fmt, get_language())


def day(value: date | datetime | None) -> str:
    """ "4 Mar 2027" (the filter `date:"j M Y"`)."""
    return formatted(value, DAY)


def moment(value: datetime | None) -> str:
    """ "4 Mar 2027 14:05" in the current time zone (the filter `date:"j M Y H:i"`)."""
    return formatted(value, MOMENT)
