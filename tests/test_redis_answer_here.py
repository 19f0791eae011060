"""A sync webhook on Redis answered by the worker that accepted it, in one commit, when order allows.

`bot.web.shared_inbox.accept_and_answer`: accept + process + answer in ONE block (one pipelined
read, one commit script), conditional on none of the conversation's messages waiting in the
inbox and on its state being what the turn read. Otherwise nothing of the block is written and
the message takes the inbox's way (its shard's owner answers it, in order). These tests run a
real server on a real redis-server and check both ways, and the count they rely on.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from redis_support import GENERIC_SECRET

from bot.identity import scope
from bot.store.redis_inbox import ShardConsumer
from bot.store.redis_store import RedisStore, shard_of
from bot.store.redis_tx import StoreConflict
from connectors.crypto import generic as signing

SECRET = GENERIC_SECRET
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def server(redis_generic_server):
    return redis_generic_server


async def post(client, conversation: str, message_id: str, text: str = "亲，包邮吗？"):
    payload = {"conversation_id": conversation, "customer_id": f"cust-{conversation}", "message_id": message_id,
               "text": text}
    body = json.dumps(payload, ensure_ascii=False).encode()
    return await client.post("/webhook/shop", data=body, headers={
        "X-Kefu-Signature": signing.sign(SECRET, body), "Content-Type": "application/json"})


async def test_a_sync_message_with_nothing_queued_is_answered_where_it_arrived_without_an_inbox_entry(
        kefu_client, server):
    client = await kefu_client(server)
    store: RedisStore = server.store
    conversation = scope("shop", "c-1")
    for n in range(3):
        resp = await post(client, "c-1", f"m-{n}")
        assert resp.status == 200
        assert (await resp.json())["suggestions"][0]["intent"] == "free_shipping"
    inbound = [m for m in store.recent_messages(conversation, limit=20) if m.direction == "in"]
    assert [m.message_id for m in inbound] == ["m-0", "m-1", "m-2"]
    assert all(m.processed and store.decision_for_message(m.id) for m in inbound)
    stream = store.inbox_key(shard_of(conversation, store.shards))
    assert store.redis.xlen(stream) == 0, "answered in the accepting block: never queued in the inbox"
    assert store.redis.get(store.queued_key(conversation)) is None
    assert store.unprocessed_messages() == []


async def test_a_message_behind_a_queued_one_waits_for_the_shard_owner_and_comes_second(kefu_client, server):
    owner = RedisStore(server.store.path, lease_seconds=30)  # another worker, holding every shard
    consumer = ShardConsumer(owner)
    try:
        consumer.rebalance(force=True)  # before the server starts: it finds none free
        assert len(consumer.owned) == owner.shards
        client = await kefu_client(server)
        conversation = scope("shop", "c-2")
        first, new = owner.add_message(conversation, "in", "在吗", T0, platform="shop", message_id="m-1",
                                       customer_id=scope("shop", "cust-c-2"))
        assert new and owner.redis.get(owner.queued_key(conversation)) == "1"

        answer = asyncio.create_task(post(client, "c-2", "m-2"))
        entries = []
        for _ in range(100):  # the second message reaches the inbox instead of being answered at once
            entries += await asyncio.to_thread(consumer.poll, 50)
            if len(entries) >= 2:
                break
        rows = [e.row for e in entries]
        assert rows[0] == first and len(rows) == 2, "both in the shard, the queued one first"
        second = rows[1]
        assert not owner.get_message(second).processed, "not answered ahead of the message queued before it"
        for entry in entries:  # the owner answers them in stream order
            assert consumer.begin(entry)
            try:
                with owner.transaction():
                    owner.add_decision(conversation, T0, "message", "suggest", {"by": "owner"}, message_row=entry.row)
                    owner.mark_processed(entry.row)
            finally:
                consumer.end(entry, ack=False)
        resp = await asyncio.wait_for(answer, 10)
        assert resp.status == 200
        decisions = owner.decisions(conversation)
        assert [d["message_row"] for d in decisions] == [first, second]
        assert decisions[1]["payload"] == {"by": "owner"}, "the owner's decision, not a second one made here"
        assert owner.redis.get(owner.queued_key(conversation)) is None, "the count is gone once both are processed"
    finally:
        consumer.release_all()
        owner.close()


def test_a_direct_block_commits_nothing_while_its_conversation_has_queued_messages(redis_url):
    store = RedisStore(redis_url)
    key = store.queued_key("c")
    rows = [store.add_message("c", "in", f"t{n}", T0, platform="p", message_id=f"m{n}")[0] for n in range(2)]
    assert store.redis.get(key) == "2"
    with pytest.raises(StoreConflict):
        with store.transaction():
            store.core._block.direct = True
            store.add_message("c", "in", "t2", T0, platform="p", message_id="m2")
    assert store.redis.get(store._dedupe_key("p", "c", "m2", "t2")) is None, "nothing of the refused block"
    for row in rows:
        with store.transaction():
            store.mark_processed(row)
    assert store.redis.get(key) is None, "absent at zero"
    with store.transaction():
        store.core._block.direct = True
        row, new = store.add_message("c", "in", "t2", T0, platform="p", message_id="m2")
        store.mark_processed(row)
    assert new and store.get_message(row).processed
    assert store.redis.get(key) is None, "a message answered in its accepting block is never counted"
    store.close()


def test_a_direct_turn_is_refused_if_another_turn_changed_its_conversation_meanwhile(redis_url):
    store, other = RedisStore(redis_url), RedisStore(redis_url)
    conv = store.core.key("conv", "c")
    other.save_state("c", "cust", {"n": 0}, T0)
    with pytest.raises(StoreConflict):
        with store.transaction():
            store.core._block.direct = True
            store.core.require(conv, store.core.get(conv))  # what `_accept_and_answer_here` does first
            row, _ = store.add_message("c", "in", "t", T0, platform="p", message_id="m")
            other.save_state("c", "cust", {"n": 1}, T0)  # another worker's turn commits in between
            store.save_state("c", "cust", {"n": 99}, T0)
            store.mark_processed(row)
    assert other.load_state("c") == {"n": 1}
    store.close()
    other.close()


async def test_sync_messages_arriving_together_share_one_commit(kefu_client, server, monkeypatch):
    from bot.web import shared_answers

    client = await kefu_client(server)
    rounds = []
    original = shared_answers.answer_round
    monkeypatch.setattr(shared_answers, "answer_round", lambda s, inbounds: rounds.append(len(inbounds))
                        or original(s, inbounds))
    await post(client, "warm", "w")  # the store thread idle: a round of one
    release = __import__("threading").Event()
    blocked = server.run(release.wait, 10)  # hold the store thread while six webhooks arrive
    posts = [asyncio.create_task(post(client, f"c-{n}", f"m-{n}", "能发顺丰吗")) for n in range(6)]
    await asyncio.sleep(0.5)
    release.set()
    await blocked
    answers = await asyncio.gather(*posts)
    assert [r.status for r in answers] == [200] * 6
    assert rounds[0] == 1 and sum(rounds[1:]) == 6 and max(rounds) > 1, rounds
    store = server.store
    for n in range(6):
        (message,) = [m for m in store.recent_messages(scope("shop", f"c-{n}")) if m.direction == "in"]
        assert message.processed and store.decision_for_message(message.id)["conversation_id"] == scope("shop", f"c-{n}")
    assert store.unprocessed_messages() == []


async def test_a_message_behind_a_waiting_one_leaves_the_round_and_the_others_are_answered(kefu_client, server):
    owner = RedisStore(server.store.path, lease_seconds=30)  # holds every shard and processes nothing
    consumer = ShardConsumer(owner)
    try:
        consumer.rebalance(force=True)
        client = await kefu_client(server)
        waiting = scope("shop", "c-q")
        owner.add_message(waiting, "in", "在吗", T0, platform="shop", message_id="q-1",
                          customer_id=scope("shop", "cust-c-q"))
        release = __import__("threading").Event()
        blocked = server.run(release.wait, 10)
        behind = asyncio.create_task(post(client, "c-q", "q-2"))
        others = [asyncio.create_task(post(client, f"c-{n}", f"m-{n}")) for n in range(3)]
        await asyncio.sleep(0.5)
        release.set()
        await blocked
        answers = await asyncio.wait_for(asyncio.gather(*others), 10)
        assert [r.status for r in answers] == [200] * 3, "answered in the round, without the one that must wait"
        bodies = [await r.json() for r in answers]
        assert all(b["suggestions"][0]["intent"] == "free_shipping" for b in bodies)
        assert not behind.done(), "the one behind a waiting message waits for the shard's owner"
        rows = [m for m in owner.recent_messages(waiting) if m.direction == "in"]
        assert [m.message_id for m in rows] == ["q-1", "q-2"] and not any(m.processed for m in rows)
        resp = await asyncio.wait_for(behind, 10)  # the owner never answers: "accepted" after the wait
        assert resp.status == 200
    finally:
        consumer.release_all()
        owner.close()


async def run_meddled_round(client, server, monkeypatch, conversations: list[str]) -> list[str]:
    """Post one message per entry of ``conversations`` as ONE round; between the round's reads and
    its commit another worker takes a turn of the first conversation. Returns the message ids
    tried again alone, in order."""
    from bot.store import redis_prefetch
    from bot.web import shared_answers

    other = RedisStore(server.store.path)  # another worker
    alone, prefetch = [], redis_prefetch.accept

    def meddling(store, inbounds, now):  # another worker's turn of the first conversation, in between
        prefetch(store, inbounds, now)
        if len(inbounds) > 1 and not alone:
            other.save_state(inbounds[0].conversation_id, "someone", {"meddled": True}, T0)

    original_alone = shared_answers._alone
    monkeypatch.setattr(redis_prefetch, "accept", meddling)
    monkeypatch.setattr(shared_answers, "_alone", lambda s, inbound: alone.append(inbound.message_id)
                        or original_alone(s, inbound))
    try:
        release = __import__("threading").Event()
        blocked = server.run(release.wait, 10)
        # (tasks start in the order they are created: the round holds them in this order)
        posts = [asyncio.create_task(post(client, c, f"m-{n}")) for n, c in enumerate(conversations)]
        await asyncio.sleep(0.5)
        release.set()
        await blocked
        answers = await asyncio.wait_for(asyncio.gather(*posts), 10)
        assert [r.status for r in answers] == [200] * len(conversations)
    finally:
        other.close()
    return alone


async def test_a_refused_turn_of_a_round_wrote_nothing_and_only_it_is_tried_again(kefu_client, server, monkeypatch):
    client = await kefu_client(server)
    alone = await run_meddled_round(client, server, monkeypatch, [f"c-{n}" for n in range(4)])
    assert alone == ["m-0"], "the other turns of the round were committed with it"
    store = server.store
    for n in range(4):
        rows = [m for m in store.recent_messages(scope("shop", f"c-{n}")) if m.direction == "in"]
        assert len(rows) == 1 and rows[0].processed, "stored once: the refused turn wrote nothing"
        assert [d["message_row"] for d in store.decisions(scope("shop", f"c-{n}"))] == [rows[0].id]


async def test_a_turn_that_read_a_refused_turn_is_refused_with_it_and_order_holds(kefu_client, server,
                                                                                   monkeypatch):
    client = await kefu_client(server)
    alone = await run_meddled_round(client, server, monkeypatch, ["c-a", "c-b", "c-a", "c-c"])
    assert alone == ["m-0", "m-2"], "c-a's second message read the first one's writes: refused with it, in order"
    store = server.store
    rows = [m for m in store.recent_messages(scope("shop", "c-a")) if m.direction == "in"]
    assert [m.message_id for m in rows] == ["m-0", "m-2"] and all(m.processed for m in rows)
    decided = [d["message_row"] for d in store.decisions(scope("shop", "c-a")) if d["message_row"]]
    assert decided == [rows[0].id, rows[1].id], "one decision each, in the order they arrived"
    for conversation in ("c-b", "c-c"):
        (row,) = [m for m in store.recent_messages(scope("shop", conversation)) if m.direction == "in"]
        assert row.processed and store.decision_for_message(row.id) is not None
