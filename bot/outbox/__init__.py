"""The durable outbox: every line kefu sends to a platform waits here until it is delivered.

Why a table of its own, next to ``decisions``: a decision says *what* was decided (the audit);
an outbox item says *how its delivery is going* — which lane (destination) it waits in, how
many attempts it took, when the next one is due, the last error, and whether it ended
delivered, in dead-letter (the retry budget ran out) or held (its connector cannot push: the
line waits for the next HTTP response to that conversation, until it expires).

One item per decision (``decision_id`` is unique), so submitting a decision twice is harmless.
Statuses:

- ``pending``: waits in its lane; ``next_at`` is when the next attempt may start.
- ``held``: the connector answers only inside its own HTTP responses (e.g. the generic webhook
  in ``mode: sync`` without ``callback_url``); ``next_at`` is when the hold expires.
- ``done``: delivered (the decision's ``delivery`` is ``done`` too).
- ``dead``: the retry budget ran out; listed by ``kefu outbox``, retried or dropped from there.
- ``expired``: a held line nobody came back for in time; never sent, never marked delivered.
- ``dropped``: an operator gave up on it (``kefu outbox drop``).

The server (`bot.web.delivery`) drains the lanes; the CLI (`bot.cli.outbox`) reads and edits
the same rows, and the running server picks up what the CLI sets back to pending.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.store.sqlite import SqliteStore, from_db_time, to_db_time

STATUSES = ("pending", "held", "done", "dead", "expired", "dropped")
#: Final states whose decision never reached the customer.
UNDELIVERED = frozenset({"dead", "expired", "dropped"})


@dataclass(frozen=True)
class OutboxItem:
    id: int
    decision_id: int
    conversation_id: str
    connector: str
    lane: str
    status: str
    attempts: int
    next_at: datetime
    last_error: str | None
    created_at: datetime
    updated_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "decision_id": self.decision_id, "conversation_id": self.conversation_id,
            "connector": self.connector, "lane": self.lane, "status": self.status, "attempts": self.attempts,
            "next_at": self.next_at.isoformat(), "last_error": self.last_error,
            "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat(),
        }


_COLUMNS = ("id, decision_id, conversation_id, connector, lane, status, attempts, next_at, last_error, created_at,"
            " updated_at")


def _item(row: tuple[Any, ...]) -> OutboxItem:
    id_, decision_id, cid, connector, lane, status, attempts, next_at, error, created, updated = row
    return OutboxItem(id_, decision_id, cid, connector, lane, status, attempts, from_db_time(next_at), error,
                      from_db_time(created), from_db_time(updated))


def outbox_for(store: Any) -> Any:
    """The outbox of a store: these SQL rows for SQLite, `bot.store.redis_outbox` for Redis."""
    if getattr(store, "shared_inbox", False):
        from bot.store.redis_outbox import RedisOutbox

        return RedisOutbox(store)
    return Outbox(store)


class Outbox:
    """The outbox rows of one SQLite store (the table is created by its migration 0005_outbox)."""

    def __init__(self, store: SqliteStore):
        self.store = store

    # --- writing ----------------------------------------------------------------------------
    def enqueue(self, decision_id: int, conversation_id: str, connector: str, lane: str, now: datetime,
                *, held_until: datetime | None = None) -> OutboxItem:
        """Queue a decision's delivery (idempotent: an already queued decision keeps its item)."""
        when = to_db_time(held_until or now)
        with self.store.transaction():
            self.store.sql(
                "INSERT INTO outbox (decision_id, conversation_id, connector, lane, status, next_at, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (decision_id) DO NOTHING",
                (decision_id, conversation_id, connector, lane, "held" if held_until else "pending", when,
                 to_db_time(now), to_db_time(now)),
            )
            return self.for_decision(decision_id)

    def delivered(self, item_id: int, now: datetime) -> None:
        """Mark an item (and its decision) delivered, after the platform took it.

        Committed without an fsync of its own (``durable=False``): it becomes durable with the
        next commit. A power cut may lose the mark, and then the line is sent again (at least
        once); it can never make a line that was not sent look delivered.
        """
        self._finish(item_id, "done", "done", None, now, durable=False)

    def failed(self, item: OutboxItem, error: str, now: datetime, next_at: datetime | None) -> None:
        """One more failed attempt: wait until ``next_at``, or dead-letter when it is None."""
        if next_at is None:
            self._finish(item.id, "dead", "failed", error, now, attempts=item.attempts + 1)
            return
        self.store.sql(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_at = ?, updated_at = ?"
            " WHERE id = ? AND status = 'pending'",
            (error[:500], to_db_time(next_at), to_db_time(now), item.id),
        )

    def _finish(self, item_id: int, status: str, delivery: str, error: str | None, now: datetime,
                attempts: int | None = None, *, durable: bool = True) -> None:
        with self.store.transaction(durable=durable):
            rows = self.store.sql(
                "UPDATE outbox SET status = ?, last_error = COALESCE(?, last_error), attempts = COALESCE(?, attempts),"
                " updated_at = ? WHERE id = ? RETURNING decision_id",
                (status, error[:500] if error else None, attempts, to_db_time(now), item_id),
            )
            for (decision_id,) in rows:
                self.store.set_delivery(decision_id, delivery)

    def take_held(self, conversation_id: str, now: datetime) -> list[OutboxItem]:
        """Held lines of a conversation still valid now, oldest first, marked delivered.

        Its held lines past their time are expired instead (never sent); other conversations'
        are left to `expire_held` (the lanes' sweep, every second): this runs on every sync
        answer, so it reads only this conversation's rows (an index lookup, nothing when none).
        Call inside the transaction that records the response carrying them.
        """
        rows = self.store.sql(
            f"SELECT {_COLUMNS} FROM outbox WHERE status = 'held' AND conversation_id = ? ORDER BY id",
            (conversation_id,),
        )
        if not rows:
            return []
        items: list[OutboxItem] = []
        with self.store.transaction():
            for item in map(_item, rows):
                if item.next_at <= now:
                    self._finish(item.id, "expired", "failed", "held line expired: no response carried it", now)
                else:
                    self.delivered(item.id, now)
                    items.append(item)
        return items

    def expire_held(self, now: datetime) -> int:
        """Held lines past their time: expired, and their decisions marked failed (never sent)."""
        with self.store.transaction():
            rows = self.store.sql("SELECT id FROM outbox WHERE status = 'held' AND next_at <= ?", (to_db_time(now),))
            for (item_id,) in rows:
                self._finish(item_id, "expired", "failed", "held line expired: no response carried it", now)
        return len(rows)

    def retry(self, ids: list[int] | None, now: datetime) -> int:
        """Put dead (or dropped) items back in their lanes with a fresh budget; None: every dead one."""
        where, params = self._ids(ids, "status IN ('dead', 'dropped')", "status = 'dead'")
        with self.store.transaction():
            rows = self.store.sql(
                f"UPDATE outbox SET status = 'pending', attempts = 0, next_at = ?, updated_at = ? WHERE {where}"
                " RETURNING decision_id", (to_db_time(now), to_db_time(now), *params),
            )
            for (decision_id,) in rows:
                self.store.set_delivery(decision_id, "pending")
        return len(rows)

    def drop(self, ids: list[int] | None, now: datetime) -> int:
        """Give up on dead or pending items (never sent: their decisions stay marked failed)."""
        where, params = self._ids(ids, "status IN ('dead', 'pending', 'held')", "status = 'dead'")
        with self.store.transaction():
            rows = self.store.sql(f"SELECT id FROM outbox WHERE {where}", params)
            for (item_id,) in rows:
                self._finish(item_id, "dropped", "failed", None, now)
        return len(rows)

    @staticmethod
    def _ids(ids: list[int] | None, with_ids: str, without: str) -> tuple[str, tuple[Any, ...]]:
        if ids is None:
            return without, ()
        marks = ", ".join("?" * len(ids)) or "NULL"
        return f"{with_ids} AND id IN ({marks})", tuple(ids)

    # --- reading ----------------------------------------------------------------------------
    def for_decision(self, decision_id: int) -> OutboxItem | None:
        rows = self.store.sql(f"SELECT {_COLUMNS} FROM outbox WHERE decision_id = ?", (decision_id,))
        return _item(rows[0]) if rows else None

    def get(self, item_id: int) -> OutboxItem | None:
        rows = self.store.sql(f"SELECT {_COLUMNS} FROM outbox WHERE id = ?", (item_id,))
        return _item(rows[0]) if rows else None

    def head(self, lane: str) -> OutboxItem | None:
        """The lane's oldest pending item: lanes deliver in order, so only the head may go."""
        rows = self.store.sql(
            f"SELECT {_COLUMNS} FROM outbox WHERE status = 'pending' AND lane = ? ORDER BY id LIMIT 1", (lane,)
        )
        return _item(rows[0]) if rows else None

    def busy_lanes(self) -> list[str]:
        return [lane for (lane,) in self.store.sql("SELECT DISTINCT lane FROM outbox WHERE status = 'pending'")]

    def items(self, status: str | None = None, limit: int = 1000) -> list[OutboxItem]:
        if status is None:
            rows = self.store.sql(f"SELECT {_COLUMNS} FROM outbox ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self.store.sql(
                f"SELECT {_COLUMNS} FROM outbox WHERE status = ? ORDER BY id DESC LIMIT ?", (status, limit)
            )
        return [_item(row) for row in reversed(rows)]

    def counts(self) -> dict[str, int]:
        """Items per status (every status present, 0 when none)."""
        found = dict(self.store.sql("SELECT status, COUNT(*) FROM outbox GROUP BY status"))
        return {status: int(found.get(status, 0)) for status in STATUSES}

    def lane_depths(self) -> dict[str, int]:
        """Pending items per lane (what is waiting to go out, per destination)."""
        return dict(self.store.sql("SELECT lane, COUNT(*) FROM outbox WHERE status = 'pending' GROUP BY lane"))

    def unqueued_decisions(self) -> list[dict[str, Any]]:
        """Decisions pending delivery with no outbox item (a crash between decide and enqueue)."""
        queued = {row[0] for row in self.store.sql("SELECT decision_id FROM outbox")}
        return [d for d in self.store.pending_deliveries() if d["id"] not in queued]
