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
from redis_support import GENERIC_SECRET

from bot.store import redis_prefetch
from bot.store.redis_notify import Listener
from bot.store.redis_store import RedisStore, shard_of
from bot.store.redis_tx import member
from bot.web import shared_answers
from connectors.crypto import generic as signing

SECRET = GENERIC_SECRET
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class RoundTrips:
    """Counts what redis-py sends (one send per command or per pipeline) while ``on``."""

    def __init__(self, monkeypatch):
        self.sent: list[str] = []
        self.job: threading.Thread | None = None  # the thread running a counted store job, while it runs
        self.jobs: list[bool] = []  # whether each send came from that job
        self.on = False
        original = redis.connection.AbstractConnection.send_packed_command

        def send(connection, command, check_health=True):
            if self.on and threading.current_thread().name != "kefu-notify":
                self.sent.append(bytes(command[0] if isinstance(command, list) else command)[:60].decode(
                    "utf-8", "replace"))
                self.jobs.append(threading.current_thread() is self.job)
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
def redis_server_parts(redis_generic_server):
    return redis_generic_server


async def test_a_sync_message_on_redis_costs_two_round_trips_where_it_arrives(kefu_client, redis_server_parts,
                                                                          monkeypatch):
    client = await kefu_client(redis_server_parts)
    trips = RoundTrips(monkeypatch)
    # count what the webhooks' store jobs send (the desk's timers run on the same thread)
    answer_round = shared_answers.answer_round

    def counted(server, inbounds):
        trips.job = threading.current_thread()
        try:
            return answer_round(server, inbounds)
        finally:
            trips.job = None

    monkeypatch.setattr(shared_answers, "answer_round", counted)

    async def post(n: int, conversation: str | None = None, text: str = "亲，包邮吗？"):
        payload = {"conversation_id": conversation or f"conv-{n}", "customer_id": f"cust-{n}", "message_id": f"m-{n}",
                   "text": text}
        body = json.dumps(payload, ensure_ascii=False).encode()
        resp = await client.post("/webhook/shop", data=body, headers={
            "X-Kefu-Signature": signing.sign(SECRET, body), "Content-Type": "application/json"})
        assert resp.status == 200
        if text == "亲，包邮吗？":
            assert (await resp.json())["suggestions"][0]["intent"] == "free_shipping"

    await post(0)  # warm: scripts loaded, the shards taken
    trips.on = True
    for n in range(1, 11):
        await post(n)
    trips.on = False
    turns = [sent for sent, job in zip(trips.sent, trips.jobs) if job]
    # accepted, processed and answered in one block where it arrived (bot.web.shared_inbox):
    # one pipelined read and one commit script; it was ~13 with the shard owner answering, 29
    # before the prefetch and the notifications
    assert len(turns) == 2 * 10, turns
    core = redis_server_parts.store.core
    assert sum(core._commit_script.sha[:16] in s for s in turns) == 10, "one commit per message"
    assert sum(core._prefetch.sha[:16] in s for s in turns) == 10, "and one script for every read"
    assert not any("EXISTS" in s for s in trips.sent), "nobody waited for another worker's decision"

    await post(100, "conv-t", "转人工")  # a conversation with an open ticket: the ticket is read ahead too
    assert redis_server_parts.store.open_ticket_for("shop:conv-t") is not None
    trips.sent.clear()
    trips.jobs.clear()
    trips.on = True
    for n in range(101, 104):
        await post(n, "conv-t")
    trips.on = False
    turns = [sent for sent, job in zip(trips.sent, trips.jobs) if job]
    assert len(turns) == 2 * 3, turns
