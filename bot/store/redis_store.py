"""`Store` on Redis, for several `kefu serve` workers on one or many machines (``redis://`` URLs).

What lives where (every key starts with ``kefu:``; ids are zero-padded members so equal scores
order by id, like SQL's ``ORDER BY at, id``):

- a row is one JSON document under ``<table>:<id>`` (``msg:17``, ``dec:4``, ``job:9`` …);
- an index is a sorted set scored by microseconds since the epoch (``conv:<id>:msgs``,
  ``jobs:pending`` by due time, ``msgs:unprocessed`` …) or by id;
- a uniqueness rule is a key holding the row id (``dedupe:<sha1>``, ``jobkey:<key>``,
  ``ticket:open:<conversation>``) written with the condition "still absent";
- the durable inbox is one Redis Stream per shard (``inbox:<n>``, consumer group ``kefu``):
  an accepted message is added to its conversation's shard in the same EXEC that stores it,
  and acknowledged (XACK) in the same EXEC that stores what processing it produced
  (`bot.store.redis_inbox` says who reads which shard, and why that keeps order).

Transactions, conditions and events: `bot.store.redis_tx`. Orders, buyers and order-source
messages: `bot.store.redis_orders`. Tickets, presence and the agent workspace:
`bot.store.redis_desk`. The event log's retention: `bot.store.redis_events`. The outbox rows:
`bot.store.redis_outbox`.
The period reads of the shop reports (`ReportReads`) are SQLite-only for now: run ``kefu
report`` against a SQLite store (docs/scale.md).
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

from bot.store import redis_prefetch
from bot.store.base import Job, Store, StoredMessage
from bot.store.files import StoreError
from bot.store.redis_desk import RedisDesk
from bot.store.redis_events import RedisEventLog
from bot.store.redis_orders import RedisOrders
from bot.store.redis_outbox import worker_name
from bot.store.redis_pushes import RedisReportPushes
from bot.store.redis_tx import RedisCore, dumps, from_text, member, micros, to_text

#: Inbox shards: conversations are spread over this many streams, each read by one worker at a time.
DEFAULT_SHARDS = 16
GROUP = "kefu"


#: Default lease (seconds) of an inbox shard: how long a dead worker's conversations wait for
#: another worker (outbox lanes hold twice as long: `bot.store.redis_outbox`).
DEFAULT_LEASE_SECONDS = 10.0
_OPTIONS = ("lease_seconds",)


def _split_options(url: str) -> tuple[str, dict[str, str]]:
    """kefu's own ``?name=value`` options taken out of the URL; the rest goes to redis-py."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    ours = {k: v for k, v in query if k in _OPTIONS}
    rest = urlencode([(k, v) for k, v in query if k not in _OPTIONS])
    return urlunsplit(parts._replace(query=rest)), ours


def shard_of(conversation_id: str, shards: int) -> int:
    """The conversation's inbox shard: stable across processes and machines (CRC-32, not hash())."""
    return zlib.crc32(conversation_id.encode("utf-8")) % shards


class RedisStore(RedisOrders, RedisDesk, RedisEventLog, RedisReportPushes, Store):
    """`Store` on one Redis database.

    Args:
        url: ``redis://HOST:PORT/DB`` (a password goes in the URL as redis-py reads it).
        shards: How many inbox streams conversations are spread over (every worker of one
            deployment must use the same number; it is recorded in Redis on first open).

    Raises:
        StoreError: Redis cannot be reached, or it holds a different shard count.
    """

    shared_inbox = True  # several servers may share this store (SQLite: one)

    def __init__(self, url: str, *, shards: int = DEFAULT_SHARDS, lease_seconds: float | None = None):
        self.path = url  # what /healthz and error messages name
        url, options = _split_options(url)
        #: How long a worker's hold on an inbox shard or an outbox lane outlives its last renewal:
        #: how soon another worker takes over after a kill -9 (``?lease_seconds=N`` in the URL).
        self.lease_seconds = float(lease_seconds or options.get("lease_seconds", DEFAULT_LEASE_SECONDS))
        self.worker = worker_name()
        client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=30, health_check_interval=30)
        self.core = RedisCore(client)
        self.redis = client
        try:
            client.setnx(self.core.key("meta", "shards"), shards)
            self.shards = int(client.get(self.core.key("meta", "shards")))
            for n in range(self.shards):
                try:
                    client.xgroup_create(self.inbox_key(n), GROUP, id="0", mkstream=True)
                except redis.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
        except redis.RedisError as exc:
            raise StoreError(f"redis store {url}: cannot open ({exc.__class__.__name__}: {exc}); is redis-server "
                             "running there?") from None
        #: row → (stream, entry id, lease key, lease value) of the message a consumer is processing
        self.inflight: dict[int, tuple[str, str, str, str]] = {}
        self._inflight_lock = threading.Lock()
        self.listeners: list[Any] = []

    def inbox_key(self, shard: int) -> str:
        return self.core.key("inbox", shard)

    def queued_key(self, conversation_id: str) -> str:
        """How many of the conversation's messages wait in the inbox (absent: none; `add_message`)."""
        return self.core.key("conv", conversation_id, "queued")

    # --- transactions ---------------------------------------------------------------------------
    def transaction(self):
        return self.core.transaction()

    def probe_write(self) -> None:
        with self.transaction():
            self.core.set(self.core.key("health", "probe"), to_text(datetime.now(UTC)))

    def close(self) -> None:
        for listener in list(self.listeners):  # its notification threads (bot.store.redis_notify)
            listener.stop(timeout=1.0)
        self.redis.close()

    # --- conversations --------------------------------------------------------------------------
    def load_state(self, conversation_id: str) -> dict[str, Any] | None:
        doc = self.core.get_json(self.core.key("conv", conversation_id))
        return doc["state"] if doc else None

    def save_state(self, conversation_id: str, customer_id: str, state: dict[str, Any], at: datetime) -> None:
        k = self.core.key
        with self.transaction():
            old = self.core.get_json(k("conv", conversation_id))
            when = to_text(at)
            if old and old["customer_id"] != customer_id:
                self.core.zrem(k("cust", old["customer_id"], "convs"), conversation_id)
            self.core.set_json(k("conv", conversation_id), {
                "customer_id": customer_id, "state": state, "created_at": old["created_at"] if old else when,
                "updated_at": when,
            })
            score = micros(at)
            self.core.zadd(k("cust", customer_id, "convs"), conversation_id, score)
            self.core.zadd(k("convs"), conversation_id, score)

    def conversation_for_customer(self, customer_id: str) -> str | None:
        rows = self.core.zrange(self.core.key("cust", customer_id, "convs"), desc=True, limit=1)
        return rows[0] if rows else None

    def recent_conversations(self, limit: int = 30) -> list[dict[str, Any]]:
        ids = self.core.zrange(self.core.key("convs"), desc=True, limit=limit)
        docs = self.core.mget_json([self.core.key("conv", i) for i in ids])
        return [{"id": i, "customer_id": d["customer_id"], "updated_at": from_text(d["updated_at"])}
                for i, d in zip(ids, docs) if d]

    # --- messages -------------------------------------------------------------------------------
    def _dedupe_key(self, platform: str, conversation_id: str, message_id: str, text: str) -> str:
        digest = hashlib.sha1(dumps([platform, conversation_id, message_id, text]).encode()).hexdigest()
        return self.core.key("dedupe", digest)

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
        """See `Store.add_message`. Two workers accepting one message at once: one stores it, the
        other's commit is refused (dedupe key no longer absent) and it answers with that row."""
        if direction not in ("in", "out"):
            raise ValueError(f"direction must be 'in' or 'out', not {direction!r}")
        for attempt in range(2):
            try:
                return self._add_message(conversation_id, direction, text, at, platform, message_id, customer_id,
                                         raw)
            except StoreError:
                if attempt or self.core.in_transaction:
                    raise
        raise AssertionError("unreachable")

    def _add_message(self, conversation_id, direction, text, at, platform, message_id, customer_id, raw):
        k, core = self.core.key, self.core
        with self.transaction():
            dedupe = None
            if direction == "in" and platform is not None and message_id is not None:
                dedupe = self._dedupe_key(platform, conversation_id, message_id, text)
                # one round trip (a duplicate wastes the id), none if `redis_prefetch.accept` read it
                redis_prefetch.fill(self, [dedupe], ids=[] if core._block.ids.get("msg") else ["msg"])
                existing = core.get(dedupe)
                if existing is not None:
                    return int(existing), False
                core.require(dedupe, None)
            row = core.next_id("msg")
            when = to_text(at)
            # processed in this very block (a sync answer on its accepting worker), or queued in the inbox
            streamed = direction == "in" and not core._block.direct
            core.set_json(k("msg", row), {
                "conversation_id": conversation_id, "direction": direction, "text": text, "at": when,
                "platform": platform, "message_id": message_id, "processed": direction == "out",
                "customer_id": customer_id, "raw": raw, **({"queued": True} if streamed else {}),
            })
            core._block.reads.setdefault(k("decmsg", row), None)  # a new row has no decision: no read needed
            score = micros(at)
            core.zadd(k("conv", conversation_id, "msgs"), member(row), score)
            core.zadd(k("msgs"), member(row), score)
            if dedupe is not None:
                core.set(dedupe, str(row))
            if direction == "in":
                if streamed:
                    core.zadd(k("msgs", "unprocessed"), member(row), score)
                    shard = shard_of(conversation_id, self.shards)
                    core.call("XADD", self.inbox_key(shard), "*", "row", row)
                    core.call("INCR", self.queued_key(conversation_id))  # the conversation's messages in the inbox
                    core.call("PUBLISH", k("notify", "inbox"), shard)  # wakes the shard's reader (redis_notify)
                else:  # answered here, so only if none of its conversation's earlier messages still waits
                    core.require(self.queued_key(conversation_id), None)
                    # processed before this block commits (or rolled back with it): never listed as unprocessed
                    core._block.put(core._block.fresh, row, True)
            core.event("message", row, at, conversation_id)
            return row, True

    def mark_processed(self, message_row_id: int) -> None:
        """Processed, and — when a shard consumer is processing it — acknowledged in its stream in the
        same EXEC, on condition that this worker still holds the shard (fencing)."""
        k, core = self.core.key, self.core
        with self.transaction():
            raw = core.get(k("msg", message_row_id))
            if raw is None:
                return
            doc = self._loads(raw)
            if doc["processed"]:
                return
            # the row as this block first read it: a worker that processed it meanwhile (a sync
            # answer racing the shard's consumer) makes this EXEC fail, so no second decision
            core.require(k("msg", message_row_id), raw)
            doc["processed"] = True
            core.set_json(k("msg", message_row_id), doc)
            if not core._block.fresh.get(message_row_id):  # (accepted in this direct block: never listed)
                core.zrem(k("msgs", "unprocessed"), member(message_row_id))
            if doc.get("queued"):
                core.decrement(self.queued_key(doc["conversation_id"]))
            with self._inflight_lock:
                taken = self.inflight.get(message_row_id)
            if taken is not None:
                stream, entry, lease_key, lease_value = taken
                core.require(lease_key, lease_value)
                core.call("XACK", stream, GROUP, entry)
            if doc.get("queued"):  # (one answered where it was accepted has nobody waiting for it)
                core.call("PUBLISH", k("notify", "processed"), message_row_id)  # wakes a sync webhook's wait

    def _message(self, row: int, doc: dict[str, Any]) -> StoredMessage:
        return StoredMessage(row, doc["conversation_id"], doc["direction"], doc["text"], from_text(doc["at"]),
                             doc["platform"], doc["message_id"], bool(doc["processed"]), doc["customer_id"],
                             doc["raw"] or {})

    def _messages(self, members: list[str]) -> list[StoredMessage]:
        rows = [int(m) for m in members]
        docs = self.core.mget_json([self.core.key("msg", r) for r in rows])
        return [self._message(r, d) for r, d in zip(rows, docs) if d is not None]

    def get_message(self, message_row_id: int) -> StoredMessage | None:
        key = self.core.key("msg", message_row_id)
        raw = self.core.get(key)
        if raw is None:
            return None
        if self.core.in_transaction:
            self.core.require(key, raw)  # processing reads it first: commit only if nobody changed it
        return self._message(message_row_id, self._loads(raw))

    def unprocessed_messages(self) -> list[StoredMessage]:
        return self._messages(self.core.zrange(self.core.key("msgs", "unprocessed")))

    def recent_messages(self, conversation_id: str, limit: int = 10) -> list[StoredMessage]:
        found = self.core.zrange(self.core.key("conv", conversation_id, "msgs"), desc=True, limit=limit)
        return self._messages(list(reversed(found)))

    # --- decisions ------------------------------------------------------------------------------
    def add_decision(self, conversation_id: str, at: datetime, trigger: str, kind: str, payload: dict[str, Any], *,
                     message_row: int | None = None, delivery: str | None = None) -> int:
        k, core = self.core.key, self.core
        if delivery not in (None, "pending", "done", "failed"):
            raise ValueError(f"unknown delivery {delivery!r}")
        with self.transaction():
            decision_id = core.next_id("dec")
            core.set_json(k("dec", decision_id), {
                "conversation_id": conversation_id, "at": to_text(at), "trigger": trigger, "kind": kind,
                "payload": payload, "message_row": message_row, "delivery": delivery,
            })
            score = micros(at)
            core.zadd(k("decs"), member(decision_id), score)
            core.zadd(k("conv", conversation_id, "decs"), member(decision_id), score)
            if delivery == "pending":
                core.zadd(k("decs", "pending"), member(decision_id), decision_id, fresh=True)  # (a new id)
            if message_row is not None and core.get(k("decmsg", message_row)) is None:
                core.set(k("decmsg", message_row), str(decision_id))
            return decision_id

    @staticmethod
    def _decision(decision_id: int, doc: dict[str, Any]) -> dict[str, Any]:
        return {"id": decision_id, "conversation_id": doc["conversation_id"], "at": from_text(doc["at"]),
                "trigger": doc["trigger"], "kind": doc["kind"], "payload": doc["payload"],
                "message_row": doc["message_row"], "delivery": doc["delivery"]}

    def _decisions(self, members: list[str]) -> list[dict[str, Any]]:
        ids = [int(m) for m in members]
        docs = self.core.mget_json([self.core.key("dec", i) for i in ids])
        return [self._decision(i, d) for i, d in zip(ids, docs) if d is not None]

    def decisions(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        index = self.core.key("decs") if conversation_id is None else self.core.key("conv", conversation_id, "decs")
        return self._decisions(self.core.zrange(index))

    def get_decision(self, decision_id: int) -> dict[str, Any] | None:
        doc = self.core.get_json(self.core.key("dec", decision_id))
        return self._decision(decision_id, doc) if doc else None

    def decision_for_message(self, message_row: int) -> dict[str, Any] | None:
        found = self.core.get(self.core.key("decmsg", message_row))
        return self.get_decision(int(found)) if found else None

    def pending_deliveries(self) -> list[dict[str, Any]]:
        return self._decisions(self.core.zrange(self.core.key("decs", "pending")))

    def set_delivery(self, decision_id: int, delivery: str) -> None:
        k, core = self.core.key, self.core
        if delivery not in ("pending", "done", "failed"):
            raise ValueError(f"unknown delivery {delivery!r}")
        with self.transaction():
            doc = core.get_json(k("dec", decision_id))
            if doc is None:
                return
            doc["delivery"] = delivery
            core.set_json(k("dec", decision_id), doc)
            if delivery == "pending":
                core.zadd(k("decs", "pending"), member(decision_id), decision_id)
            else:
                core.zrem(k("decs", "pending"), member(decision_id))

    # --- jobs -----------------------------------------------------------------------------------
    def schedule(self, key: str, kind: str, due_at: datetime, conversation_id: str,
                 payload: dict[str, Any] | None = None) -> bool:
        """See `Store.schedule`: a key stays taken after its job is done or cancelled."""
        k, core = self.core.key, self.core
        with self.transaction():
            unique = k("jobkey", key)
            if core.get(unique) is not None:
                return False
            core.require(unique, None)
            job_id = core.next_id("job")
            core.set(unique, str(job_id))
            core.set_json(k("job", job_id), {
                "key": key, "kind": kind, "due_at": to_text(due_at), "conversation_id": conversation_id,
                "payload": payload or {}, "status": "pending", "created_at": to_text(datetime.now(UTC)),
                "fired_at": None,
            })
            core.zadd(k("jobs", "pending"), member(job_id), micros(due_at))
            return True

    @staticmethod
    def _job(job_id: int, d: dict[str, Any]) -> Job:
        return Job(id=job_id, key=d["key"], kind=d["kind"], due_at=from_text(d["due_at"]),
                   conversation_id=d["conversation_id"], payload=d["payload"], status=d["status"],
                   created_at=from_text(d["created_at"]), fired_at=from_text(d["fired_at"]) if d["fired_at"] else None)

    def _finish_job(self, job_id: int, status: str, fired_at: datetime | None) -> bool:
        k, core = self.core.key, self.core
        with self.transaction():
            raw = core.get(k("job", job_id))
            if raw is None:
                return False
            doc = self._loads(raw)
            if doc["status"] != "pending":
                return False
            core.require(k("job", job_id), raw)  # another worker claiming it first makes this EXEC fail
            doc["status"] = status
            if fired_at is not None:
                doc["fired_at"] = to_text(fired_at)
            core.set_json(k("job", job_id), doc)
            core.zrem(k("jobs", "pending"), member(job_id))
            return True

    @staticmethod
    def _loads(raw: str) -> dict[str, Any]:
        import json

        return json.loads(raw)

    def cancel(self, key: str) -> bool:
        found = self.core.get(self.core.key("jobkey", key))
        return self._finish_job(int(found), "cancelled", None) if found else False

    def get_job(self, key: str) -> Job | None:
        found = self.core.get(self.core.key("jobkey", key))
        doc = self.core.get_json(self.core.key("job", int(found))) if found else None
        return self._job(int(found), doc) if doc else None

    def due_jobs(self, now: datetime, limit: int = 100) -> list[Job]:
        ids = [int(m) for m in self.core.zrange(self.core.key("jobs", "pending"), "-inf", micros(now), limit=limit)]
        docs = self.core.mget_json([self.core.key("job", i) for i in ids])
        return [self._job(i, d) for i, d in zip(ids, docs) if d and d["status"] == "pending"]

    def claim(self, job_id: int, now: datetime) -> bool:
        """See `Store.claim`. Across workers: the claim is a condition on the job's row, so of two
        workers firing one job only the first EXEC commits; the other's raises `StoreConflict`
        and writes nothing of its firing (the scheduler logs it and the job is done)."""
        return self._finish_job(job_id, "done", now)

    def next_due(self) -> datetime | None:
        rows = self.core.zrange(self.core.key("jobs", "pending"), limit=1, scores=True)
        if not rows:
            return None
        doc = self.core.get_json(self.core.key("job", int(rows[0][0])))
        return from_text(doc["due_at"]) if doc else None
