"""Order events, the buyer ids an order is found by, buyer links and order-source (TMC) messages."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bot.store.sqlite.codec import dumps, from_db_time, to_db_time
from bot.store.sqlite.connection import SqliteConnection


class OrderRows(SqliteConnection):
    """The ``orders``, ``order_events``, ``order_buyers``, ``buyer_links`` and ``source_messages`` tables."""

    # --- order events ---------------------------------------------------------------------------
    def add_order_event(
        self,
        order_id: str,
        customer_id: str,
        status: str,
        at: datetime,
        payload: dict[str, Any],
        *,
        buyer_ids: Iterable[str] = (),
    ) -> None:
        """See `Store.add_order_event`.

        Webhooks can arrive late or be retried, so an event older than the one that set the
        current status is recorded but does not change it: a late "created" must not make a
        paid order look unpaid (and get chased). Equal times: the later call wins.
        """
        when = to_db_time(at)
        with self.transaction():
            self._conn.execute(
                """
                INSERT INTO orders (order_id, customer_id, status, updated_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (order_id) DO UPDATE SET
                    customer_id = excluded.customer_id, status = excluded.status, updated_at = excluded.updated_at
                WHERE excluded.updated_at >= orders.updated_at
                """,
                (order_id, customer_id, status, when),
            )
            self._conn.execute(
                "INSERT INTO order_events (order_id, customer_id, status, at, payload) VALUES (?, ?, ?, ?, ?)",
                (order_id, customer_id, status, when, dumps(payload)),
            )
            self._conn.executemany(
                "INSERT INTO order_buyers (buyer_id, order_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(b, order_id) for b in {customer_id, *buyer_ids} if b],
            )

    def order_status(self, order_id: str) -> str | None:
        rows = self._read("SELECT status FROM orders WHERE order_id = ?", (order_id,))
        return rows[0][0] if rows else None

    def order_events(self, order_id: str) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT customer_id, status, at, payload FROM order_events WHERE order_id = ? ORDER BY at, id",
            (order_id,),
        )
        return [{"customer_id": c, "status": st, "at": from_db_time(at), "payload": json.loads(p)}
                for c, st, at, p in rows]

    def order_buyers(self, order_id: str) -> list[str]:
        rows = self._read("SELECT buyer_id FROM order_buyers WHERE order_id = ? ORDER BY buyer_id", (order_id,))
        return [r[0] for r in rows]

    def orders_for_buyers(self, buyer_ids: Iterable[str]) -> list[dict[str, Any]]:
        ids = sorted(set(buyer_ids))
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        rows = self._read(
            f"""
            SELECT o.order_id, o.customer_id, o.status, o.updated_at,
                   (SELECT MIN(at) FROM order_events e WHERE e.order_id = o.order_id) AS first_at
            FROM orders o
            WHERE o.order_id IN (SELECT order_id FROM order_buyers WHERE buyer_id IN ({marks}))
               OR o.customer_id IN ({marks})
            ORDER BY first_at DESC, o.order_id DESC
            """,
            (*ids, *ids),
        )
        return [{"order_id": o, "customer_id": c, "status": st, "updated_at": from_db_time(u),
                 "created_at": from_db_time(f) if f else None} for o, c, st, u, f in rows]

    def link_buyer(self, buyer_id: str, conversation_id: str, at: datetime) -> None:
        with self.transaction():
            self._conn.execute(
                """
                INSERT INTO buyer_links (buyer_id, conversation_id, linked_at) VALUES (?, ?, ?)
                ON CONFLICT (buyer_id) DO UPDATE SET
                    conversation_id = excluded.conversation_id, linked_at = excluded.linked_at
                """,
                (buyer_id, conversation_id, to_db_time(at)),
            )

    def conversation_for_buyers(self, buyer_ids: Iterable[str]) -> str | None:
        ids = sorted(set(buyer_ids))
        if not ids:
            return None
        marks = ", ".join("?" * len(ids))
        rows = self._read(
            f"SELECT conversation_id FROM buyer_links WHERE buyer_id IN ({marks}) ORDER BY linked_at DESC LIMIT 1",
            tuple(ids),
        )
        return rows[0][0] if rows else None

    def add_source_message(
        self, source: str, message_id: str, topic: str, at: datetime, outcome: str, payload: dict[str, Any]
    ) -> bool:
        with self.transaction():
            cursor = self._conn.execute(
                """
                INSERT INTO source_messages (source, message_id, topic, received_at, outcome, payload)
                VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source, message_id) DO NOTHING
                """,
                (source, message_id, topic, to_db_time(at), outcome, dumps(payload)),
            )
            return cursor.rowcount == 1

    def source_messages(self, source: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT source, message_id, topic, received_at, outcome, payload FROM source_messages"
        rows = self._read(sql + (" WHERE source = ?" if source else "") + " ORDER BY received_at, rowid",
                          (source,) if source else ())
        return [{"source": s, "message_id": m, "topic": t, "received_at": from_db_time(r), "outcome": o,
                 "payload": json.loads(p)} for s, m, t, r, o, p in rows]
