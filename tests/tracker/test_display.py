"""tracker.display and the `|day` / `|moment` template filters: the same text as Django's `|date` filter with the
same format, from a cache that must not give one time zone's or language's text to another."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.template import engines
from django.utils import timezone, translation

from tracker.display import day, moment

WHEN = datetime(2027, 3, 4, 23, 30, tzinfo=UTC)  # 4 March in London, 5 March in Auckland


def render(text: str, **context: object) -> str:
    return engines["django"].from_string(text).render(context)


def filtered(value: object, fmt: str) -> str:
    """Django's own `|date:fmt` in a template (which first moves an aware datetime to the current time zone)."""
    return render(f'{{{{ value|date:"{fmt}" }}}}', value=value)


@pytest.mark.parametrize("value", [date(2027, 3, 4), date(2027, 12, 31), WHEN])
def test_day_is_the_date_filters_text(value: date) -> None:
    with translation.override("en-gb"), timezone.override("Europe/London"):
        assert day(value) == filtered(value, "j M Y") != ""


def test_a_moment_is_written_in_the_current_time_zone_even_once_cached() -> None:
    with translation.override("en-gb"):
        with timezone.override("Europe/London"):
            assert moment(WHEN) == filtered(WHEN, "j M Y H:i") == "4 Mar 2027 23:30"
            assert day(WHEN) == "4 Mar 2027"
        # The same instant, asked again in another zone: not the first zone's text from the cache.
        with timezone.override("Pacific/Auckland"):
            assert moment(WHEN) == filtered(WHEN, "j M Y H:i") == "5 Mar 2027 12:30"
            assert day(WHEN) == "5 Mar 2027"


def test_the_month_is_in_the_active_language() -> None:
    with timezone.override("UTC"):
        with translation.override("en-gb"):
            assert day(date(2027, 1, 4)) == "4 Jan 2027"
        with translation.override("es"):
            assert day(date(2027, 1, 4)) == filtered(date(2027, 1, 4), "j M Y") == "4 Ene 2027"


def test_the_filters_are_built_in_and_write_nothing_for_no_value() -> None:
    with translation.override("en-gb"), timezone.override("Europe/London"):
        assert render("{{ d|day }} / {{ t|moment }}", d=date(2027, 3, 4), t=WHEN) == "4 Mar 2027 / 4 Mar 2027 23:30"
        assert render("[{{ d|day }}][{{ t|moment }}]", d=None, t=None) == "[][]"
