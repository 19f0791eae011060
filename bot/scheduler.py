"""Persisted delayed jobs (bargaining follow-up, payment chase), fired exactly once.

Jobs live in the store, so a restart loses none. Time comes from an injectable `Clock`, so
tests and replays move time by hand and never sleep.

Exactly once: each firing is one store transaction — claim the job, then let ``fire`` write
what it produced (decision, new state). If ``fire`` raises or the process dies mid-way, the
claim rolls back with those writes and the job fires again later; if the transaction commits,
the job is done and never fires again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from bot.config.times import TimeWindow
from bot.store.base import Job, Store

_LOGGER = logging.getLogger(__name__)

Fire = Callable[[Job], None]


@runtime_checkable
class Clock(Protocol):
    """Where the scheduler (and anything replayable) gets the time from."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class SystemClock:
    """Real time, aware, in ``tz`` (UTC by default)."""

    def __init__(self, tz: tzinfo = UTC) -> None:
        self.tz = tz

    def now(self) -> datetime:
        return datetime.now(self.tz)


class ManualClock:
    """Time that moves only when told to: for tests and replaying recorded conversations."""

    def __init__(self, start: datetime) -> None:
        self.set(start)

    def now(self) -> datetime:
        return self._now

    def set(self, dt: datetime) -> None:
        """Jump to ``dt`` (backwards too: replays may restart a day).

        Raises:
            ValueError: ``dt`` is naive.
        """
        if dt.tzinfo is None or dt.utcoffset() is None:
            raise ValueError(f"ManualClock needs an aware datetime, got {dt!r}")
        self._now = dt

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta``; returns the new time."""
        self._now += delta
        return self._now


class Scheduler:
    """Schedules jobs in a `Store` and fires the due ones.

    A job whose ``fire`` raises stays pending and is retried, but not at once: the failure is
    logged and the job is skipped until ``retry_delay`` has passed, doubling per failure up to
    ``max_retry_delay``, so a poisoned job neither blocks the others nor spins in a hot loop
    filling the log (and `run_forever` never wakes early just for a retry). The back-off is
    kept in memory only: after a restart the job is retried at once, which is what a restart
    is for. A job that can never succeed stays pending for good: cancel it by its key.

    Args:
        store: Where the jobs live.
        clock: Where "now" comes from.
        retry_delay: Wait after a job's first failure; ``timedelta(0)`` retries on the next run.
        max_retry_delay: Cap of the doubling wait.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        retry_delay: timedelta = timedelta(seconds=30),
        max_retry_delay: timedelta = timedelta(minutes=30),
    ) -> None:
        self.store = store
        self.clock = clock
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self._failures: dict[int, tuple[int, datetime]] = {}  # job id → (failures, retry not before)

    def schedule(
        self, key: str, kind: str, due_at: datetime, conversation_id: str, payload: dict[str, Any] | None = None
    ) -> bool:
        """Add a pending job; False if the key was ever used (idempotent: retried webhooks are safe)."""
        return self.store.schedule(key, kind, due_at, conversation_id, payload)

    def cancel(self, key: str) -> bool:
        """Cancel a pending job (e.g. the order got paid); False if nothing was pending."""
        return self.store.cancel(key)

    def run_due(self, fire: Fire) -> list[Job]:
        """Fire every job due now, each in its own transaction with its claim.

        Args:
            fire: Does the job's work, writing through the same store; it gets the claimed job
                (status "done", ``fired_at`` = now). Its writes commit with the claim or not at all.

        Returns:
            The jobs fired, in due order.
        """
        now = self.clock.now()
        fired: list[Job] = []
        seen: set[int] = set()
        batch = 100
        while True:
            # Page past jobs already seen this run (failed or backing off) by widening the limit:
            # the interface has no offset, and a page full of poisoned jobs must not hide the rest.
            limit = len(seen) + batch
            jobs = self.store.due_jobs(now, limit=limit)
            fresh = [job for job in jobs if job.id not in seen]
            for job in fresh:
                seen.add(job.id)
                if self._backing_off(job, now):
                    continue
                claimed = dataclasses.replace(job, status="done", fired_at=now)
                try:
                    with self.store.transaction():
                        if not self.store.claim(job.id, now):
                            continue  # another worker fired it meanwhile
                        fire(claimed)
                except Exception:
                    # Rolled back: the job is still pending. Log and go on with the others.
                    self._record_failure(job, now)
                    continue
                self._failures.pop(job.id, None)
                fired.append(claimed)
            if not fresh or len(jobs) < limit:
                break
        # Forget back-offs of jobs no longer due-and-pending (cancelled, fired elsewhere).
        self._failures = {job_id: v for job_id, v in self._failures.items() if job_id in seen}
        return fired

    def _backing_off(self, job: Job, now: datetime) -> bool:
        failure = self._failures.get(job.id)
        return failure is not None and now < failure[1]

    def _record_failure(self, job: Job, now: datetime) -> None:
        count = self._failures.get(job.id, (0, now))[0] + 1
        wait = min(self.retry_delay * 2 ** (count - 1), self.max_retry_delay)
        self._failures[job.id] = (count, now + wait)
        _LOGGER.error(
            "job %s (%s, conversation %s) failed %d time(s); stays pending, retry after %s",
            job.key, job.kind, job.conversation_id, count, now + wait, exc_info=True,
        )

    def next_fire_time(self, until: datetime) -> datetime | None:
        """The first moment up to ``until`` at which `run_due` has a job to try, or None.

        A job that failed counts from the end of its back-off, not from its due time: a replay
        moving the clock from one due job to the next (`bot.replay`) must not stand still on a
        job whose firing keeps raising.
        """
        # Due order; at most len(failures) of the rows failed, so the first fresh job is among them.
        jobs = self.store.due_jobs(until, limit=len(self._failures) + 1)
        times = []
        for job in jobs:
            failure = self._failures.get(job.id)
            times.append(job.due_at if failure is None else max(job.due_at, failure[1]))
        return min((t for t in times if t <= until), default=None)

    def seconds_until_next(self, max_sleep: float) -> float:
        """How long a loop may sleep before a job is due, at most ``max_sleep``.

        Jobs that failed before never make this 0: they are retried on a later tick at the
        earliest, so a poisoned job cannot turn `run_forever` into a tight loop.
        """
        now = self.clock.now()
        wake = self.store.next_due()
        if wake is None:
            return max_sleep
        if wake <= now:
            # len(failures) + 1 rows hold a job that never failed, if any is overdue.
            overdue = self.store.due_jobs(now, limit=len(self._failures) + 1)
            return max_sleep if all(job.id in self._failures for job in overdue) else 0.0
        return min((wake - now).total_seconds(), max_sleep)

    async def run_forever(self, fire: Fire, stop: asyncio.Event, max_sleep: float = 1.0) -> None:
        """Fire due jobs until ``stop`` is set (the server's loop).

        ``fire`` runs on the event loop's thread, between awaits: it must be quick and must not
        await (a store transaction must never span an await). ``max_sleep`` bounds how late a
        job scheduled meanwhile by another part of the server can fire.
        """
        while not stop.is_set():
            self.run_due(fire)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.seconds_until_next(max_sleep))
            except TimeoutError:
                pass


def shift_out_of_quiet_hours(at: datetime, quiet_start: time, quiet_end: time, tz: ZoneInfo) -> datetime:
    """Move ``at`` to the end of the quiet hours if it falls inside them.

    The window is ``[quiet_start, quiet_end)`` in ``tz`` wall time and may wrap midnight
    (22:00–08:00). A customer must never be chased at night, so a job due then waits for the
    morning rather than being dropped.

    Args:
        at: An aware datetime, in any zone.
        quiet_start: Start of the window (inclusive), wall time in ``tz``.
        quiet_end: End of the window (exclusive); equal to ``quiet_start`` means no quiet hours.
        tz: The shop's zone.

    Returns:
        ``at`` unchanged when outside the window, else the window's end as an aware datetime in ``tz``.

    Raises:
        ValueError: ``at`` is naive.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"shift_out_of_quiet_hours needs an aware datetime, got {at!r}")
    window = TimeWindow(quiet_start.replace(tzinfo=None), quiet_end.replace(tzinfo=None))
    return window.shift_out(at, tz)
