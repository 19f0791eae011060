"""Durations and daily time windows, parsed from the config's strings once, at load.

A window such as ``working_hours: 09:00-23:00`` or ``quiet_hours: 22:00-08:00`` becomes a
`TimeWindow` when the config is validated; every rule that asks "is it working hours?" or "when
do the quiet hours end?" asks that object, so there is one implementation of the window logic
(wrapping midnight, an empty window, DST gaps) and nothing is re-parsed per message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic_core import core_schema

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_duration(value: object) -> timedelta:
    """``30m``, ``2m30s``, ``1h``, or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value).strip())
    if not match or not any(match.groups()):
        raise ValueError(f"{value!r} is not a duration like 30m, 2m30s, 1h or 90s")
    h, m, s = (int(g or 0) for g in match.groups())
    return timedelta(hours=h, minutes=m, seconds=s)


def positive_duration(value: object) -> timedelta:
    """`parse_duration`, refusing zero and negative lengths (``-5`` would fire at once)."""
    duration = parse_duration(value)
    if duration <= timedelta(0):
        raise ValueError(f"{value!r} must be a positive duration like 30m, 2m30s, 1h or 90s")
    return duration


def parse_clock(value: str) -> time:
    """``"09:00"`` → 09:00 (a time of day such as ``reports.push_at``)."""
    match = _CLOCK.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a time like 09:00")
    return time(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class TimeWindow:
    """``[start, end)`` in wall time of the shop's zone; it may wrap midnight (22:00-08:00).

    ``start == end`` is an empty window (``00:00-00:00``: no quiet hours at all). In the config
    it is written ``HH:MM-HH:MM`` and it prints back the same way.
    """

    start: time
    end: time

    @classmethod
    def parse(cls, value: object) -> TimeWindow:
        """``"22:00-08:00"`` (or a TimeWindow, or a (start, end) pair) → the window."""
        if isinstance(value, TimeWindow):
            return value
        if isinstance(value, tuple) and len(value) == 2:
            return cls(*value)
        match = _HOURS.match(str(value).strip()) if isinstance(value, str) else None
        if not match:
            raise ValueError(f"{value!r} is not a window like 09:00-23:00")
        a, b, c, d = (int(g) for g in match.groups())
        return cls(time(a, b), time(c, d))

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    @property
    def empty(self) -> bool:
        return self.start == self.end

    def contains(self, moment: time | datetime, tz: ZoneInfo | None = None) -> bool:
        """Is ``moment`` (a wall time, or an aware datetime read in ``tz``) inside the window?"""
        if isinstance(moment, datetime):
            if tz is None:
                raise ValueError("a datetime needs the shop's zone to be read as wall time")
            moment = _wall(moment, tz)
        wall = moment.replace(tzinfo=None)
        start, end = self.start, self.end
        if start == end:
            return False
        return start <= wall < end if start < end else wall >= start or wall < end

    def shift_out(self, at: datetime, tz: ZoneInfo) -> datetime:
        """``at`` unchanged when outside the window, else the window's end (an aware datetime in ``tz``).

        A job due in the quiet hours waits for the morning rather than being dropped.

        Raises:
            ValueError: ``at`` is naive.
        """
        local = _wall_datetime(at, tz)
        if not self.contains(local.time()):
            return at
        wall = local.time().replace(tzinfo=None)
        # wraps midnight: the evening part ends tomorrow, the early-morning part today
        wraps_into_tomorrow = self.start > self.end and wall >= self.start
        end_day = local.date() + timedelta(days=1) if wraps_into_tomorrow else local.date()
        # Through UTC and back, so an end falling in a DST gap lands on a real instant.
        return datetime.combine(end_day, self.end, tzinfo=tz).astimezone(UTC).astimezone(tz)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.parse,
            serialization=core_schema.plain_serializer_function_ser_schema(str),
            json_schema_input_schema=core_schema.str_schema(pattern=_HOURS.pattern),
        )


def _wall_datetime(at: datetime, tz: ZoneInfo) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"a time window needs an aware datetime, got {at!r}")
    return at.astimezone(tz)


def _wall(at: datetime, tz: ZoneInfo) -> time:
    return _wall_datetime(at, tz).time()


def parse_hours(value: object) -> tuple[time, time]:
    """``"22:00-08:00"`` → (22:00, 08:00); a window may wrap midnight. Prefer `TimeWindow`."""
    window = TimeWindow.parse(value)
    return window.start, window.end


def in_window(moment: time, window: TimeWindow | tuple[time, time]) -> bool:
    """Is the wall time ``moment`` inside ``window``? (`TimeWindow.contains`.)"""
    return TimeWindow.parse(window).contains(moment)
