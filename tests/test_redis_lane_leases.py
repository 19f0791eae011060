"""Outbox lane leases on Redis: kept while a lane runs, one round trip for the sweeper, given back on stop.

bench_workers_kill found lines delivered twice with no worker dead: with one lane per chat and a
backlog, a lane's delivered mark waited on the outbox thread longer than its lease, the other
worker took the lane and sent the head again. `bot.web.lane_leases` renews the leases of running
lanes from its own thread; the sweeper's question (which lanes have work) is one script.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from aiohttp import web
from test_delivery import callback_server, message, post

from bot.store.redis_outbox import RedisOutbox
from bot.store.redis_store import RedisStore
from tests_support import until

pytestmark = pytest.mark.timeout(120)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LEASE = 0.5  # the inbox lease; outbox lanes hold twice as long (1 s)


def worker(url: str) -> RedisStore:
    return RedisStore(url, lease_seconds=LEASE)


def pending_item(store: RedisStore, outbox: RedisOutbox, lane: str, conversation: str = "c1") -> int:
    decision = store.add_decision(conversation, T0, "message", "auto_send", {}, delivery="pending")
    return outbox.enqueue(decision, conversation, "shop", lane, T0).id


def test_renewing_keeps_a_lane_past_its_lease_and_never_steals_one(redis_url):
    a, b = worker(redis_url), worker(redis_url)
    oa, ob = RedisOutbox(a), RedisOutbox(b)
    item = pending_item(a, oa, "shop/c1")
    assert oa.head("shop/c1").id == item
    deadline = time.monotonic() + 3 * oa.lease_ms / 1000
    while time.monotonic() < deadline:  # three leases long, renewed every quarter lease
        assert oa.renew_lanes(["shop/c1"]) == 1
        assert ob.head("shop/c1") is None, "a still runs this lane: b must not take it"
        time.sleep(oa.lease_ms / 4000)
    assert ob.renew_lanes(["shop/c1"]) == 0, "renewing is not taking: the lease stays a's"
    oa.delivered(item, T0)  # a's mark is not refused: nobody took the lane under it
    assert oa.get(item).status == "done"
    time.sleep(oa.lease_ms / 1000 + 0.1)  # a stops renewing (dead): the lease lapses
    second = pending_item(a, oa, "shop/c1")
    assert ob.head("shop/c1").id == second


def test_the_sweepers_question_is_one_call_and_forgets_empty_lanes(redis_url):
    store = worker(redis_url)
    outbox = RedisOutbox(store)
    items = {lane: pending_item(store, outbox, lane, lane.split("/")[1]) for lane in ("shop/a", "shop/b", "shop/c")}
    pending_item(store, outbox, "shop/b", "b")
    assert outbox.lane_depths() == {"shop/a": 1, "shop/b": 2, "shop/c": 1}
    outbox.head("shop/a")
    outbox.delivered(items["shop/a"], T0)
    calls = Counter()
    real = outbox._depths

    def counted(*args, **kwargs):
        calls["script"] += 1
        return real(*args, **kwargs)

    outbox._depths = counted
    assert sorted(outbox.busy_lanes()) == ["shop/b", "shop/c"]
    assert calls["script"] == 1
    assert sorted(store.redis.zrange(outbox._k("lanes"), 0, -1)) == ["shop/b", "shop/c"], "an empty lane is forgotten"
    again = pending_item(store, outbox, "shop/a", "a")  # new work puts the lane back
    assert outbox.busy_lanes() and "shop/a" in outbox.busy_lanes()
    assert outbox.head("shop/a").id == again


def test_release_gives_back_only_this_workers_leases(redis_url):
    a, b = worker(redis_url), worker(redis_url)
    oa, ob = RedisOutbox(a), RedisOutbox(b)
    pending_item(a, oa, "shop/x", "x")
    pending_item(a, oa, "shop/y", "y")
    assert oa.head("shop/x") is not None and ob.head("shop/y") is not None
    oa.release_lanes()
    assert a.redis.get(oa._lease_key("shop/x")) is None
    assert a.redis.get(oa._lease_key("shop/y")) == ob.me, "b's lease is b's to give back"
    assert ob.head("shop/x") is not None, "a released x: b takes it at once"


async def test_a_slow_attempt_is_not_sent_again_by_the_other_worker(redis_url, aiohttp_client, aiohttp_server,
                                                                    engine, caplog):
    """Two servers on one Redis; the callback takes twice the outbox lease to answer. The lane
    keeps its lease while the attempt runs, so the other worker never sends the line again."""
    got: Counter = Counter()
    slow = 2.2 * 2 * LEASE

    async def callback(request):
        body = await request.json()
        got[body["message_id"]] += 1
        await asyncio.sleep(slow)
        return web.json_response({})

    stores = [worker(redis_url), worker(redis_url)]
    servers = [await callback_server(aiohttp_server, callback, engine, store) for store in stores]
    clients = [await aiohttp_client(server.app()) for server in servers]
    for n, text in enumerate(["包邮吗", "发什么快递"]):
        assert (await post(clients[n % 2], "shop", message(f"c{n}", f"m{n}", text, customer=f"b{n}"))).status == 200
    await until(lambda: servers[0].outbox.counts().get("done") == 2, timeout=60)
    await asyncio.sleep(2 * LEASE + 1.5)  # two sweeps of either worker after the marks
    assert dict(got) == {"m0": 1, "m1": 1}
    assert "stopped; the sweeper restarts it" not in caplog.text
    for store in stores:
        store.close()
