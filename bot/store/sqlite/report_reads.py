"""`ReportReads` on SQLite: period reads in a few indexed queries, and the push outbox.

The JSON decision payload is reduced with ``json_extract`` inside SQLite, so a month of
decisions is never parsed whole in Python (the report of 100k messages must take seconds).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from bot.store.base import StoredMessage
from bot.store.report_reads import ReportReads
from bot.store.sqlite.codec import from_db_time, to_db_time

#: Appended to `bot.store.sqlite.MIGRATIONS` (kept here beside the code that uses it).
REPORT_MIGRATION = (
    "0007_report_pushes",
    """
    -- The daily summary pushed to the team's group robots: queued in the same transaction as
    -- the job that made it, sent afterwards, so a crash loses no day's summary.
    CREATE TABLE report_pushes (
        id          INTEGER PRIMARY KEY,
        key         TEXT NOT NULL,              -- e.g. daily:2026-11-30
        target      TEXT NOT NULL,              -- the robot's name in reports.targets
        text        TEXT NOT NULL,
        status      TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
        attempts    INTEGER NOT NULL DEFAULT 0,
        created_at  TEXT NOT NULL,
        sent_at     TEXT,
        error       TEXT,
        UNIQUE (key, target)
    );
    CREATE INDEX report_pushes_pending ON report_pushes (id) WHERE status = 'pending';
    CREATE INDEX messages_at ON messages (at, id);
    CREATE INDEX decisions_at ON decisions (at, id);
    CREATE INDEX order_events_at ON order_events (at, id);
    CREATE INDEX tickets_created ON tickets (created_at, id);
    """,
)


class SqliteReportReads(ReportReads):
    """Mixed into `SqliteStore`; uses its ``_read``, ``_conn``, ``transaction`` and ``_ticket``."""

    def count_messages_between(self, since: datetime, until: datetime) -> int:

        rows = self._read(
            "SELECT COUNT(*) FROM messages WHERE at >= ? AND at < ?", (to_db_time(since), to_db_time(until))
        )
        return int(rows[0][0])

    def iter_messages_between(self, since: datetime, until: datetime, batch: int = 20_000) -> Iterator[StoredMessage]:

        after = (to_db_time(since), 0)
        end = to_db_time(until)
        while True:
            # keyset paging on the (at, id) index: each page is one short read under the lock
            rows = self._read(
                "SELECT id, conversation_id, direction, text, at, platform, message_id, processed, customer_id"
                " FROM messages WHERE (at > ? OR (at = ? AND id > ?)) AND at < ? ORDER BY at, id LIMIT ?",
                (after[0], after[0], after[1], end, batch),
            )
            for id_, cid, direction, text, at, platform, message_id, processed, customer_id in rows:
                yield StoredMessage(
                    id_, cid, direction, text, from_db_time(at), platform, message_id, bool(processed), customer_id
                )
            if len(rows) < batch:
                return
            after = (rows[-1][4], rows[-1][0])

    def decision_facts_between(self, since: datetime, until: datetime) -> list[dict[str, Any]]:

        rows = self._read(
            """
            SELECT id, conversation_id, at, trigger, kind, message_row,
                   json_extract(payload, '$.intent'), json_extract(payload, '$.intent_score'),
                   json_extract(payload, '$.replies'),
                   json_extract(payload, '$.handoff.reason'), json_extract(payload, '$.handoff.group')
            FROM decisions WHERE at >= ? AND at < ? ORDER BY at, id
            """,
            (to_db_time(since), to_db_time(until)),
        )
        facts = []
        for id_, cid, at, trigger, kind, message_row, intent, score, replies, reason, group in rows:
            parsed = json.loads(replies) if replies and replies != "[]" else []
            facts.append(
                {
                    "id": id_,
                    "conversation_id": cid,
                    "at": from_db_time(at),
                    "trigger": trigger,
                    "kind": kind,
                    "message_row": message_row,
                    "intent": intent or "",
                    "intent_score": float(score or 0.0),
                    "replies": [{"id": r.get("id", ""), "text": r.get("text", "")} for r in parsed],
                    "handoff_reason": reason,
                    "handoff_group": group,
                }
            )
        return facts

    def intent_counts_between(self, since: datetime, until: datetime) -> dict[str, int]:

        rows = self._read(
            "SELECT json_extract(payload, '$.intent') AS intent, COUNT(*) FROM decisions"
            " WHERE trigger = 'message' AND at >= ? AND at < ? GROUP BY intent",
            (to_db_time(since), to_db_time(until)),
        )
        return {intent or "": int(n) for intent, n in rows}

    def order_events_between(self, since: datetime, until: datetime | None = None) -> list[dict[str, Any]]:

        sql = (
            "SELECT order_id, customer_id, status, at, json_extract(payload, '$.amount')"
            " FROM order_events WHERE at >= ?"
        )
        params: tuple[Any, ...] = (to_db_time(since),)
        if until is not None:
            sql, params = sql + " AND at < ?", (*params, to_db_time(until))
        rows = self._read(sql + " ORDER BY at, id", params)
        return [
            {"order_id": o, "customer_id": c, "status": s, "at": from_db_time(at), "amount": amount}
            for o, c, s, at, amount in rows
        ]

    def tickets_created_between(self, since: datetime, until: datetime) -> list[dict[str, Any]]:

        rows = self._read(
            f"SELECT {self._TICKET_COLUMNS} FROM tickets"
            " WHERE created_at >= ? AND created_at < ? ORDER BY created_at, id",
            (to_db_time(since), to_db_time(until)),
        )
        return [self._ticket(row) for row in rows]

    # --- the daily push outbox ----------------------------------------------------------------
    def add_report_push(self, key: str, target: str, text: str, at: datetime) -> bool:

        with self.transaction():
            cursor = self._conn.execute(
                "INSERT INTO report_pushes (key, target, text, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key, target) DO NOTHING",
                (key, target, text, to_db_time(at)),
            )
            return cursor.rowcount == 1

    _PUSH_COLUMNS = "id, key, target, text, status, attempts, created_at, sent_at, error"

    def _push(self, row: tuple[Any, ...]) -> dict[str, Any]:

        push = dict(zip([c.strip() for c in self._PUSH_COLUMNS.split(",")], row))
        push["created_at"] = from_db_time(push["created_at"])
        push["sent_at"] = from_db_time(push["sent_at"]) if push["sent_at"] else None
        return push

    def pending_report_pushes(self) -> list[dict[str, Any]]:
        rows = self._read(f"SELECT {self._PUSH_COLUMNS} FROM report_pushes WHERE status = 'pending' ORDER BY id")
        return [self._push(row) for row in rows]

    def report_pushes(self, key: str | None = None) -> list[dict[str, Any]]:
        sql, params = f"SELECT {self._PUSH_COLUMNS} FROM report_pushes", ()
        if key is not None:
            sql, params = sql + " WHERE key = ?", (key,)
        return [self._push(row) for row in self._read(sql + " ORDER BY id", params)]

    def set_report_push(self, push_id: int, status: str, at: datetime, error: str | None = None) -> None:

        if status not in {"sent", "retry", "failed"}:
            raise ValueError(f"set_report_push: unknown status {status!r} (sent, retry or failed)")
        with self.transaction():
            if status == "sent":
                self._conn.execute(
                    "UPDATE report_pushes SET status = 'sent', sent_at = ?, attempts = attempts + 1, error = NULL"
                    " WHERE id = ?",
                    (to_db_time(at), push_id),
                )
            else:
                self._conn.execute(
                    "UPDATE report_pushes SET status = ?, attempts = attempts + 1, error = ? WHERE id = ?",
                    ("pending" if status == "retry" else "failed", error, push_id),
                )
