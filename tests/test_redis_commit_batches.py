"""The commit script's batched writes (one MSET, one ZADD per sorted set, one INCRBY for the
events: `bot.store.redis_scripts.commit_ops`) leave Redis exactly as the writes one by one did.

Checked on a real redis-server: random blocks of documents, sorted-set members, deletes, counters,
raw commands and events, committed by `RedisCore`, against the same writes sent one command at a
time to another database — every key's type and value must match. And a sync turn now costs
fewer Redis commands than the writes it makes (INFO commandstats, a count, not a timing).
"""

from __future__ import annotations

import json
import random
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from bot.store.redis_scripts import BATCH, commit_ops
from bot.store.redis_tx import RedisCore, member


def _other_db(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/1"))


def _dump(client: redis.Redis) -> dict[str, object]:
    out: dict[str, object] = {}
    for key in sorted(client.keys("*")):
        kind = client.type(key)
        out[key] = (kind, client.get(key) if kind == "string" else client.zrange(key, 0, -1, withscores=True)
                    if kind == "zset" else client.dump(key))
    return out


def _one_by_one(client: redis.Redis, core: RedisCore, ops: list[tuple]) -> None:
    """What the commit script did before batching: each write its own command."""
    for kind, *rest in ops:
        if kind == "set":
            client.set(rest[0], rest[1])
        elif kind == "del":
            client.delete(rest[0])
        elif kind == "zadd":
            client.zadd(rest[0], {rest[1]: rest[2]})
        elif kind == "zrem":
            client.zrem(rest[0], rest[1])
        elif kind == "decr0":
            if client.decr(rest[0]) <= 0:
                client.delete(rest[0])
        elif kind == "event":
            n = client.incr(core.key("events", "seq"))
            client.zadd(core.key("events"), {f"{n} {rest[0]}": n})
        else:
            client.execute_command(*rest)


def _random_block(rng: random.Random, core: RedisCore) -> list[tuple]:
    docs = [core.key("doc", n) for n in range(6)]
    sets = [core.key("z", n) for n in range(3)]
    counter = core.key("count")
    ops: list[tuple] = []
    for _ in range(rng.randrange(1, 40)):
        roll = rng.random()
        if roll < 0.3:
            ops.append(("set", rng.choice(docs), json.dumps({"v": rng.randrange(100)})))
        elif roll < 0.55:
            ops.append(("zadd", rng.choice(sets), member(rng.randrange(8)), rng.randrange(50)))
        elif roll < 0.65:
            ops.append(("zrem", rng.choice(sets), member(rng.randrange(8))))
        elif roll < 0.72:
            ops.append(("del", rng.choice(docs + sets)))
        elif roll < 0.85:
            ops.append(("event", json.dumps({"kind": "message", "ref": str(rng.randrange(99))})))
        elif roll < 0.92:
            ops.append(("call", "INCR", counter))
        else:
            ops.append(("decr0", counter))
    return ops


def test_batched_commits_leave_redis_as_the_writes_one_by_one(redis_url):
    core = RedisCore(redis.Redis.from_url(redis_url, decode_responses=True))
    plain = redis.Redis.from_url(_other_db(redis_url), decode_responses=True)
    plain.flushdb()
    rng = random.Random(1202)
    for trial in range(80):
        ops = _random_block(rng, core)
        with core.transaction():
            for kind, *rest in ops:
                if kind == "set":
                    core.set(*rest)
                elif kind == "del":
                    core.delete(*rest)
                elif kind == "zadd":
                    core.zadd(*rest)
                elif kind == "zrem":
                    core.zrem(*rest)
                elif kind == "event":
                    core._need_block().op("event", rest[0])
                elif kind == "decr0":
                    core.decrement(*rest)
                else:
                    core.call(*rest)
        _one_by_one(plain, core, ops)
        assert _dump(core.redis) == _dump(plain), (trial, ops)


def test_a_group_of_writes_becomes_few_commands_and_big_batches_are_split():
    ops = [("set", "kefu:a", "1"), ("zadd", "kefu:z", "m1", 1), ("event", "{}"), ("set", "kefu:b", "2"),
           ("zadd", "kefu:z", "m2", 2), ("event", "{}"), ("zadd", "kefu:y", "m3", 3)]
    flat = commit_ops(ops)
    assert flat == ["mset", 4, "kefu:a", "1", "kefu:b", "2", "zadd", 5, "kefu:z", "1", "m1", "2", "m2",
                    "zadd", 3, "kefu:y", "3", "m3", "events", 2, "{}", "{}"]
    # a write that might touch what is batched sends the batch first, in order
    assert commit_ops([("set", "kefu:a", "1"), ("del", "kefu:a"), ("set", "kefu:a", "2")]) == \
        ["set", 2, "kefu:a", "1", "del", 1, "kefu:a", "set", 2, "kefu:a", "2"]
    many = commit_ops([("set", f"kefu:d{n}", "x") for n in range(BATCH + 1)])
    assert many.count("mset") == 1 and many.count("set") == 1, "at most BATCH values per command (Lua's unpack)"


@pytest.fixture
def redis_server_parts(redis_generic_server):
    return redis_generic_server


async def test_a_sync_turn_costs_fewer_commands_than_its_writes(kefu_client, redis_server_parts):
    from redis_support import GENERIC_SECRET

    from connectors.crypto import generic as signing

    client = await kefu_client(redis_server_parts)

    async def post(n: int) -> None:
        body = json.dumps({"conversation_id": f"conv-{n}", "customer_id": f"cust-{n}", "message_id": f"m-{n}",
                           "text": "亲，包邮吗？"}, ensure_ascii=False).encode()
        resp = await client.post("/webhook/shop", data=body, headers={
            "X-Kefu-Signature": signing.sign(GENERIC_SECRET, body), "Content-Type": "application/json"})
        assert resp.status == 200

    await post(0)  # scripts loaded, shards taken
    info = redis_server_parts.store.redis
    info.config_resetstat()
    for n in range(1, 11):
        await post(n)
    stats = info.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): s["calls"] for name, s in stats.items()}
    # each turn stores its message, the reply line, the decision, the conversation, two buyer
    # links and the dedupe key: seven documents in one MSET, not seven SETs, and the id sequences
    # in another (before: ~97 SETs for these 10 turns, ~100 ZADDs, 20 INCRs of the event sequence
    # and ~75 GETs of conditions); the lease thread may write now and then, hence the slack
    assert 20 <= calls.get("mset", 0) <= 26, calls
    assert calls.get("set", 0) < 3 * 10, calls  # (the shard-lease thread SETs now and then; was ~97)
    # (a turn's two messages share one ZADD per index: 70 here; the worker's heartbeat ZADDs its
    # name now and then, and on a busy CI box one fell inside these turns: 71)
    assert calls.get("zadd", 0) <= 7 * 10 + 3, calls
    # the events' ids: one INCRBY a turn, no INCR (before: 20 INCRs for these 10 turns). INCR is
    # left to the shard-lease thread, one per free shard it takes (16 shards): on a busy CI box
    # it took 13 during these turns, so the bound is the old per-event cost, not 10
    assert calls.get("incr", 0) < 2 * 10, calls
    assert calls.get("incrby", 0) >= 10, calls
    assert calls.get("exists", 0) == 10, calls  # a turn's conditions (all "still absent" here): one EXISTS


@pytest.mark.parametrize("broken", ["absent-but-there", "other-value", "gone"])
def test_a_failed_condition_among_many_is_named_and_nothing_is_written(redis_url, broken):
    """The conditions are checked in two calls (EXISTS, MGET); the one that failed is still the one reported."""
    from bot.store.redis_tx import StoreConflict

    core = RedisCore(redis.Redis.from_url(redis_url, decode_responses=True))
    k = core.key
    core.redis.mset({k("a"): "1", k("b"): "2"})
    with pytest.raises(StoreConflict) as conflict:
        with core.transaction():
            for n in range(5):
                core.require(k("new", n), None)
            core.require(k("a"), core.get(k("a")))
            core.require(k("b"), core.get(k("b")))
            core.set(k("written"), "x")
            if broken == "absent-but-there":
                core.redis.set(k("new", 3), "taken by another worker")
            elif broken == "other-value":
                core.redis.set(k("b"), "changed")
            else:
                core.redis.delete(k("a"))
    named = {"absent-but-there": k("new", 3), "other-value": k("b"), "gone": k("a")}[broken]
    assert str(conflict.value).startswith(f"{named} changed under this worker"), conflict.value
    assert core.redis.get(k("written")) is None
    with core.transaction():  # and when every one holds, it commits
        for n in range(5):
            core.require(k("fresh", n), None)
        core.require(k("b"), core.get(k("b")))
        core.set(k("written"), "y")
    assert core.redis.get(k("written")) == "y"
