"""What a sync turn on Redis writes, how often an idle worker reads its shards, and the counters
a worker logs when it stops (benchmarks/redis_figures.py sums them into the bench's notes).

Per-message work is what decides ``--workers 2 ÷ 1`` on a small box (docs/scale.md §6), so these
tests pin the cuts down as counts on a real redis-server, never as timings.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path

import pytest
from redis_support import GENERIC_SECRET

from bot.identity import scope
from bot.store import redis_tx
from bot.store.redis_inbox import MAX_NAP, ShardConsumer
from bot.store.redis_store import RedisStore
from bot.web import shared_answers
from connectors.crypto import generic as signing

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import redis_figures  # noqa: E402


async def post(client, conversation: str, message_id: str, text: str = "亲，包邮吗？"):
    payload = {"conversation_id": conversation, "customer_id": f"cust-{conversation}", "message_id": message_id,
               "text": text}
    body = json.dumps(payload, ensure_ascii=False).encode()
    resp = await client.post("/webhook/shop", data=body, headers={
        "X-Kefu-Signature": signing.sign(GENERIC_SECRET, body), "Content-Type": "application/json"})
    assert resp.status == 200
    return resp


async def test_a_message_answered_where_it_arrived_is_never_listed_as_unprocessed(kefu_client, redis_generic_server,
                                                                                monkeypatch):
    server = redis_generic_server
    client = await kefu_client(server)
    await post(client, "warm", "w")
    committed: list[list[tuple]] = []
    original = redis_tx.RedisCore._commit

    def commit(core, block):
        committed.append(redis_tx._coalesced(block.ops))
        return original(core, block)

    monkeypatch.setattr(redis_tx.RedisCore, "_commit", commit)
    for n in range(3):
        await post(client, "c-1", f"m-{n}")
    unprocessed = server.store.core.key("msgs", "unprocessed")
    writes = [op for ops in committed for op in ops]
    assert not [op for op in writes if unprocessed in op], "a direct turn neither adds to nor removes from the list"
    assert len([ops for ops in committed if ops]) == 3, "one commit per message"
    store = server.store
    inbound = [m for m in store.recent_messages(scope("shop", "c-1")) if m.direction == "in"]
    assert len(inbound) == 3 and all(m.processed for m in inbound)
    assert store.unprocessed_messages() == []


def test_a_message_through_the_inbox_is_listed_until_processed(redis_url):
    store = RedisStore(redis_url)
    try:
        from datetime import UTC, datetime

        row, _ = store.add_message("c", "in", "在吗", datetime(2026, 12, 1, tzinfo=UTC), platform="p", message_id="m")
        assert [m.id for m in store.unprocessed_messages()] == [row]
        with store.transaction():
            store.mark_processed(row)
        assert store.unprocessed_messages() == []
    finally:
        store.close()


def test_an_idle_worker_reads_its_shards_less_and_less_often_and_at_once_when_woken(redis_url, monkeypatch):
    store = RedisStore(redis_url, shards=2)
    try:
        consumer = ShardConsumer(store)
        consumer.rebalance(force=True)
        assert len(consumer.owned) == 2
        reads = []
        original = consumer._read
        monkeypatch.setattr(consumer, "_read", lambda count: reads.append(1) or original(count))
        consumer.poll(block_ms=1200)  # from the first nap, doubling: 0, .02, .06, .14, .30, .62, 1.12, 1.2
        first = len(reads)
        reads.clear()
        consumer.poll(block_ms=1200)  # the nap stays long across empty polls: 0, .5, 1.0, 1.2
        assert len(reads) <= 1 + 1.2 / MAX_NAP + 1 < first, (first, len(reads))
        reads.clear()
        threading.Timer(0.1, consumer.wake.set).start()  # an "accepted" notification
        consumer.poll(block_ms=300)
        assert len(reads) >= 2, "woken: it reads at once instead of finishing its nap"
    finally:
        store.close()


def test_a_worker_logs_its_commits_refusals_and_rounds(redis_generic_server, caplog):
    server = redis_generic_server
    core = server.store.core
    rounds = shared_answers.Rounds(server)
    server.answer_rounds = rounds
    rounds.figures.rounds, rounds.figures.round_messages, rounds.figures.here = 2, 5, 4
    rounds.figures.inbox, rounds.figures.refused_rounds = 1, 1
    before = core.commits, core.refused
    with pytest.raises(redis_tx.StoreConflict):
        with core.transaction():
            core.require(core.key("probe"), "not-there")
            core.set(core.key("probe"), "1")
    assert (core.commits, core.refused) == (before[0] + 1, before[1] + 1)
    with caplog.at_level(logging.INFO, logger="bot.web.shared_answers"):
        line = shared_answers.log_figures(server)
    assert f"refused={before[1] + 1}" in line and "round_messages=5" in line
    (summary,) = redis_figures.worker_figures("\n".join(f"x kefu: {r.getMessage().split('kefu: ', 1)[1]}"
                                                        for r in caplog.records) + "\n" + caplog.text)[:1]
    assert "sync rounds 4 of 2.50 messages" in summary, summary  # (the line twice: caplog's text and records)
    assert "through the inbox 2" in summary and "2 with a refused turn" in summary


def test_the_bench_watch_counts_commands_and_cpu_per_message(redis_server, redis_url):
    import os

    import redis

    watch = redis_figures.Watch(os.getpid(), redis_server.process.pid, redis_url)
    watch.start()
    client = redis.Redis.from_url(redis_url)
    for n in range(50):
        client.set(f"k{n}", n)
    client.close()
    watch.stop()
    cpu, commands = watch.figures(10, wrk_cpu=0.01)
    assert cpu.startswith("CPU per 2xx message, ms: workers ")
    assert "commands (set 5.00" in commands and "socket reads" in commands, commands
