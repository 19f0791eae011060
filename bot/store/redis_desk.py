"""The Redis store's desk: handoff tickets, agent presence, the agent workspace and its event log.

Mixed into `RedisStore` (it uses ``self.core``). The SQLite store fills its ``events`` table
with triggers in the same transaction as the change; here every write that the live channel
reports (a message, a ticket inserted or updated, a presence set) appends its event in the
same EXEC (`RedisCore.event`), so the agent page misses nothing whichever worker wrote it.

One open ticket per conversation, even with several workers racing to hand off: the key
``ticket:open:<conversation>`` holds the open ticket's id and is written on condition that it
was absent (the loser's block raises `StoreConflict`, an integrity error like SQLite's).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bot.store.base import PRESENCE_STATUSES
from bot.store.redis_tx import RedisCore, StoreConflict, from_text, member, micros, to_text

OPEN = ("queued", "assigned")
_FIELDS = ("conversation_id", "customer_id", "reason", "priority", "group", "status", "created_at", "sla_due",
           "assignee", "summary", "updated_at", "assigned_at", "answered_at", "last_activity_at", "breach_noted_at")
_TIMES = frozenset({"created_at", "sla_due", "updated_at", "assigned_at", "answered_at", "last_activity_at",
                    "breach_noted_at"})


class RedisDesk:
    core: RedisCore

    # --- tickets --------------------------------------------------------------------------------
    def _ticket(self, ticket_id: int, doc: dict[str, Any]) -> dict[str, Any]:
        ticket: dict[str, Any] = {"id": ticket_id}
        for name in _FIELDS:
            value = doc.get(name)
            ticket[name] = from_text(value) if name in _TIMES and value is not None else value
        return ticket

    def _index_ticket(self, ticket_id: int, before: dict[str, Any] | None, after: dict[str, Any]) -> None:
        k, core = self.core.key, self.core
        score = micros(from_text(after["created_at"]))
        if before is not None and before["status"] != after["status"]:
            core.zrem(k("tickets", "status", before["status"]), member(ticket_id))
        core.zadd(k("tickets", "status", after["status"]), member(ticket_id), score)
        was_open = before is not None and before["status"] in OPEN
        cid = after["conversation_id"]
        if after["status"] in OPEN and not was_open:
            holder = k("ticket", "open", cid)
            if core.get(holder) is not None:
                raise StoreConflict(f"conversation {cid!r} already has an open ticket (one at a time)")
            core.require(holder, None)
            core.set(holder, str(ticket_id))
        elif was_open and after["status"] not in OPEN:
            core.delete(k("ticket", "open", cid))

    def add_ticket(self, conversation_id: str, customer_id: str, *, reason: str, priority: str, group: str,
                   created_at: datetime, sla_due: datetime, summary: dict[str, Any], status: str = "queued",
                   assignee: str | None = None) -> int:
        k, core = self.core.key, self.core
        created = to_text(created_at)
        with core.transaction():
            ticket_id = core.next_id("ticket")
            doc = {name: None for name in _FIELDS} | {
                "conversation_id": conversation_id, "customer_id": customer_id, "reason": reason,
                "priority": priority, "group": group, "status": status, "created_at": created,
                "sla_due": to_text(sla_due), "assignee": assignee, "summary": summary, "updated_at": created,
                "assigned_at": created if assignee is not None else None,
            }
            self._index_ticket(ticket_id, None, doc)
            core.set_json(k("ticket", ticket_id), doc)
            core.zadd(k("tickets"), member(ticket_id), micros(created_at))
            core.event("ticket", ticket_id, created_at, conversation_id)
            return ticket_id

    def update_ticket(self, ticket_id: int, **fields: Any) -> bool:
        unknown = sorted(key for key in fields if key not in _FIELDS)
        if unknown:
            raise ValueError(f"update_ticket: unknown or read-only field(s) {', '.join(unknown)}")
        k, core = self.core.key, self.core
        values = {name: to_text(value) if name in _TIMES and value is not None else value
                  for name, value in fields.items()}
        with core.transaction():
            before = core.get_json(k("ticket", ticket_id))
            if before is None:
                return False
            if not fields:
                return True
            after = {**before, **values}
            self._index_ticket(ticket_id, before, after)
            core.set_json(k("ticket", ticket_id), after)
            core.event("ticket", ticket_id, from_text(after["updated_at"]), after["conversation_id"])
            return True

    def get_ticket(self, ticket_id: int) -> dict[str, Any] | None:
        doc = self.core.get_json(self.core.key("ticket", ticket_id))
        return self._ticket(ticket_id, doc) if doc else None

    def _tickets(self, members: list[str]) -> list[dict[str, Any]]:
        ids = [int(m) for m in members]
        docs = self.core.mget_json([self.core.key("ticket", i) for i in ids])
        return [self._ticket(i, d) for i, d in zip(ids, docs) if d]

    def list_tickets(self, status: str | Iterable[str] | None = None, group: str | None = None) -> list[dict[str, Any]]:
        if status is None:
            members = self.core.zrange(self.core.key("tickets"), scores=True)
        else:
            statuses = [status] if isinstance(status, str) else list(status)
            members = [row for s in statuses for row in self.core.zrange(self.core.key("tickets", "status", s),
                                                                          scores=True)]
        members.sort(key=lambda r: (r[1], r[0]))
        tickets = self._tickets([m for m, _ in members])
        return [t for t in tickets if group is None or t["group"] == group]

    def open_ticket_for(self, conversation_id: str) -> dict[str, Any] | None:
        found = self.core.get(self.core.key("ticket", "open", conversation_id))
        return self.get_ticket(int(found)) if found else None

    # --- presence -------------------------------------------------------------------------------
    def set_status(self, agent_id: str, status: str, at: datetime) -> None:
        if status not in PRESENCE_STATUSES:
            raise ValueError(f"unknown presence status {status!r}; expected one of {', '.join(PRESENCE_STATUSES)}")
        k, core = self.core.key, self.core
        with core.transaction():
            core.set_json(k("presence", agent_id), {"status": status, "updated_at": to_text(at)})
            core.zadd(k("agents"), agent_id, 0)
            core.event("presence", agent_id, at)

    def statuses(self) -> dict[str, str]:
        docs = self.core.index_docs(self.core.key("agents"), self.core.key("presence", ""))
        return {agent: doc["status"] for agent, doc in docs.items()}

    # --- agent workspace ------------------------------------------------------------------------
    def add_agent_token(self, token_id: str, agent_id: str, salt: str, digest: str, at: datetime) -> None:
        k, core = self.core.key, self.core
        with core.transaction():
            for old in core.zrange(k("agent", agent_id, "tokens")):
                doc = core.get_json(k("token", old))
                if doc and doc["revoked_at"] is None:
                    core.set_json(k("token", old), {**doc, "revoked_at": to_text(at)})
            core.set_json(k("token", token_id), {"agent_id": agent_id, "salt": salt, "hash": digest,
                                                 "created_at": to_text(at), "revoked_at": None})
            core.zadd(k("agent", agent_id, "tokens"), token_id, micros(at))

    def agent_token(self, token_id: str) -> dict[str, Any] | None:
        doc = self.core.get_json(self.core.key("token", token_id))
        if not doc or doc["revoked_at"] is not None:
            return None
        return {"id": token_id, "agent_id": doc["agent_id"], "salt": doc["salt"], "hash": doc["hash"],
                "created_at": from_text(doc["created_at"])}

    def agent_send(self, agent_id: str, key: str) -> dict[str, Any] | None:
        doc = self.core.get_json(self.core.key("asend", agent_id, key))
        return {**doc, "at": from_text(doc["at"])} if doc else None

    def add_agent_send(self, agent_id: str, key: str, conversation_id: str, text: str, message_row: int | None,
                       decision_id: int | None, at: datetime) -> None:
        k, core = self.core.key, self.core
        with core.transaction():
            unique = k("asend", agent_id, key)
            if core.get(unique) is not None:
                raise StoreConflict(f"agent {agent_id!r} already sent with idempotency key {key!r}")
            core.require(unique, None)
            core.set_json(unique, {"agent_id": agent_id, "idempotency_key": key, "conversation_id": conversation_id,
                                   "text": text, "message_row": message_row, "decision_id": decision_id,
                                   "at": to_text(at)})
            if message_row is not None:
                core.zadd(k("conv", conversation_id, "asends"), f"{message_row}|{agent_id}", message_row)

    def agent_message_rows(self, conversation_id: str) -> dict[int, str]:
        rows = self.core.zrange(self.core.key("conv", conversation_id, "asends"))
        return {int(row): agent for row, agent in (m.split("|", 1) for m in rows)}

    def add_event(self, kind: str, ref: str, at: datetime, *, conversation_id: str | None = None,
                  payload: dict[str, Any] | None = None) -> int:
        """Append an event; its id is taken in the EXEC, so this returns 0 inside a larger block
        and the new id (the log's newest) outside one."""
        core = self.core
        nested = core.in_transaction
        with core.transaction():
            core.event(kind, ref, at, conversation_id, payload)
        return 0 if nested else self.last_event_id()

    def events_after(self, after: int, limit: int = 500) -> list[dict[str, Any]]:
        import json

        rows = self.core.redis.zrangebyscore(self.core.key("events"), f"({after}", "+inf", start=0, num=limit)
        out = []
        for row in rows:
            id_, body = row.split(" ", 1)
            event = json.loads(body)
            out.append({"id": int(id_), "at": event["at"], "kind": event["kind"],
                        "conversation_id": event["conversation_id"], "ref": event["ref"],
                        "payload": event["payload"]})
        return out

    def last_event_id(self) -> int:
        return int(self.core.redis.get(self.core.key("events", "seq")) or 0)
