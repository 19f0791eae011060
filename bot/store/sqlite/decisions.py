"""Decisions: the audit of what was suggested or sent and why, and their delivery status."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.store.sqlite.codec import dumps, from_db_time, to_db_time
from bot.store.sqlite.connection import SqliteConnection


class DecisionRows(SqliteConnection):
    """The ``decisions`` table, mixed into `SqliteStore`."""

    # --- decisions (audit) ----------------------------------------------------------------------
    def add_decision(
        self,
        conversation_id: str,
        at: datetime,
        trigger: str,
        kind: str,
        payload: dict[str, Any],
        *,
        message_row: int | None = None,
        delivery: str | None = None,
    ) -> int:
        with self.transaction():
            cursor = self._conn.execute(
                """
                INSERT INTO decisions (conversation_id, at, trigger, kind, payload, message_row, delivery)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
                (conversation_id, to_db_time(at), trigger, kind, dumps(payload), message_row, delivery),
            )
            return cursor.lastrowid

    _DECISION_COLUMNS = "id, conversation_id, at, trigger, kind, payload, message_row, delivery"

    @staticmethod
    def _decision(row: tuple[Any, ...]) -> dict[str, Any]:
        id_, cid, at, trigger, kind, payload, message_row, delivery = row
        return {
            "id": id_, "conversation_id": cid, "at": from_db_time(at), "trigger": trigger, "kind": kind,
            "payload": json.loads(payload), "message_row": message_row, "delivery": delivery,
        }

    def decisions(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT {self._DECISION_COLUMNS} FROM decisions"
        params: tuple[Any, ...] = ()
        if conversation_id is not None:
            sql, params = sql + " WHERE conversation_id = ?", (conversation_id,)
        return [self._decision(row) for row in self._read(sql + " ORDER BY at, id", params)]

    def decision_for_message(self, message_row: int) -> dict[str, Any] | None:
        rows = self._read(
            f"SELECT {self._DECISION_COLUMNS} FROM decisions WHERE message_row = ? ORDER BY id LIMIT 1",
            (message_row,),
        )
        return self._decision(rows[0]) if rows else None

    def get_decision(self, decision_id: int) -> dict[str, Any] | None:
        """One decision by its id (the dict of `decisions`), or None."""
        rows = self._read(f"SELECT {self._DECISION_COLUMNS} FROM decisions WHERE id = ?", (decision_id,))
        return self._decision(rows[0]) if rows else None

    def pending_deliveries(self) -> list[dict[str, Any]]:
        rows = self._read(f"SELECT {self._DECISION_COLUMNS} FROM decisions WHERE delivery = 'pending' ORDER BY id")
        return [self._decision(row) for row in rows]

    def set_delivery(self, decision_id: int, delivery: str) -> None:
        with self.transaction():
            self._conn.execute("UPDATE decisions SET delivery = ? WHERE id = ?", (delivery, decision_id))
