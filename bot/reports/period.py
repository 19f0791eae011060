"""The period a report covers: whole days in the shop's time zone.

A shop's "yesterday" is midnight to midnight on its own clock (Asia/Shanghai by default,
``flows.timezone``), not UTC: a message at 23:59 Beijing time belongs to that day even though
it is 15:59 UTC. Bounds are half-open, ``start <= at < end``, so a message exactly at midnight
belongs to the new day and is never counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.errors import UserError


class PeriodError(UserError, ValueError):
    """--since / --until are unusable; the message says why."""


@dataclass(frozen=True)
class Period:
    """Days ``first`` … ``last`` (inclusive) in ``tz``."""

    first: date
    last: date
    tz: ZoneInfo

    @property
    def start(self) -> datetime:
        """Midnight starting ``first``, shop time, as aware UTC."""
        return _midnight(self.first, self.tz)

    @property
    def end(self) -> datetime:
        """Midnight after ``last`` (exclusive)."""
        return _midnight(self.last + timedelta(days=1), self.tz)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def previous(self) -> Period:
        """The period of the same length just before (the intent trend compares with it)."""
        return Period(self.first - timedelta(days=self.days), self.first - timedelta(days=1), self.tz)

    def label(self) -> str:
        return (
            self.first.isoformat() if self.first == self.last else f"{self.first.isoformat()} ~ {self.last.isoformat()}"
        )

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.tz)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    # through UTC, so a zone whose midnight falls in a DST gap still gets a real instant
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _parse(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise PeriodError(f"{option} {value!r}: expected a date like 2026-11-30") from None


def resolve_period(since: str | None, until: str | None, tz: ZoneInfo, now: datetime) -> Period:
    """The days of ``--since``/``--until`` (both inclusive, YYYY-MM-DD in shop time).

    Neither: yesterday. Only ``--since``: from then through yesterday (through today when
    ``--since`` is today). Only ``--until``: that one day.

    Raises:
        PeriodError: a value is not a date, or the period ends before it starts.
    """
    today = now.astimezone(tz).date()
    yesterday = today - timedelta(days=1)
    first = _parse(since, "--since") if since else None
    last = _parse(until, "--until") if until else None
    if first is None and last is None:
        first = last = yesterday
    elif last is None:
        last = max(yesterday, first)
    elif first is None:
        first = last
    if last < first:
        raise PeriodError(f"--until {last} is before --since {first}")
    return Period(first, last, tz)
