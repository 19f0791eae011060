"""Handoff tickets and agent presence (`bot.handoff.desk` owns their rules)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bot.store.base import PRESENCE_STATUSES
from bot.store.sqlite.codec import dumps, from_db_time, to_db_time
from bot.store.sqlite.connection import SqliteConnection


class TicketRows(SqliteConnection):
    """The ``tickets`` and ``agent_presence`` tables, mixed into `SqliteStore`."""

    # --- handoff tickets ------------------------------------------------------------------------
    # Ticket dict key → column. `group` is a keyword in SQL, hence `grp`.
    _TICKET_FIELDS: dict[str, str] = {
        "id": "id", "conversation_id": "conversation_id", "customer_id": "customer_id", "reason": "reason",
        "priority": "priority", "group": "grp", "status": "status", "created_at": "created_at",
        "sla_due": "sla_due", "assignee": "assignee", "summary": "summary", "updated_at": "updated_at",
        "assigned_at": "assigned_at", "answered_at": "answered_at", "last_activity_at": "last_activity_at",
        "breach_noted_at": "breach_noted_at",
    }
    _TICKET_TIMES = frozenset(
        {"created_at", "sla_due", "updated_at", "assigned_at", "answered_at", "last_activity_at", "breach_noted_at"}
    )
    _TICKET_COLUMNS = ", ".join(_TICKET_FIELDS.values())

    @classmethod
    def _ticket(cls, row: tuple[Any, ...]) -> dict[str, Any]:
        ticket = dict(zip(cls._TICKET_FIELDS, row))
        for key in cls._TICKET_TIMES:
            if ticket[key] is not None:
                ticket[key] = from_db_time(ticket[key])
        ticket["summary"] = json.loads(ticket["summary"])
        return ticket

    def add_ticket(
        self,
        conversation_id: str,
        customer_id: str,
        *,
        reason: str,
        priority: str,
        group: str,
        created_at: datetime,
        sla_due: datetime,
        summary: dict[str, Any],
        status: str = "queued",
        assignee: str | None = None,
    ) -> int:
        created = to_db_time(created_at)
        with self.transaction():
            cursor = self._conn.execute(
                """
                INSERT INTO tickets (conversation_id, customer_id, reason, priority, grp, status, created_at,
                                     sla_due, assignee, summary, updated_at, assigned_at)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?7, ?11)
                """,
                (conversation_id, customer_id, reason, priority, group, status, created, to_db_time(sla_due),
                 assignee, dumps(summary), created if assignee is not None else None),
            )
            return cursor.lastrowid

    def update_ticket(self, ticket_id: int, **fields: Any) -> bool:
        """See `Store.update_ticket`. Times must be aware; ``summary`` replaces the stored one whole."""
        unknown = sorted(key for key in fields if key == "id" or key not in self._TICKET_FIELDS)
        if unknown:
            raise ValueError(f"update_ticket: unknown or read-only field(s) {', '.join(unknown)}")
        values: list[Any] = []
        for key, value in fields.items():
            if key in self._TICKET_TIMES and value is not None:
                value = to_db_time(value)
            elif key == "summary":
                value = dumps(value)
            values.append(value)
        with self.transaction():
            if not fields:
                return self._conn.execute("SELECT 1 FROM tickets WHERE id = ?", (ticket_id,)).fetchone() is not None
            assignments = ", ".join(f"{self._TICKET_FIELDS[key]} = ?" for key in fields)
            cursor = self._conn.execute(f"UPDATE tickets SET {assignments} WHERE id = ?", (*values, ticket_id))
            return cursor.rowcount == 1

    def get_ticket(self, ticket_id: int) -> dict[str, Any] | None:
        rows = self._read(f"SELECT {self._TICKET_COLUMNS} FROM tickets WHERE id = ?", (ticket_id,))
        return self._ticket(rows[0]) if rows else None

    def list_tickets(
        self, status: str | Iterable[str] | None = None, group: str | None = None
    ) -> list[dict[str, Any]]:
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            if not statuses:
                return []
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            params += statuses
        if group is not None:
            where.append("grp = ?")
            params.append(group)
        sql = f"SELECT {self._TICKET_COLUMNS} FROM tickets"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [self._ticket(row) for row in self._read(sql + " ORDER BY created_at, id", tuple(params))]

    def open_ticket_for(self, conversation_id: str) -> dict[str, Any] | None:
        rows = self._read(
            f"SELECT {self._TICKET_COLUMNS} FROM tickets"
            " WHERE conversation_id = ? AND status IN ('queued', 'assigned') ORDER BY created_at DESC, id DESC LIMIT 1",
            (conversation_id,),
        )
        return self._ticket(rows[0]) if rows else None

    # --- agent presence -------------------------------------------------------------------------
    def set_status(self, agent_id: str, status: str, at: datetime) -> None:
        if status not in PRESENCE_STATUSES:
            raise ValueError(f"unknown presence status {status!r}; expected one of {', '.join(PRESENCE_STATUSES)}")
        with self.transaction():
            self._conn.execute(
                """
                INSERT INTO agent_presence (agent_id, online, status, updated_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (agent_id) DO UPDATE SET
                    online = excluded.online, status = excluded.status, updated_at = excluded.updated_at
                """,
                (agent_id, int(status == "online"), status, to_db_time(at)),
            )

    def statuses(self) -> dict[str, str]:
        rows = self._read("SELECT agent_id, status FROM agent_presence")
        return dict(rows)
