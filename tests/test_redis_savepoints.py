"""Savepoints of the Redis store's transactions are a length of an undo log, not a copy.

Every store method is a nested block, so a round of 16 sync turns opens ~400 savepoints; when
each copied the block's documents and sorted-set overlays, a turn cost more the more turns its
round held (one worker, with the largest rounds, paid most per message). `_Block` now records
how to undo each change and a savepoint is a position in that log. These tests check that
rolling back restores exactly what a full copy would have, on random programs of writes.
"""

from __future__ import annotations

import copy
import random

import pytest
import redis

from bot.store.redis_tx import RedisCore


@pytest.fixture
def core():
    # no server needed: these blocks only write (reads would reach Redis) and never commit
    return RedisCore(redis.Redis(host="127.0.0.1", port=1, decode_responses=True))


def state(core):
    block = core._block
    return (list(block.ops), copy.deepcopy(block.docs), copy.deepcopy(block.zsets), dict(block.conditions),
            list(block.after_commit), dict(block.fresh), list(block.op_groups), list(block.after_groups),
            dict(block.writer), dict(block.group_conditions), dict(block.deps))


def write(core, rng: random.Random) -> None:
    key = f"k{rng.randrange(4)}"
    kind = rng.randrange(6)
    if kind == 0:
        core.set(key, str(rng.random()))
    elif kind == 1:
        core.zadd(key, f"m{rng.randrange(3)}", rng.randrange(100))
    elif kind == 2:
        core.zrem(key, f"m{rng.randrange(3)}")
    elif kind == 3:
        core.delete(key)
    elif kind == 4:
        core.require(f"c{rng.randrange(4)}", rng.choice([None, "x"]))
        if key in core._block.docs:
            core.require(key, "read")  # a key an earlier group may have written: a dependency
    else:
        core._block.put(core._block.fresh, rng.randrange(5), True)
        core.after_commit(lambda: None)


class Undone(Exception):
    pass


def program(core, rng: random.Random, depth: int) -> None:
    for _ in range(rng.randrange(1, 6)):
        if depth < 3 and rng.random() < 0.3:
            before = state(core)
            fails = rng.random() < 0.5
            try:
                with core.transaction(), core.group():
                    program(core, rng, depth + 1)
                    if fails:
                        raise Undone
            except Undone:
                assert state(core) == before, "a rolled-back savepoint left something behind"
        else:
            write(core, rng)


@pytest.mark.parametrize("seed", range(60))
def test_a_rolled_back_savepoint_restores_exactly_what_was_there(core, seed):
    rng = random.Random(seed)
    with pytest.raises(Undone):
        with core.transaction():
            program(core, rng, 0)
            raise Undone  # the outer block is dropped whole: nothing is sent to Redis
    assert core._block is None


def test_an_inner_block_that_succeeds_keeps_its_writes_for_the_outer_one_to_drop(core):
    with pytest.raises(Undone):
        with core.transaction():
            core.set("a", "1")
            try:
                with core.transaction():
                    with core.transaction():
                        core.set("a", "2")
                        core.zadd("z", "m", 1)
                    core.delete("z")
                    core.require("c", None)
                    assert core._block.docs == {"a": "2", "z": None}
                    raise Undone
            except Undone:
                pass
            assert core._block.docs == {"a": "1"}
            assert core._block.zsets == {} and core._block.conditions == {}
            assert [op[0] for op in core._block.ops] == ["set"]
            raise Undone


def test_a_refused_group_writes_nothing_nor_does_a_group_that_read_it_and_the_rest_commits(redis_url):
    """A grouped block (a round of sync turns): each group is committed or refused on its own."""
    from bot.store.redis_tx import GroupsRefused

    core = RedisCore(redis.Redis.from_url(redis_url, decode_responses=True))
    k = core.key
    core.redis.set(k("watched"), "before")
    ran = []
    with pytest.raises(GroupsRefused) as refused:
        with core.transaction():
            with core.group() as one:
                core.set(k("a"), "1")
                core.after_commit(lambda: ran.append("one"))
            with core.group() as two:
                core.require(k("watched"), core.get(k("watched")))
                core.set(k("b"), "2")
                core.zadd(k("z"), "m2", 2)
                core.after_commit(lambda: ran.append("two"))
            with core.group() as three:
                assert core.get(k("b")) == "2"  # reads what group two wrote: stands or falls with it
                core.set(k("c"), "3")
            with core.group() as four:
                core.set(k("d"), "4")
                core.zadd(k("z"), "m4", 4)
                core.after_commit(lambda: ran.append("four"))
            core.redis.set(k("watched"), "changed by another worker")  # before the commit
    assert refused.value.groups == {two, three}
    assert one not in refused.value.groups and four not in refused.value.groups
    assert core.redis.mget(k("a"), k("b"), k("c"), k("d")) == ["1", None, None, "4"]
    assert core.redis.zrange(k("z"), 0, -1) == ["m4"]
    assert ran == ["one", "four"], "after-commit callbacks of committed groups only"
    assert (core.commits, core.refused) == (1, 1)


def test_a_block_without_groups_is_still_all_or_nothing(redis_url):
    from bot.store.redis_tx import GroupsRefused, StoreConflict

    core = RedisCore(redis.Redis.from_url(redis_url, decode_responses=True))
    k = core.key
    with pytest.raises(StoreConflict) as refused:
        with core.transaction():
            core.require(k("absent"), None)
            core.set(k("a"), "1")
            core.redis.set(k("absent"), "now here")
    assert not isinstance(refused.value, GroupsRefused)
    assert core.redis.get(k("a")) is None
