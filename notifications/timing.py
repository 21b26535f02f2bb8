"""When messages may go out: the configured times of day and the patient's quiet hours.

Shared by the reminders (notifications/reminders.py), the staff digest (notifications/staff.py) and the
delivery worker's last check before it sends; it imports nothing of the project, so all of them can.
Local calendar dates come from tracker/clock.py.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings


def parse_time(value: Any) -> time:
    """A time of day from settings: "HH:MM", or a time."""
    if isinstance(value, time):
        return value
    hours, minutes = str(value).strip().split(":")[:2]
    return time(int(hours), int(minutes))


def in_quiet_hours(moment: time, quiet_start: time, quiet_end: time) -> bool:
    """Quiet hours may wrap midnight (21:00-08:00) or not (12:00-14:00); equal ends mean none."""
    if quiet_start == quiet_end:
        return False
    if quiet_start < quiet_end:
        return quiet_start <= moment < quiet_end
    return moment >= quiet_start or moment < quiet_end


@dataclass(frozen=True)
class Timing:
    local_time: time
    quiet_start: time
    quiet_end: time
    lookahead: timedelta
    stale: timedelta

    @classmethod
    def from_settings(cls) -> Timing:
        cobalt = settings.COBALT
        return cls(
            local_time=parse_time(cobalt["REMINDER_LOCAL_TIME"]),
            quiet_start=parse_time(cobalt["REMINDER_QUIET_START"]),
            quiet_end=parse_time(cobalt["REMINDER_QUIET_END"]),
            lookahead=timedelta(hours=int(cobalt["REMINDER_LOOKAHEAD_HOURS"])),
            stale=timedelta(hours=int(cobalt["REMINDER_STALE_HOURS"])),
        )

    def send_at(self, local_day: date, tz: str) -> datetime:
        """The UTC instant of `local_day` at the reminder time in zone `tz`. Computed in the zone and then
        converted, so 10:00 stays 10:00 local on both sides of a DST change (09:00 or 10:00 UTC in London).
        A configured time inside quiet hours moves to their end on the same local date, so a "day before"
        reminder still arrives the day before."""
        moment = self.local_time
        if in_quiet_hours(moment, self.quiet_start, self.quiet_end):
            moment = self.quiet_end
        return datetime.combine(local_day, moment, tzinfo=zoneinfo.ZoneInfo(tz)).astimezone(UTC)

    def in_window(self, send_at: datetime, at: datetime, tz: str) -> bool:
        """Write a reminder once it is due within the lookahead; never one more than `stale` late (the
        system was down: a reminder for yesterday's 10:00 is worse than none), and a late one only outside
        quiet hours, since a row already due is sent at once."""
        if not at - self.stale <= send_at <= at + self.lookahead:
            return False
        if send_at < at:
            now_local = at.astimezone(zoneinfo.ZoneInfo(tz)).time()
            return not in_quiet_hours(now_local, self.quiet_start, self.quiet_end)
        return True

    def quiet_until(self, now: datetime, tz: str) -> datetime | None:
        """The end of the quiet hours `now` falls in, in zone `tz` (in `now`'s zone); None outside them."""
        zone = zoneinfo.ZoneInfo(tz)
        local = now.astimezone(zone)
        if not in_quiet_hours(local.time(), self.quiet_start, self.quiet_end):
            return None
        end = datetime.combine(local.date(), self.quiet_end, tzinfo=zone)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.quiet_end, tzinfo=zone)
        return end.astimezone(now.tzinfo)
