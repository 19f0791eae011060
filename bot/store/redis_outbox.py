"""The durable outbox (`bot.outbox`) on Redis, with one worker at a time per lane.

Same items, statuses and API as the SQLite `Outbox`; what several workers add is *who drains a
lane*. A lane delivers in order, so two workers must never send from one lane at once: each
lane has a lease (``ob:lease:<lane>``, a short TTL renewed every time the lane looks at its
head). `head` returns the lane's head only to the worker holding — or just taking — the lease,
and every write that finishes an attempt (`delivered`, `failed`) commits on condition that the
worker still holds it. A worker that dies mid-attempt leaves its lease to expire; the next
sweeper of any worker takes the lane over and sends its head again. That re-send, when the
dead worker's attempt had in fact reached the platform, is the at-least-once window of
delivery (docs/scale.md): at most one line per lane per worker death.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime
from typing import Any

from bot.outbox import STATUSES, OutboxItem
from bot.store.redis_tx import StoreConflict, from_text, member, micros, to_text

#: Acquire the lease if free, renew it if ours; 1 if we hold it afterwards.
_LEASE_LUA = """
local v = redis.call('GET', KEYS[1])
if v == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""

#: The lanes with pending items and how many, one round trip whatever the number of lanes; a lane
#: found empty leaves the ``lanes`` set (an enqueue puts it back: `RedisOutbox._save`), so the set
#: stays as large as the lanes in use, not every conversation a per-chat connector ever had.
#: KEYS[1] the ``lanes`` set; ARGV[1] the prefix of a lane's pending set.
_DEPTHS_LUA = """
local out = {}
for _, lane in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local n = redis.call('ZCARD', ARGV[1] .. lane)
  if n > 0 then out[#out + 1] = lane; out[#out + 1] = n else redis.call('ZREM', KEYS[1], lane) end
end
return out
"""

#: Of the lease keys (KEYS), those whose value is ours (ARGV[1]): given back (ARGV[2] = 'release')
#: or renewed to ARGV[3] ms ('renew'). Returns how many were ours.
_OURS_LUA = """
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    if ARGV[2] == 'release' then redis.call('DEL', key) else redis.call('PEXPIRE', key, ARGV[3]) end
    n = n + 1
  end
end
return n
"""


def worker_name() -> str:
    """This process's name in leases and consumer groups: host, pid and a random part (a
    restarted worker that got its old pid back is still a new worker)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class RedisOutbox:
    """The outbox rows of one `RedisStore`."""

    def __init__(self, store: Any, *, lease_seconds: float | None = None):
        self.store = store
        self.core = store.core
        self.me = store.worker
        # twice the inbox lease: it must outlast one delivery attempt (outbox.attempt_timeout, 15 s
        # by default, against the default 10 s lease), or a slow attempt could be sent twice
        self.lease_ms = int((lease_seconds or 2 * store.lease_seconds) * 1000)
        self._lease = store.redis.register_script(_LEASE_LUA)
        self._depths = store.redis.register_script(_DEPTHS_LUA)
        self._ours = store.redis.register_script(_OURS_LUA)
        self._taken: set[str] = set()  # lanes this worker has leased (released on a clean stop)

    def _k(self, *parts: Any) -> str:
        return self.core.key("ob", *parts)

    def _item(self, item_id: int, d: dict[str, Any]) -> OutboxItem:
        return OutboxItem(item_id, d["decision_id"], d["conversation_id"], d["connector"], d["lane"], d["status"],
                          d["attempts"], from_text(d["next_at"]), d["last_error"], from_text(d["created_at"]),
                          from_text(d["updated_at"]))

    def _save(self, item_id: int, before: dict[str, Any] | None, after: dict[str, Any]) -> None:
        core, m = self.core, member(item_id)
        old = before["status"] if before else None
        if old != after["status"]:
            if old:
                core.zrem(self._k("status", old), m)
            core.zadd(self._k("status", after["status"]), m, item_id)
        if old == "pending" and after["status"] != "pending":
            core.zrem(self._k("lane", after["lane"]), m)
        if after["status"] == "pending" and old != "pending":
            core.zadd(self._k("lane", after["lane"]), m, item_id)
            core.zadd(self._k("lanes"), after["lane"], 0)
        if old == "held" and after["status"] != "held":
            core.zrem(self._k("held"), m)
            core.zrem(self._k("held", after["conversation_id"]), m)
        if after["status"] == "held":
            core.zadd(self._k("held"), m, micros(from_text(after["next_at"])))
            core.zadd(self._k("held", after["conversation_id"]), m, item_id)
        core.set_json(self._k(item_id), after)

    def _lease_key(self, lane: str) -> str:
        return self._k("lease", lane)

    def _fenced(self, lane: str) -> None:
        """Commit the current block only if this worker still holds the lane (a free lane is taken
        first: nobody else is sending from it)."""
        self.take_lane(lane)
        self.core.require(self._lease_key(lane), self.me)

    # --- writing ----------------------------------------------------------------------------
    def enqueue(self, decision_id: int, conversation_id: str, connector: str, lane: str, now: datetime,
                *, held_until: datetime | None = None) -> OutboxItem:
        """See `Outbox.enqueue`. Two workers queueing one decision at once (a restarted worker
        queueing what it finds unqueued, while the decision's own worker does): one item."""
        try:
            return self._enqueue(decision_id, conversation_id, connector, lane, now, held_until)
        except StoreConflict:
            if self.core.in_transaction:
                raise
            found = self.for_decision(decision_id)
            if found is None:
                raise
            return found

    def _enqueue(self, decision_id: int, conversation_id: str, connector: str, lane: str, now: datetime,
                 held_until: datetime | None) -> OutboxItem:
        core = self.core
        with core.transaction():
            found = core.get(self._k("dec", decision_id))
            if found is not None:
                return self.get(int(found))
            core.require(self._k("dec", decision_id), None)
            item_id = core.next_id("ob")
            core.set(self._k("dec", decision_id), str(item_id))
            doc = {"decision_id": decision_id, "conversation_id": conversation_id, "connector": connector,
                   "lane": lane, "status": "held" if held_until else "pending", "attempts": 0,
                   "next_at": to_text(held_until or now), "last_error": None, "created_at": to_text(now),
                   "updated_at": to_text(now)}
            self._save(item_id, None, doc)
            core.zadd(self._k("all"), member(item_id), item_id)
            return self._item(item_id, doc)

    def delivered(self, item_id: int, now: datetime) -> None:
        self._finish(item_id, "done", "done", None, now, fence=True)

    def failed(self, item: OutboxItem, error: str, now: datetime, next_at: datetime | None) -> None:
        if next_at is None:
            self._finish(item.id, "dead", "failed", error, now, attempts=item.attempts + 1, fence=True)
            return
        with self.core.transaction():
            doc = self.core.get_json(self._k(item.id))
            if doc is None or doc["status"] != "pending":
                return
            self._fenced(doc["lane"])
            after = {**doc, "attempts": doc["attempts"] + 1, "last_error": error[:500], "next_at": to_text(next_at),
                     "updated_at": to_text(now)}
            self._save(item.id, doc, after)

    def _finish(self, item_id: int, status: str, delivery: str, error: str | None, now: datetime,
                attempts: int | None = None, fence: bool = False) -> None:
        with self.core.transaction():
            doc = self.core.get_json(self._k(item_id))
            if doc is None:
                return
            if fence and doc["status"] == "pending":
                self._fenced(doc["lane"])
            after = {**doc, "status": status, "updated_at": to_text(now),
                     "last_error": error[:500] if error else doc["last_error"],
                     "attempts": attempts if attempts is not None else doc["attempts"]}
            self._save(item_id, doc, after)
            self.store.set_delivery(doc["decision_id"], delivery)

    def take_held(self, conversation_id: str, now: datetime) -> list[OutboxItem]:
        self.expire_held(now)
        with self.core.transaction():
            ids = [int(m) for m in self.core.zrange(self._k("held", conversation_id))]
            items = [self.get(i) for i in ids]
            items = [i for i in items if i is not None and i.status == "held"]
            for item in items:
                self._finish(item.id, "done", "done", None, now)
        return items

    def expire_held(self, now: datetime) -> int:
        with self.core.transaction():
            ids = [int(m) for m in self.core.zrange(self._k("held"), "-inf", micros(now))]
            for item_id in ids:
                self._finish(item_id, "expired", "failed", "held line expired: no response carried it", now)
        return len(ids)

    def _select(self, ids: list[int] | None, with_ids: tuple[str, ...]) -> list[int]:
        if ids is None:
            return [int(m) for m in self.core.zrange(self._k("status", "dead"))]
        found = []
        for item_id in ids:
            item = self.get(item_id)
            if item is not None and item.status in with_ids:
                found.append(item_id)
        return found

    def retry(self, ids: list[int] | None, now: datetime) -> int:
        with self.core.transaction():
            chosen = self._select(ids, ("dead", "dropped"))
            for item_id in chosen:
                doc = self.core.get_json(self._k(item_id))
                after = {**doc, "status": "pending", "attempts": 0, "next_at": to_text(now), "updated_at": to_text(now)}
                self._save(item_id, doc, after)
                self.store.set_delivery(doc["decision_id"], "pending")
        return len(chosen)

    def drop(self, ids: list[int] | None, now: datetime) -> int:
        with self.core.transaction():
            chosen = self._select(ids, ("dead", "pending", "held"))
            for item_id in chosen:
                self._finish(item_id, "dropped", "failed", None, now)
        return len(chosen)

    # --- reading ----------------------------------------------------------------------------
    def for_decision(self, decision_id: int) -> OutboxItem | None:
        found = self.core.get(self._k("dec", decision_id))
        return self.get(int(found)) if found else None

    def get(self, item_id: int) -> OutboxItem | None:
        doc = self.core.get_json(self._k(item_id))
        return self._item(item_id, doc) if doc else None

    def head(self, lane: str) -> OutboxItem | None:
        """The lane's oldest pending item — None when the lane is empty or another worker holds it."""
        first = self.core.zrange(self._k("lane", lane), limit=1)
        if not first:
            return None
        if not self.take_lane(lane):
            return None
        return self.get(int(first[0]))

    def take_lane(self, lane: str) -> bool:
        """Take or renew this lane's lease; False while another live worker holds it."""
        taken = bool(self._lease(keys=[self._lease_key(lane)], args=[self.me, self.lease_ms]))
        if taken:
            self._taken.add(lane)
        return taken

    def renew_lanes(self, lanes: list[str]) -> int:
        """Renew the leases this worker holds among ``lanes`` (`bot.web.lane_leases`); how many it held."""
        return self._each_of_ours(lanes, "renew")

    def release_lanes(self) -> None:
        """Give back every lane this worker holds (a clean stop: others take over at once)."""
        self._each_of_ours(sorted(self._taken), "release")
        self._taken.clear()

    def _each_of_ours(self, lanes: list[str], action: str) -> int:
        """`_OURS_LUA` over ``lanes``' leases, 500 keys a call."""
        held = 0
        for start in range(0, len(lanes), 500):
            keys = [self._lease_key(lane) for lane in lanes[start : start + 500]]
            held += int(self._ours(keys=keys, args=[self.me, action, self.lease_ms]))
        return held

    def busy_lanes(self) -> list[str]:
        """The lanes with pending items: the sweeper's question every second, one round trip."""
        return list(self.lane_depths())

    def lane_depths(self) -> dict[str, int]:
        flat = self._depths(keys=[self._k("lanes")], args=[self._k("lane", "")])
        return {str(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    def items(self, status: str | None = None, limit: int = 1000) -> list[OutboxItem]:
        index = self._k("all") if status is None else self._k("status", status)
        ids = [int(m) for m in self.core.zrange(index, desc=True, limit=limit)]
        docs = self.core.mget_json([self._k(i) for i in ids])
        return [self._item(i, d) for i, d in reversed(list(zip(ids, docs))) if d]

    def counts(self) -> dict[str, int]:
        return {status: self.core.zcard(self._k("status", status)) for status in STATUSES}

    def unqueued_decisions(self) -> list[dict[str, Any]]:
        return [d for d in self.store.pending_deliveries() if self.core.get(self._k("dec", d["id"])) is None]
