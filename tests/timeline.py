"""A treatment timeline for tests: T0 (the first dose) and days counted from it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

T0 = date(2027, 1, 4)


def day(n: int) -> date:
    return T0 + timedelta(days=n)


def noon(on: date) -> datetime:
    return datetime(on.year, on.month, on.day, 12, tzinfo=UTC)
