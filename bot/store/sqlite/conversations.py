"""Conversation state and the message log (the durable inbox: accepted, then processed)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from bot.store.base import StoredMessage
from bot.store.sqlite.codec import dumps, from_db_time, to_db_time
from bot.store.sqlite.connection import SqliteConnection


class ConversationRows(SqliteConnection):
    """The ``conversations`` and ``messages`` tables, mixed into `SqliteStore`."""

    # --- conversations --------------------------------------------------------------------------
    def load_state(self, conversation_id: str) -> dict[str, Any] | None:
        rows = self._read("SELECT state FROM conversations WHERE id = ?", (conversation_id,))
        return json.loads(rows[0][0]) if rows else None

    def save_state(self, conversation_id: str, customer_id: str, state: dict[str, Any], at: datetime) -> None:
        with self.transaction():
            self._conn.execute(
                """
                INSERT INTO conversations (id, customer_id, state, created_at, updated_at)
                VALUES (?1, ?2, ?3, ?4, ?4)
                ON CONFLICT (id) DO UPDATE SET
                    customer_id = excluded.customer_id, state = excluded.state, updated_at = excluded.updated_at
                """,
                (conversation_id, customer_id, dumps(state), to_db_time(at)),
            )

    def conversation_for_customer(self, customer_id: str) -> str | None:
        rows = self._read(
            "SELECT id FROM conversations WHERE customer_id = ? ORDER BY updated_at DESC, rowid DESC LIMIT 1",
            (customer_id,),
        )
        return rows[0][0] if rows else None

    # --- messages -------------------------------------------------------------------------------
    def add_message(
        self,
        conversation_id: str,
        direction: Literal["in", "out"],
        text: str,
        at: datetime,
        *,
        platform: str | None = None,
        message_id: str | None = None,
        customer_id: str | None = None,
        raw: dict[str, Any] | None = None,
    ) -> tuple[int, bool]:
        """See `Store.add_message`.

        Dedupe needs both ``platform`` and ``message_id`` and is on (platform, conversation,
        message id, text): a reused id in another conversation or with another text is a new
        message (`bot.identity`). Outbound rows never dedupe and are stored as processed (there
        is nothing to process in our own reply).
        """
        with self.transaction():
            if direction == "in" and platform is not None and message_id is not None:
                existing = self._conn.execute(
                    "SELECT id FROM messages WHERE direction = 'in' AND platform = ? AND conversation_id = ?"
                    " AND message_id = ? AND text = ?",
                    (platform, conversation_id, message_id, text),
                ).fetchone()
                if existing:
                    return existing[0], False
            cursor = self._conn.execute(
                """
                INSERT INTO messages
                    (conversation_id, direction, text, at, platform, message_id, processed, customer_id, raw)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                (
                    conversation_id, direction, text, to_db_time(at), platform, message_id,
                    int(direction == "out"), customer_id, dumps(raw) if raw is not None else None,
                ),
            )
            return cursor.lastrowid, True

    def mark_processed(self, message_row_id: int) -> None:
        with self.transaction():
            self._conn.execute("UPDATE messages SET processed = 1 WHERE id = ?", (message_row_id,))

    _MESSAGE_COLUMNS = "id, conversation_id, direction, text, at, platform, message_id, processed, customer_id, raw"

    @staticmethod
    def _message(row: tuple[Any, ...]) -> StoredMessage:
        id_, conversation_id, direction, text, at, platform, message_id, processed, customer_id, raw = row
        return StoredMessage(
            id_, conversation_id, direction, text, from_db_time(at), platform, message_id, bool(processed),
            customer_id, json.loads(raw) if raw else {},
        )

    def get_message(self, message_row_id: int) -> StoredMessage | None:
        rows = self._read(f"SELECT {self._MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_row_id,))
        return self._message(rows[0]) if rows else None

    def unprocessed_messages(self) -> list[StoredMessage]:
        rows = self._read(
            f"SELECT {self._MESSAGE_COLUMNS} FROM messages WHERE direction = 'in' AND processed = 0 ORDER BY at, id"
        )
        return [self._message(row) for row in rows]

    def recent_messages(self, conversation_id: str, limit: int = 10) -> list[StoredMessage]:
        rows = self._read(
            f"SELECT {self._MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY at DESC, id DESC LIMIT ?",
            (conversation_id, limit),
        )
        return [self._message(row) for row in reversed(rows)]
