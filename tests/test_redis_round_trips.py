"""What a turn costs in Redis round trips, and that the shortcuts read what a plain read would.

The levers of multi-worker throughput on a small box (docs/scale.md): the commits publish "accepted
on shard N" and "row R processed" (bot.store.redis_notify) so nobody polls, and a turn's reads
are pipelined into the transaction's cache (bot.store.redis_prefetch). These tests count round
trips on a real redis-server — a count, not a timing — and check every prefetched read equals
the read it replaces.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import redis.connection
from redis_support import open_backend

from bot.store import redis_prefetch
from bot.store.redis_notify import Listener
from bot.store.redis_store import RedisStore, shard_of
from bot.store.redis_tx import member
from connectors.crypto import generic as signing

SECRET = "test-secret-0123456789abcdef"
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
#: what else runs on the store's thread meanwhile: the desk timer's look at tickets, and the
#: decisions a dead owner left unqueued (looked at when shards are taken)
BACKGROUND = ("kefu:tickets:", "kefu:decs:pending")


class RoundTrips:
    """Counts what redis-py sends (one send per command or per pipeline) while ``on``."""

    def __init__(self, monkeypatch):
        self.sent: list[str] = []
        self.threads: list[str] = []  # who sent each
        self.on = False
        original = redis.connection.AbstractConnection.send_packed_command

        def send(connection, command, check_health=True):
            if self.on and threading.current_thread().name != "kefu-notify":
                self.sent.append(bytes(command[0] if isinstance(command, list) else command)[:60].decode(
                    "utf-8", "replace"))
                self.threads.append(threading.current_thread().name)
            return original(connection, command, check_health)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", send)


def test_a_listener_hears_what_the_commits_publish(redis_url):
    store = RedisStore(redis_url)
    shards, rows = [], []
    listener = Listener(store, shards.append, rows.append).start()
    try:
        assert listener.subscribed.wait(5)
        row, _ = store.add_message("c1", "in", "在吗", T0, platform="p", message_id="m1")
        with store.transaction():
            store.mark_processed(row)
        deadline = datetime.now(UTC) + timedelta(seconds=5)
        while (not shards or not rows) and datetime.now(UTC) < deadline:
            threading.Event().wait(0.02)
        assert shards == [shard_of("c1", store.shards)]
        assert rows == [row]
    finally:
        store.close()
    assert not listener._thread.is_alive(), "closing the store ends its listener"


def test_prefetched_reads_equal_plain_reads_and_ids_are_taken_ahead(redis_url):
    store = RedisStore(redis_url)
    k = store.core.key
    with store.transaction():
        store.core.set_json(k("doc", 1), {"a": 1})
        for n, score in enumerate((10, 20, 30)):
            store.core.zadd(k("z"), member(n), score)
    plain = (store.core.get(k("doc", 1)), store.core.zrange(k("z"), "-inf", 25), store.core.zrange(k("z"), desc=True))
    before = int(store.redis.get(k("seq", "dec")) or 0)
    with store.transaction():
        redis_prefetch.fill(store, [k("doc", 1), k("doc", 2)], zranges=[(k("z"), "-inf", "+inf")], ids=["dec"])
        store.redis.set(k("doc", 1), "changed behind the block's back")  # the block reads its snapshot
        assert (store.core.get(k("doc", 1)), store.core.zrange(k("z"), "-inf", 25),
                store.core.zrange(k("z"), desc=True)) == plain
        assert store.core.get(k("doc", 2)) is None
        assert store.core.next_id("dec") == before + 1, "the id the prefetch took"
        assert store.core.next_id("dec") == before + 2, "then INCR as before"
        store.core.zadd(k("z"), member(9), 15)  # the block's own write: the overlay, not the cache
        assert store.core.zrange(k("z"), "-inf", 25) == [member(0), member(9), member(1)]


def test_a_span_prefetched_serves_only_queries_inside_it(redis_url):
    store = RedisStore(redis_url)
    k = store.core.key
    with store.transaction():
        for n, score in enumerate((10, 20, 30)):
            store.core.zadd(k("z"), member(n), score)
    with store.transaction():
        redis_prefetch.fill(store, [], zranges=[(k("z"), "-inf", 20)])
        with store.transaction():
            store.redis.zadd(k("z"), {member(7): 5})  # lands in Redis, outside the block
        assert store.core.zrange(k("z"), "-inf", 20) == [member(0), member(1)], "from the prefetched span"
        assert store.core.zrange(k("z"), "-inf", 30) == [member(7), member(0), member(1), member(2)], \
            "a query past the span reads Redis"


@pytest.fixture
def redis_server_parts(request, kefu_app, tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_GENERIC_SECRET", SECRET)
    store = open_backend("redis", tmp_path, request)
    yield kefu_app(connectors={"shop": {"type": "generic", "secret": "${KEFU_GENERIC_SECRET}"}}, store=store).server
    store.close()


async def test_a_sync_message_on_redis_costs_two_round_trips_where_it_arrives(kefu_client, redis_server_parts,
                                                                          monkeypatch):
    client = await kefu_client(redis_server_parts)
    trips = RoundTrips(monkeypatch)

    async def post(n: int):
        payload = {"conversation_id": f"conv-{n}", "customer_id": f"cust-{n}", "message_id": f"m-{n}",
                   "text": "亲，包邮吗？"}
        body = json.dumps(payload, ensure_ascii=False).encode()
        resp = await client.post("/webhook/shop", data=body, headers={
            "X-Kefu-Signature": signing.sign(SECRET, body), "Content-Type": "application/json"})
        assert resp.status == 200
        assert (await resp.json())["suggestions"][0]["intent"] == "free_shipping"

    await post(0)  # warm: scripts loaded, the shards taken
    trips.on = True
    for n in range(1, 11):
        await post(n)
    trips.on = False
    turns = [sent for sent, thread in zip(trips.sent, trips.threads)
             if thread == "kefu-worker" and not any(k in sent for k in BACKGROUND)]
    # accepted, processed and answered in one block where it arrived (bot.web.shared_inbox):
    # one pipelined read and one commit script; it was ~13 with the shard owner answering, 29
    # before the prefetch and the notifications
    assert len(turns) == 2 * 10, turns
    assert sum("EVALSHA" in s for s in turns) == 10, "one commit per message"
    assert not any("EXISTS" in s for s in trips.sent), "nobody waited for another worker's decision"
