"""The agent workspace: sign-in token hashes, idempotent agent sends and the event log."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.store.sqlite.codec import dumps, from_db_time, to_db_time
from bot.store.sqlite.connection import SqliteConnection


class WorkspaceRows(SqliteConnection):
    """The ``agent_tokens``, ``agent_sends`` and ``events`` tables, mixed into `SqliteStore`."""

    # --- agent workspace ------------------------------------------------------------------------
    def add_agent_token(self, token_id: str, agent_id: str, salt: str, digest: str, at: datetime) -> None:
        """Store a new token's hash and revoke the agent's older tokens (one live token per agent)."""
        with self.transaction():
            self._conn.execute(
                "UPDATE agent_tokens SET revoked_at = ? WHERE agent_id = ? AND revoked_at IS NULL",
                (to_db_time(at), agent_id),
            )
            self._conn.execute(
                "INSERT INTO agent_tokens (id, agent_id, salt, hash, created_at) VALUES (?, ?, ?, ?, ?)",
                (token_id, agent_id, salt, digest, to_db_time(at)),
            )

    def agent_token(self, token_id: str) -> dict[str, Any] | None:
        rows = self._read(
            "SELECT id, agent_id, salt, hash, created_at FROM agent_tokens WHERE id = ? AND revoked_at IS NULL",
            (token_id,),
        )
        if not rows:
            return None
        id_, agent_id, salt, digest, created_at = rows[0]
        return {"id": id_, "agent_id": agent_id, "salt": salt, "hash": digest, "created_at": from_db_time(created_at)}

    def agent_send(self, agent_id: str, key: str) -> dict[str, Any] | None:
        rows = self._read(
            "SELECT conversation_id, text, message_row, decision_id, at FROM agent_sends"
            " WHERE agent_id = ? AND idempotency_key = ?",
            (agent_id, key),
        )
        if not rows:
            return None
        conversation_id, text, message_row, decision_id, at = rows[0]
        return {
            "agent_id": agent_id, "idempotency_key": key, "conversation_id": conversation_id, "text": text,
            "message_row": message_row, "decision_id": decision_id, "at": from_db_time(at),
        }

    def add_agent_send(
        self, agent_id: str, key: str, conversation_id: str, text: str, message_row: int | None,
        decision_id: int | None, at: datetime,
    ) -> None:
        with self.transaction():
            self._conn.execute(
                "INSERT INTO agent_sends (agent_id, idempotency_key, conversation_id, text, message_row, decision_id,"
                " at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (agent_id, key, conversation_id, text, message_row, decision_id, to_db_time(at)),
            )

    def agent_message_rows(self, conversation_id: str) -> dict[int, str]:
        rows = self._read(
            "SELECT message_row, agent_id FROM agent_sends WHERE conversation_id = ? AND message_row IS NOT NULL",
            (conversation_id,),
        )
        return {row: agent for row, agent in rows}

    def add_event(self, kind: str, ref: str, at: datetime, *, conversation_id: str | None = None,
                  payload: dict[str, Any] | None = None) -> int:
        with self.transaction():
            cursor = self._conn.execute(
                "INSERT INTO events (at, kind, conversation_id, ref, payload) VALUES (?, ?, ?, ?, ?)",
                (to_db_time(at), kind, conversation_id, ref, dumps(payload or {})),
            )
            return cursor.lastrowid

    def events_after(self, after: int, limit: int = 500) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT id, at, kind, conversation_id, ref, payload FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (after, limit),
        )
        return [
            {"id": id_, "at": at, "kind": kind, "conversation_id": cid, "ref": ref, "payload": json.loads(payload)}
            for id_, at, kind, cid, ref, payload in rows
        ]

    def recent_conversations(self, limit: int = 30) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT id, customer_id, updated_at FROM conversations ORDER BY updated_at DESC, rowid DESC LIMIT ?",
            (limit,),
        )
        return [{"id": id_, "customer_id": cust, "updated_at": from_db_time(at)} for id_, cust, at in rows]

    def last_event_id(self) -> int:
        rows = self._read("SELECT COALESCE(MAX(id), 0) FROM events")
        return int(rows[0][0])

    def prune_events(self, before: datetime, limit: int) -> int:
        """Delete the events logged before ``before`` among the ``limit`` oldest (`bot.store.retention`).

        Only the oldest rows are looked at (ids grow with time), so a run costs ``limit`` rows
        however large the log is; ``reveal`` events and the newest event are kept.
        """
        with self.transaction():
            cursor = self._conn.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM (SELECT id, at FROM events WHERE kind != 'reveal'"
                " ORDER BY id LIMIT ?) WHERE at < ?) AND id < (SELECT MAX(id) FROM events)",
                (limit, to_db_time(before)),
            )
            return cursor.rowcount

    def events_lost_after(self, after: int) -> bool:
        # ids are AUTOINCREMENT: never reused, and a rolled-back insert gives its id back, so
        # the log's ids are contiguous but for pruned rows
        newest = self._read("SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'events'")[0][0]
        kept = self._read("SELECT COUNT(*) FROM events WHERE id > ?", (after,))[0][0]
        return 0 <= after < newest and kept < newest - after
