"""`ReportReads` on Redis: the period reads of the shop reports and the daily push outbox.

The period reads walk the time indexes the store keeps anyway (``msgs``, ``decs``, ``oevents``,
``tickets``: sorted sets scored by microseconds) in pages, so the daily summary the server
pushes works on Redis as on SQLite. ``kefu report`` over months of a busy shop reads every
message document one by one, which SQLite does far faster: docs/scale.md says so.
The push outbox: one document per push; ``push:key:<key>:<target>`` keeps a (key, target) pair
queued once across workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from bot.store.base import StoredMessage
from bot.store.redis_tx import RedisCore, from_text, member, micros, to_text


class RedisReportPushes:
    core: RedisCore

    def _between(self, index: str, since: datetime, until: datetime | None) -> list[int]:
        high = f"({micros(until)}" if until is not None else "+inf"
        return [int(m) for m in self.core.zrange(self.core.key(index), micros(since), high)]

    def count_messages_between(self, since: datetime, until: datetime) -> int:
        return int(self.core.redis.zcount(self.core.key("msgs"), micros(since), f"({micros(until)}"))

    def iter_messages_between(self, since: datetime, until: datetime, batch: int = 20_000) -> Iterator[StoredMessage]:
        rows = self._between("msgs", since, until)
        for start in range(0, len(rows), batch):
            page = rows[start:start + batch]
            for row, doc in zip(page, self.core.mget_json([self.core.key("msg", r) for r in page])):
                if doc:
                    yield StoredMessage(row, doc["conversation_id"], doc["direction"], doc["text"],
                                        from_text(doc["at"]), doc["platform"], doc["message_id"],
                                        bool(doc["processed"]), doc["customer_id"])

    def _decision_docs(self, since: datetime, until: datetime) -> list[tuple[int, dict[str, Any]]]:
        ids = self._between("decs", since, until)
        return [(i, d) for i, d in zip(ids, self.core.mget_json([self.core.key("dec", i) for i in ids])) if d]

    def decision_facts_between(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        facts = []
        for decision_id, doc in self._decision_docs(since, until):
            payload = doc["payload"]
            handoff = payload.get("handoff") or {}
            facts.append({
                "id": decision_id, "conversation_id": doc["conversation_id"], "at": from_text(doc["at"]),
                "trigger": doc["trigger"], "kind": doc["kind"], "message_row": doc["message_row"],
                "intent": payload.get("intent") or "", "intent_score": float(payload.get("intent_score") or 0.0),
                "replies": [{"id": r.get("id", ""), "text": r.get("text", "")} for r in payload.get("replies") or []],
                "handoff_reason": handoff.get("reason"), "handoff_group": handoff.get("group"),
            })
        return facts

    def intent_counts_between(self, since: datetime, until: datetime) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, doc in self._decision_docs(since, until):
            if doc["trigger"] == "message":
                intent = doc["payload"].get("intent") or ""
                counts[intent] = counts.get(intent, 0) + 1
        return counts

    def order_events_between(self, since: datetime, until: datetime | None = None) -> list[dict[str, Any]]:
        ids = self._between("oevents", since, until)
        docs = self.core.mget_json([self.core.key("oevent", i) for i in ids])
        return [{"order_id": d["order_id"], "customer_id": d["customer_id"], "status": d["status"],
                 "at": from_text(d["at"]), "amount": (d["payload"] or {}).get("amount")} for d in docs if d]

    def tickets_created_between(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        return self._tickets([member(i) for i in self._between("tickets", since, until)])

    def add_report_push(self, key: str, target: str, text: str, at: datetime) -> bool:
        k, core = self.core.key, self.core
        with core.transaction():
            unique = k("push", "key", key, target)
            if core.get(unique) is not None:
                return False
            core.require(unique, None)
            push_id = core.next_id("push")
            core.set(unique, str(push_id))
            core.set_json(k("push", push_id), {"key": key, "target": target, "text": text, "status": "pending",
                                               "attempts": 0, "created_at": to_text(at), "sent_at": None,
                                               "error": None})
            core.zadd(k("pushes"), member(push_id), push_id)
            core.zadd(k("pushes", "pending"), member(push_id), push_id)
            return True

    def _pushes(self, index: str) -> list[dict[str, Any]]:
        ids = [int(m) for m in self.core.zrange(index)]
        out = []
        for push_id, doc in zip(ids, self.core.mget_json([self.core.key("push", i) for i in ids])):
            if doc:
                out.append({"id": push_id, **doc, "created_at": from_text(doc["created_at"]),
                            "sent_at": from_text(doc["sent_at"]) if doc["sent_at"] else None})
        return out

    def pending_report_pushes(self) -> list[dict[str, Any]]:
        return self._pushes(self.core.key("pushes", "pending"))

    def report_pushes(self, key: str | None = None) -> list[dict[str, Any]]:
        pushes = self._pushes(self.core.key("pushes"))
        return [p for p in pushes if key is None or p["key"] == key]

    def set_report_push(self, push_id: int, status: str, at: datetime, error: str | None = None) -> None:
        if status not in {"sent", "retry", "failed"}:
            raise ValueError(f"set_report_push: unknown status {status!r} (sent, retry or failed)")
        k, core = self.core.key, self.core
        with core.transaction():
            doc = core.get_json(k("push", push_id))
            if doc is None:
                return
            doc["attempts"] += 1
            if status == "sent":
                doc.update(status="sent", sent_at=to_text(at), error=None)
            else:
                doc.update(status="pending" if status == "retry" else "failed", error=error)
            core.set_json(k("push", push_id), doc)
            if doc["status"] != "pending":
                core.zrem(k("pushes", "pending"), member(push_id))
