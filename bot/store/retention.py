"""Retention of the live event log: old rows of the ``events`` table are deleted on a schedule.

Why: every accepted message, every ticket change and every presence change appends a row to
the log the agent workspace's live channel reads (``GET /api/events``, `bot.web.agent.live`),
and nothing deleted them: the table grew by a row per message forever. Only the live channel
reads it, and only from where an open page's cursor stands — a page that was away longer than
the retention loads its state afresh instead (`Store.events_lost_after` tells it so). So rows
older than ``store.events_days`` go, a bounded batch at a time, at most once an hour (again at
once while a run finds a full batch, so a backlog drains in steps without holding the store's
writer for long).

What is never deleted: ``reveal`` events (the audit of which agent saw a customer's full phone
number or address, and when) and the newest event (its id is the live channel's "now"). The
messages, tickets, jobs and decisions the events point at are other tables, untouched: a
pending follow-up or an open ticket needs nothing from this log.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

_LOGGER = logging.getLogger(__name__)

#: How often the log is pruned when the last run found nothing more to delete.
EVERY = timedelta(hours=1)
#: Rows examined (and at most deleted) per run: bounds how long one run holds the writer.
BATCH = 5000


class EventRetention:
    """When to prune the event log, and the pruning itself (run on the store's writer thread).

    Args:
        days: Keep events this many days; 0 keeps all of them (nothing is ever pruned).
        clock: The service's clock (`bot.scheduler.Clock`): the events' times are its times.
    """

    def __init__(self, days: float, clock: Any) -> None:
        self.days = days
        self.clock = clock
        self.next_at: datetime | None = None  # None: the first check prunes
        self.deleted = 0  # rows deleted since start (tests and logs)

    def due(self) -> bool:
        return self.days > 0 and (self.next_at is None or self.clock.now() >= self.next_at)

    def run(self, store: Any) -> int:
        """Delete one batch of events older than the retention; schedule the next run."""
        now = self.clock.now()
        self.next_at = now + EVERY  # set first: a store that fails is tried again in an hour, not each second
        deleted = store.prune_events(now - timedelta(days=self.days), BATCH)
        self.deleted += deleted
        if deleted >= BATCH:  # a full batch: more may be waiting
            self.next_at = now
        if deleted:
            _LOGGER.info("pruned %d live events older than %g days", deleted, self.days)
        return deleted
