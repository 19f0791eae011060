"""A sorted-set read inside a block that wrote to that set reads only its window from Redis.

A turn that hands a conversation over reads its last messages (`recent_messages(…, 10)`) right
after storing the new one, so the read meets the block's own write (its overlay). It used to
read the conversation's WHOLE index from Redis then: a cost that grew with the history, on every
handoff. Now it reads ``limit`` plus one member per change the block made (docs/scale.md §6).
These tests check, on a real redis-server, that the windowed read returns exactly what a plain
read returns once the block is committed, and that it asks Redis for no more than that window.
"""

from __future__ import annotations

import random

import pytest

from bot.store.redis_store import RedisStore
from bot.store.redis_tx import member


@pytest.fixture
def store(redis_url):
    store = RedisStore(redis_url)
    yield store
    store.close()


def _query(core, key, case):
    low, high, desc, limit = case
    return core.zrange(key, low, high, desc=desc, limit=limit, scores=True)


def test_reads_inside_a_block_equal_plain_reads_after_its_commit(store):
    core, key = store.core, store.core.key("z")
    rng = random.Random(20261202)
    for trial in range(60):
        core.redis.delete(key)
        base = {member(n): float(rng.choice([rng.randrange(40), 7])) for n in rng.sample(range(60), rng.randrange(25))}
        if base:
            core.redis.zadd(key, base)
        cases = [(rng.choice(["-inf", 5, "(7", 10]), rng.choice(["+inf", 30, "(7", 7]), rng.random() < 0.6,
                  rng.choice([None, 0, 1, 3, 10])) for _ in range(6)]
        with core.transaction():
            for _ in range(rng.randrange(1, 8)):
                name = member(rng.randrange(60))
                if rng.random() < 0.3:
                    core.zrem(key, name)
                else:  # a new member, or an existing one moved (up, down, across a limit)
                    core.zadd(key, name, float(rng.choice([rng.randrange(40), 7, 50, -1])))
            inside = [_query(core, key, case) for case in cases]
        outside = [_query(core, key, case) for case in cases]
        assert inside == outside, (trial, cases)


def test_a_limited_read_after_a_write_asks_redis_for_its_window_only(store, monkeypatch):
    core, key = store.core, store.core.key("conv", "c1", "msgs")
    core.redis.zadd(key, {member(n): float(n) for n in range(1000)})  # a long history
    asked = []
    plain = core.redis.zrevrangebyscore

    def counted(*args, **kwargs):
        rows = plain(*args, **kwargs)
        asked.append((kwargs.get("num"), len(rows)))
        return rows

    monkeypatch.setattr(core.redis, "zrevrangebyscore", counted)
    with core.transaction():
        core.zadd(key, member(1000), 1000.0)  # the turn's new message
        core.zrem(key, member(998))
        last = core.zrange(key, desc=True, limit=10)
    assert last == [member(n) for n in (1000, 999, *range(997, 989, -1))]
    assert asked == [(12, 12)], "10 wanted + 2 members the block changed, not the 1,000 of the history"


def test_recent_messages_after_a_new_message_in_the_same_block(store):
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
    rows = [store.add_message("c1", "in", f"第{n}条", t0 + timedelta(seconds=n), platform="p", message_id=f"m{n}")[0]
            for n in range(30)]
    with store.transaction():
        new, _ = store.add_message("c1", "in", "转人工", t0 + timedelta(seconds=99), platform="p", message_id="m99")
        assert [m.id for m in store.recent_messages("c1", 10)] == [*rows[-9:], new]


# --- a decision delivered in the turn that made it never touches decs:pending ----------------------


def _sent_ops(monkeypatch, store):
    """The writes each commit sends (after folding), one list per commit."""
    from bot.store import redis_tx

    sent: list[list[tuple]] = []
    original = redis_tx._coalesced

    def recorded(ops, fresh=frozenset()):
        out = original(ops, fresh)
        sent.append(out)
        return out

    monkeypatch.setattr(redis_tx, "_coalesced", recorded)
    return sent


def test_a_decision_made_and_delivered_in_one_block_sends_no_pending_writes(store, monkeypatch):
    from datetime import UTC, datetime

    at = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
    pending = store.core.key("decs", "pending")
    sent = _sent_ops(monkeypatch, store)
    with store.transaction():
        made = store.add_decision("c1", at, "message", "auto_send", {"said": "包邮吗"}, delivery="pending")
        store.set_delivery(made, "done")
    assert not [op for ops in sent for op in ops if pending in op], "neither the ZADD nor the ZREM is sent"
    assert store.pending_deliveries() == [] and store.get_decision(made)["delivery"] == "done"

    # the fold needs both in the block that made the row: delivered by a later block, the ZREM goes
    with store.transaction():
        later = store.add_decision("c1", at, "message", "auto_send", {"said": "在吗"}, delivery="pending")
        kept = store.add_decision("c2", at, "message", "auto_send", {"said": "谢谢"}, delivery="pending")
    assert [d["id"] for d in store.pending_deliveries()] == [later, kept]
    sent.clear()
    with store.transaction():
        store.set_delivery(later, "done")
    assert [op[0] for ops in sent for op in ops if pending in op] == ["zrem"]
    assert [d["id"] for d in store.pending_deliveries()] == [kept]


def test_a_fresh_member_removed_by_another_group_still_reaches_redis(store):
    """Groups stand or fall alone: a ZADD in one group and its ZREM in another are both sent."""
    core, key = store.core, store.core.key("z")
    with core.transaction():
        with core.group():
            core.zadd(key, member(1), 1, fresh=True)
        with core.group():
            core.zrem(key, member(1))
            core.zadd(key, member(2), 2, fresh=True)
    assert core.redis.zrange(key, 0, -1) == [member(2)]
    with core.transaction():
        with core.group():
            core.zadd(key, member(3), 3, fresh=True)
            core.zrem(key, member(3))
            core.zadd(key, member(3), 4, fresh=True)  # added again: the last write stands
    assert core.redis.zrange(key, 0, -1, withscores=True) == [(member(2), 2.0), (member(3), 4.0)]
