"""Row ids on Redis: taken without an fsync of their own, never handed out twice.

With ``appendfsync always`` every write costs redis-server an fsync (~1.7 ms here, Redis blocked
for everyone meanwhile), and a round's prefetch used to INCRBY the id sequences: one fsync per round
on top of its commit. Ids are now taken without writing the append-only file
(`redis_scripts.TAKE_IDS_LUA`), and the commit script persists every sequence at least as high as
the ids its block took. These tests run their own redis-server (restarted mid-way: its AOF replayed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis_support import REDIS_SERVER, RedisServer

from bot.store import redis_prefetch
from bot.store.redis_store import RedisStore
from bot.store.redis_tx import StoreConflict
from tests_support import need_service

T0 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def own_redis(tmp_path):
    need_service(Path(REDIS_SERVER).exists(), f"{REDIS_SERVER} is not installed (apt-get install redis-server)")
    server = RedisServer(tmp_path / "redis")
    server.folder.mkdir()
    server.start()
    yield server
    server.stop()


def aof_bytes(server: RedisServer) -> int:
    return sum(f.stat().st_size for f in server.folder.rglob("*.aof") if f.is_file())


def test_ids_taken_for_a_block_write_nothing_until_its_commit_persists_them(own_redis):
    store = RedisStore(own_redis.url)
    try:
        before = aof_bytes(own_redis)
        with store.transaction():
            redis_prefetch.fill(store, [store.core.key("msg", 1)], ids=["msg", "msg", "dec"])  # the round's prefetch
            taken = [store.core.next_id("msg"), store.core.next_id("msg"), store.core.next_id("msg")]
            ticket = store.core.next_id("ticket")  # past the prefetched ones: taken now, still no write
            assert aof_bytes(own_redis) == before, "taking ids wrote the append-only file (an fsync each)"
            row, new = store.add_message("c1", "in", "在吗", T0, platform="p", message_id="m1")
        assert new and aof_bytes(own_redis) > before
        assert taken == [1, 2, 3] and ticket == 1 and row == 4
    finally:
        store.close()
    own_redis.stop()
    own_redis.start()  # the AOF replayed: only what the commit persisted
    store = RedisStore(own_redis.url)
    try:
        assert store.get_message(row).text == "在吗"
        assert store.core.next_id("msg") == 5, "an id the committed block took was handed out again"
        assert store.core.next_id("ticket") == 2
        assert store.core.next_id("dec") == 2
    finally:
        store.close()


def test_ids_taken_before_redis_restarted_are_persisted_by_the_commit(own_redis):
    """Redis restarts while a block is open: its taken ids were never written, so the counter is
    back below them — the commit must lift it, or the next block would reuse a committed row's id."""
    store = RedisStore(own_redis.url)
    try:
        with store.transaction():
            redis_prefetch.fill(store, [], ids=["msg"] * 3)
            own_redis.stop()
            own_redis.start()
            row, _ = store.add_message("c1", "in", "在吗", T0, platform="p", message_id="m1")
        assert row == 1
        with store.transaction():
            other, _ = store.add_message("c2", "in", "包邮吗", T0, platform="p", message_id="m2")
        assert other == 4, "the sequence after the commit is at least the highest id its block took"
        assert store.get_message(row).text == "在吗" and store.get_message(other).text == "包邮吗"
    finally:
        store.close()


def test_a_commit_never_lowers_a_sequence(own_redis):
    store = RedisStore(own_redis.url)
    try:
        key = store.core.key("seq", "msg")
        with store.transaction():
            row = store.core.next_id("msg")
            store.redis.incrby(key, 100)  # another worker took 100 ids meanwhile
            store.core.set(store.core.key("doc", row), "x")
        assert int(store.redis.get(key)) == 101
    finally:
        store.close()


def test_an_id_handed_out_again_after_a_restart_refuses_the_stale_block(own_redis):
    """Block A took ids, Redis restarted (they were never written), block B took the same ids and
    committed: A's commit must write nothing rather than overwrite B's rows."""
    stale, fresh = RedisStore(own_redis.url), RedisStore(own_redis.url)
    try:
        with pytest.raises(StoreConflict), stale.transaction():
            redis_prefetch.fill(stale, [], ids=["msg"] * 2)
            own_redis.stop()
            own_redis.start()
            with fresh.transaction():
                theirs, _ = fresh.add_message("c2", "in", "包邮吗", T0, platform="p", message_id="m2")
            mine, _ = stale.add_message("c1", "in", "在吗", T0, platform="p", message_id="m1")
            assert mine == theirs == 1
        assert fresh.get_message(1).text == "包邮吗"
        row, new = stale.add_message("c1", "in", "在吗", T0, platform="p", message_id="m1")  # tried again
        assert new and row > 1 and fresh.get_message(row).text == "在吗" and fresh.get_message(1).text == "包邮吗"
    finally:
        stale.close()
        fresh.close()
