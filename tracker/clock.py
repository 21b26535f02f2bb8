"""Time helpers every app shares. Pure: no Django, no database.

Cobalt stores instants in UTC and thinks in calendar dates where the patient lives: a dose given at
23:30 UTC on a summer evening was given "tomorrow" in Europe/Berlin. Every conversion from an instant to
a patient's date goes through `local_date`, so the three places that used to do it cannot disagree.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

# A recorded time (a dose given, a sample collected or reported) may be this far ahead of the server
# clock: the nurse's device or the lab's clock runs a little fast. Anything later is "in the future"
# and refused. Not a clinical number.
CLOCK_SKEW = timedelta(minutes=5)

# The years a recorded time may fall in: nothing Cobalt records happens outside them, and a time at the
# edge of the calendar (0001-01-01, 9999-12-31) cannot be moved into a patient's zone or a day added to it.
EARLIEST_YEAR = 1900
LATEST_YEAR = 2199
# Every UTC offset in use lies between UTC-12 (Baker Island) and UTC+14 (Line Islands); +23:59 is a typo.
EARLIEST_OFFSET = timedelta(hours=-12)
LATEST_OFFSET = timedelta(hours=14)


def plausible_offset(value: datetime) -> bool:
    """False for an aware time whose UTC offset no place on Earth uses."""
    offset = value.utcoffset()
    return offset is None or EARLIEST_OFFSET <= offset <= LATEST_OFFSET


class HasTimezone(Protocol):
    timezone: str


class NaiveTimeError(ValueError):
    """A time without a time zone: which day it falls on is ambiguous."""


def now() -> datetime:
    return datetime.now(UTC)


def local_date(instant: datetime, tz: str) -> date:
    """The calendar date of `instant` in zone `tz`."""
    if instant.tzinfo is None:
        raise NaiveTimeError("a time without a time zone is ambiguous")
    return instant.astimezone(zoneinfo.ZoneInfo(tz)).date()


def patient_today(patient: HasTimezone, at: datetime | None = None) -> date:
    """Today's date (or `at`'s) where the patient lives."""
    return local_date(at or now(), patient.timezone)


def end_of_day(day: date, tz: str) -> datetime:
    """The first instant after `day` in zone `tz` (midnight that starts the next day, DST-safe)."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zoneinfo.ZoneInfo(tz))
