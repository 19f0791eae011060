"""The Redis store's orders: order events and status, the buyer ids an order is found by, which
conversation a buyer last wrote from, and order-source (TMC) messages stored once.

Mixed into `RedisStore` (it uses ``self.core``). An order's document holds its current status;
an event older than the one that set it is recorded but does not change it, the same rule as
the SQLite store. Every customer id an order ever had is also one of its buyers, so the buyer
index (``buyer:<id>:orders``) answers `orders_for_buyers` alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bot.store.redis_tx import RedisCore, dumps, from_text, member, micros, to_text


class RedisOrders:
    core: RedisCore

    # --- order events ---------------------------------------------------------------------------
    def add_order_event(self, order_id: str, customer_id: str, status: str, at: datetime, payload: dict[str, Any],
                        *, buyer_ids: Iterable[str] = ()) -> None:
        """See `Store.add_order_event` (a late event is recorded but does not set the status)."""
        k, core = self.core.key, self.core
        when = to_text(at)
        with self.transaction():
            current = core.get_json(k("order", order_id))
            core.require(k("order", order_id), dumps(current) if current is not None else None)
            if current is None or when >= current["updated_at"]:
                created = current["created_at"] if current else when
                core.set_json(k("order", order_id), {"customer_id": customer_id, "status": status,
                                                     "updated_at": when, "created_at": min(created, when)})
            else:
                current["created_at"] = min(current["created_at"], when)
                core.set_json(k("order", order_id), current)
            event_id = core.next_id("oevent")
            core.set_json(k("oevent", event_id), {"order_id": order_id, "customer_id": customer_id,
                                                  "status": status, "at": when, "payload": payload})
            core.zadd(k("order", order_id, "events"), member(event_id), micros(at))
            core.zadd(k("oevents"), member(event_id), micros(at))
            for buyer in {customer_id, *buyer_ids}:
                if buyer:
                    core.zadd(k("order", order_id, "buyers"), buyer, 0)
                    core.zadd(k("buyer", buyer, "orders"), order_id, 0)

    def order_status(self, order_id: str) -> str | None:
        doc = self.core.get_json(self.core.key("order", order_id))
        return doc["status"] if doc else None

    def order_events(self, order_id: str) -> list[dict[str, Any]]:
        ids = self.core.zrange(self.core.key("order", order_id, "events"))
        docs = self.core.mget_json([self.core.key("oevent", int(i)) for i in ids])
        return [{"customer_id": d["customer_id"], "status": d["status"], "at": from_text(d["at"]),
                 "payload": d["payload"]} for d in docs if d]

    def order_buyers(self, order_id: str) -> list[str]:
        return sorted(self.core.zrange(self.core.key("order", order_id, "buyers")))

    def orders_for_buyers(self, buyer_ids: Iterable[str]) -> list[dict[str, Any]]:
        # every customer id an order ever had is among its buyers, so the buyer index covers both
        order_ids = sorted({o for b in set(buyer_ids) for o in self.core.zrange(self.core.key("buyer", b, "orders"))})
        docs = self.core.mget_json([self.core.key("order", o) for o in order_ids])
        rows = [{"order_id": o, "customer_id": d["customer_id"], "status": d["status"],
                 "updated_at": from_text(d["updated_at"]), "created_at": from_text(d["created_at"])}
                for o, d in zip(order_ids, docs) if d]
        rows.sort(key=lambda r: (r["created_at"], r["order_id"]), reverse=True)
        return rows

    def link_buyer(self, buyer_id: str, conversation_id: str, at: datetime) -> None:
        with self.transaction():
            self.core.set_json(self.core.key("buyerlink", buyer_id),
                               {"conversation_id": conversation_id, "linked_at": to_text(at)})

    def conversation_for_buyers(self, buyer_ids: Iterable[str]) -> str | None:
        ids = sorted(set(buyer_ids))
        links = [d for d in self.core.mget_json([self.core.key("buyerlink", b) for b in ids]) if d]
        return max(links, key=lambda d: d["linked_at"])["conversation_id"] if links else None

    def add_source_message(self, source: str, message_id: str, topic: str, at: datetime, outcome: str,
                           payload: dict[str, Any]) -> bool:
        if outcome not in ("order", "ignored"):
            raise ValueError(f"unknown outcome {outcome!r}")
        k, core = self.core.key, self.core
        with self.transaction():
            unique = k("srckey", source, message_id)
            if core.get(unique) is not None:
                return False
            core.require(unique, None)
            row = core.next_id("src")
            core.set(unique, str(row))
            core.set_json(k("src", row), {"source": source, "message_id": message_id, "topic": topic,
                                          "received_at": to_text(at), "outcome": outcome, "payload": payload})
            core.zadd(k("srcs"), member(row), micros(at))
            core.zadd(k("srcs", source), member(row), micros(at))
            return True

    def source_messages(self, source: str | None = None) -> list[dict[str, Any]]:
        index = self.core.key("srcs") if source is None else self.core.key("srcs", source)
        docs = self.core.mget_json([self.core.key("src", int(m)) for m in self.core.zrange(index)])
        return [{**d, "received_at": from_text(d["received_at"])} for d in docs if d]
