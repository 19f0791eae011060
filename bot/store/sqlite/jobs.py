"""Scheduled jobs: idempotent by key, claimed once (inside the firing's transaction)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.store.base import Job
from bot.store.sqlite.codec import dumps, from_db_time, to_db_time
from bot.store.sqlite.connection import SqliteConnection


class JobRows(SqliteConnection):
    """The ``jobs`` table, mixed into `SqliteStore`."""

    # --- jobs -----------------------------------------------------------------------------------
    def schedule(
        self, key: str, kind: str, due_at: datetime, conversation_id: str, payload: dict[str, Any] | None = None
    ) -> bool:
        """See `Store.schedule`. A key stays taken after its job is done or cancelled.

        ``created_at`` is the wall clock (informational only; ``due_at`` is what counts).
        """
        with self.transaction():
            cursor = self._conn.execute(
                """
                INSERT INTO jobs (key, kind, due_at, conversation_id, payload, created_at)
                VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING
                """,
                (key, kind, to_db_time(due_at), conversation_id, dumps(payload or {}), to_db_time(datetime.now(UTC))),
            )
            return cursor.rowcount == 1

    def cancel(self, key: str) -> bool:
        with self.transaction():
            cursor = self._conn.execute(
                "UPDATE jobs SET status = 'cancelled' WHERE key = ? AND status = 'pending'", (key,)
            )
            return cursor.rowcount == 1

    _JOB_COLUMNS = "id, key, kind, due_at, conversation_id, payload, status, created_at, fired_at"

    @staticmethod
    def _job(row: tuple[Any, ...]) -> Job:
        id_, key, kind, due_at, conversation_id, payload, status, created_at, fired_at = row
        return Job(
            id=id_, key=key, kind=kind, due_at=from_db_time(due_at), conversation_id=conversation_id,
            payload=json.loads(payload), status=status, created_at=from_db_time(created_at),
            fired_at=from_db_time(fired_at) if fired_at else None,
        )

    def get_job(self, key: str) -> Job | None:
        rows = self._read(f"SELECT {self._JOB_COLUMNS} FROM jobs WHERE key = ?", (key,))
        return self._job(rows[0]) if rows else None

    def due_jobs(self, now: datetime, limit: int = 100) -> list[Job]:
        rows = self._read(
            f"SELECT {self._JOB_COLUMNS} FROM jobs WHERE status = 'pending' AND due_at <= ?"
            " ORDER BY due_at, id LIMIT ?",
            (to_db_time(now), limit),
        )
        return [self._job(row) for row in rows]

    def claim(self, job_id: int, now: datetime) -> bool:
        with self.transaction():
            cursor = self._conn.execute(
                "UPDATE jobs SET status = 'done', fired_at = ? WHERE id = ? AND status = 'pending'",
                (to_db_time(now), job_id),
            )
            return cursor.rowcount == 1

    def next_due(self) -> datetime | None:
        rows = self._read("SELECT MIN(due_at) FROM jobs WHERE status = 'pending'")
        return from_db_time(rows[0][0]) if rows[0][0] else None
