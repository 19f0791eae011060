"""What the shop reports read from a store, and the outbox of the daily report push.

Reports read whole periods (a day, a month) at once, which the per-conversation API cannot do
without thousands of queries. These methods return plain rows; what they mean (conversion,
response times …) is `bot.reports`' business, not the store's. They are not abstract so that
a backend written before reports existed still opens; it raises `NotImplementedError` when a
report asks it for rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.store.base import StoredMessage


class ReportReads:
    """Period reads for `bot.reports` and the push outbox (`bot.reports.push`)."""

    def count_messages_between(self, since: datetime, until: datetime) -> int:
        """How many messages (both directions) have ``since <= at < until``."""
        raise NotImplementedError(f"{type(self).__name__} cannot serve reports yet")

    def iter_messages_between(self, since: datetime, until: datetime, batch: int = 20_000) -> Iterator[StoredMessage]:
        """Messages with ``since <= at < until`` ordered by (at, id), read ``batch`` rows at a time.

        ``raw`` (the reply context) is left empty: reports never need it and it is the bulk.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot serve reports yet")

    def decision_facts_between(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Decisions with ``since <= at < until``, oldest first, reduced to what reports use.

        Keys: id, conversation_id, at, trigger, kind, message_row, intent, intent_score,
        replies (list of {"id", "text"}), handoff_reason, handoff_group.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot serve reports yet")

    def intent_counts_between(self, since: datetime, until: datetime) -> dict[str, int]:
        """Intent → number of answered customer messages (trigger "message") in the range."""
        raise NotImplementedError(f"{type(self).__name__} cannot serve reports yet")

    def order_events_between(self, since: datetime, until: datetime | None = None) -> list[dict[str, Any]]:
        """Order events with ``since <= at < until`` (None: no end), oldest first.

        Keys: order_id, customer_id, status, at, amount.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot serve reports yet")

    def tickets_created_between(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Tickets (the dicts of `Store.get_ticket`) created in the range, oldest first."""
        raise NotImplementedError(f"{type(self).__name__} cannot serve reports yet")

    # --- the daily push outbox ----------------------------------------------------------------
    def add_report_push(self, key: str, target: str, text: str, at: datetime) -> bool:
        """Queue one push (``key`` e.g. the day, ``target`` the robot's name); False if queued before."""
        raise NotImplementedError(f"{type(self).__name__} cannot queue report pushes yet")

    def pending_report_pushes(self) -> list[dict[str, Any]]:
        """Queued pushes not sent yet, oldest first: id, key, target, text, attempts, created_at."""
        raise NotImplementedError(f"{type(self).__name__} cannot queue report pushes yet")

    def report_pushes(self, key: str | None = None) -> list[dict[str, Any]]:
        """Every push (any status) of ``key`` (None: all), oldest first; adds status, sent_at, error."""
        raise NotImplementedError(f"{type(self).__name__} cannot queue report pushes yet")

    def set_report_push(self, push_id: int, status: str, at: datetime, error: str | None = None) -> None:
        """Record one delivery attempt.

        ``status``: "sent" (done, ``sent_at`` = at), "retry" (one more failed attempt, stays
        pending) or "failed" (gave up). ``error`` is kept for the log and `report_pushes`.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot queue report pushes yet")
