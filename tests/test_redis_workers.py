"""Several workers on one Redis: shard leases, fencing, takeover after a death, outbox lanes, --workers.

Each "worker" here is its own `RedisStore` (its own connection and worker name), as each
process of `kefu serve --workers N` has; leases are short so takeovers happen within a test.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from bot.store.redis_inbox import ShardConsumer
from bot.store.redis_outbox import RedisOutbox
from bot.store.redis_store import RedisStore, shard_of
from bot.store.redis_tx import StoreConflict

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LEASE = 1.0


def worker(url: str, shards: int = 4, lease: float = LEASE) -> RedisStore:
    return RedisStore(url, shards=shards, lease_seconds=lease)


def accept(store: RedisStore, conversation: str, n: int) -> int:
    row, new = store.add_message(conversation, "in", f"text {n}", T0 + timedelta(seconds=n), platform="p",
                                 message_id=f"{conversation}-{n}")
    assert new
    return row


def process(store: RedisStore, consumer: ShardConsumer, entry) -> None:
    """What the server's shard worker does for one entry, minus the assistant: decide and mark."""
    assert consumer.begin(entry)
    try:
        with store.transaction():
            message = store.get_message(entry.row)
            store.add_decision(message.conversation_id, T0, "message", "suggest", {}, message_row=entry.row)
            store.mark_processed(entry.row)
    finally:
        consumer.end(entry, ack=False)


def balance(*consumers: ShardConsumer, shards: int = 4) -> None:
    """Rebalance in turns until every shard is held and the shares are fair (bounded: a loaded
    machine can let a heartbeat lapse between two turns, which changes the fair share)."""
    for _ in range(30):
        for consumer in consumers:
            consumer.rebalance(force=True)
        held = [len(c.owned) for c in consumers]
        if sum(held) == shards and max(held) - min(held) <= 1:
            return
    raise AssertionError(f"shards never balanced: {held}")


def drain(store: RedisStore, consumer: ShardConsumer, rounds: int = 20) -> list[int]:
    done = []
    for _ in range(rounds):
        consumer.renew()  # the server's heartbeat, between entries here
        entries = consumer.poll(block_ms=20)
        if not entries and done:
            break
        for entry in entries:
            consumer.renew()
            process(store, consumer, entry)
            done.append(entry.row)
    return done


def test_shards_are_spread_evenly_and_each_is_held_by_one_worker(redis_url):
    a, b = worker(redis_url), worker(redis_url)
    ca, cb = ShardConsumer(a), ShardConsumer(b)
    ca.rebalance(force=True)
    assert len(ca.owned) == 4, "alone, a worker takes every shard"
    balance(ca, cb)  # b is alive now: a gives half back at its next look
    assert len(ca.owned) == len(cb.owned) == 2
    assert not set(ca.owned) & set(cb.owned)


def test_each_conversation_is_processed_in_order_by_the_owner_of_its_shard(redis_url):
    # leases long enough that b keeps its shards while a drains on a loaded machine (no takeover here)
    a, b = worker(redis_url, lease=10.0), worker(redis_url, lease=10.0)
    ca, cb = ShardConsumer(a), ShardConsumer(b)
    balance(ca, cb)
    rows = {f"c{i}": [] for i in range(8)}
    for n in range(5):  # accepted by alternating workers, as a load balancer would
        for i, conversation in enumerate(rows):
            rows[conversation].append(accept(a if (n + i) % 2 else b, conversation, n))
    done_a, done_b = drain(a, ca), drain(b, cb)
    assert sorted(done_a + done_b) == sorted(r for rs in rows.values() for r in rs), "each once"
    for conversation, expected in rows.items():
        mine = done_a if shard_of(conversation, 4) in ca.owned else done_b
        assert [r for r in mine if r in expected] == expected, "in acceptance order, all on one worker"
    assert a.unprocessed_messages() == []


def test_a_dead_workers_unacknowledged_messages_are_claimed_in_order_by_another(redis_url):
    dead, alive = worker(redis_url, shards=1), worker(redis_url, shards=1)
    cd = ShardConsumer(dead)
    cd.rebalance(force=True)
    rows = [accept(alive, "c1", n) for n in range(4)]
    entries = cd.poll(block_ms=20)
    assert [e.row for e in entries] == rows
    process(dead, cd, entries[0])  # then kill -9: three read, never acknowledged
    ca = ShardConsumer(alive)
    ca.rebalance(force=True)
    assert ca.owned == {}, "the dead worker's lease still holds"
    time.sleep(LEASE + 0.1)
    ca.rebalance(force=True)
    assert list(ca.owned) == [0]
    later = accept(alive, "c1", 9)
    assert drain(alive, ca) == [*rows[1:], later], "the old owner's pending first, in order, then the new"
    assert [d["message_row"] for d in alive.decisions("c1")] == [*rows, later]


def test_a_worker_that_lost_its_lease_cannot_commit_over_the_new_owner(redis_url):
    slow, fast = worker(redis_url, shards=1), worker(redis_url, shards=1)
    cs = ShardConsumer(slow)
    cs.rebalance(force=True)
    row = accept(fast, "c1", 0)
    (entry,) = cs.poll(block_ms=20)
    assert cs.begin(entry)
    time.sleep(LEASE + 0.1)  # a long pause: the lease runs out mid-turn
    cf = ShardConsumer(fast)
    cf.rebalance(force=True)
    assert list(cf.owned) == [0]
    with pytest.raises(StoreConflict):
        with slow.transaction():
            slow.add_decision("c1", T0, "message", "suggest", {"by": "slow"}, message_row=row)
            slow.mark_processed(row)
    cs.end(entry, ack=False)
    assert drain(fast, cf) == [row]
    assert [d["payload"] for d in fast.decisions("c1")] == [{}], "only the new owner's decision exists"


def test_a_stale_worker_reads_nothing_from_a_shard_it_lost(redis_url):
    a, b = worker(redis_url, shards=1), worker(redis_url, shards=1)
    ca = ShardConsumer(a)
    ca.rebalance(force=True)
    time.sleep(LEASE + 0.1)
    cb = ShardConsumer(b)
    cb.rebalance(force=True)  # b owns the shard now; a has not noticed yet
    row = accept(b, "c1", 0)
    assert ca.poll(block_ms=20) == [], "the fenced read refuses a worker whose lease is gone"
    assert [e.row for e in cb.poll(block_ms=20)] == [row]


def test_two_workers_racing_for_one_due_job_fire_it_once(redis_url):
    a, b = worker(redis_url), worker(redis_url)
    a.schedule("k", "bargain_followup", T0, "c1")
    (job,) = b.due_jobs(T0)
    with pytest.raises(StoreConflict):
        with b.transaction():
            assert b.claim(job.id, T0)
            a.claim(job.id, T0)  # the other worker commits its claim first
            b.add_decision("c1", T0, "timer", "auto_send", {"by": "b"})
    assert a.get_job("k").status == "done"
    assert a.decisions() == [], "the loser's firing wrote nothing"


def test_two_workers_accepting_one_message_store_it_once(redis_url):
    a, b = worker(redis_url), worker(redis_url)
    first = a.add_message("c1", "in", "在吗", T0, platform="p", message_id="m1")
    again = b.add_message("c1", "in", "在吗", T0, platform="p", message_id="m1")
    assert first[1] and again == (first[0], False)
    assert len(a.recent_messages("c1")) == 1


def test_an_outbox_lane_is_drained_by_one_worker_at_a_time(redis_url):
    a, b = worker(redis_url), worker(redis_url)
    oa, ob = RedisOutbox(a, lease_seconds=LEASE), RedisOutbox(b, lease_seconds=LEASE)
    decision = a.add_decision("c1", T0, "message", "auto_send", {}, delivery="pending")
    item = oa.enqueue(decision, "c1", "shop", "shop", T0)
    assert oa.head("shop").id == item.id
    assert ob.head("shop") is None, "a's lease: b must not send from this lane"
    time.sleep(LEASE + 0.1)  # a died mid-attempt
    assert ob.head("shop").id == item.id, "b takes the lane over and sends the head again"
    with pytest.raises(StoreConflict):
        oa.delivered(item.id, T0)  # a wakes up: its late "done" is refused, b's attempt counts
    ob.delivered(item.id, T0)
    assert b.get_decision(decision)["delivery"] == "done"
    assert ob.counts()["done"] == 1 and ob.busy_lanes() == []


def test_a_redis_url_option_sets_the_lease_and_reaches_redis_without_it(redis_url):
    store = RedisStore(redis_url + "?lease_seconds=3")
    assert store.lease_seconds == 3.0
    store.save_state("c1", "u1", {"ok": True}, T0)
    assert RedisStore(redis_url).load_state("c1") == {"ok": True}


def test_workers_refuse_a_sqlite_store_in_one_line(tmp_path, config_path):
    from bot.cli import main

    result = CliRunner().invoke(main, ["serve", "--config", str(config_path), "--workers", "2", "--port", "0"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --workers 2 needs a store the workers can share")
    assert "redis://HOST:PORT/DB" in lines[0]


def test_a_batch_read_before_a_lease_was_lost_and_taken_again_is_replayed_in_order(redis_url):
    store = worker(redis_url, shards=1)
    consumer = ShardConsumer(store)
    consumer.rebalance(force=True)
    rows = [accept(store, "c1", n) for n in range(3)]
    batch = consumer.poll(block_ms=20)
    assert [e.row for e in batch] == rows
    time.sleep(LEASE + 0.1)  # the first message took longer than the lease, nobody else took the shard
    consumer.renew()
    consumer.rebalance(force=True)  # this worker takes the shard again, under a new epoch
    assert list(consumer.owned) == [0]
    assert [consumer.begin(e) for e in batch[1:]] == [False, False], "the rest of the old batch is skipped"
    assert drain(store, consumer) == rows, "and comes back from the shard's pending entries, in order"


def test_the_heartbeat_keeps_a_busy_workers_leases(redis_url):
    store = worker(redis_url, shards=2)
    consumer = ShardConsumer(store)
    consumer.rebalance(force=True)
    held = dict(consumer.owned)
    for _ in range(4):  # a long turn: only the heartbeat runs meanwhile
        time.sleep(LEASE / 2)
        consumer.renew()
    assert consumer.owned == held
    assert ShardConsumer(worker(redis_url, shards=2)).rebalance(force=True) == [], "nothing free to take"


def test_a_turn_to_retry_comes_back_before_the_rest_of_its_batch(redis_url):
    store = worker(redis_url, shards=1)
    consumer = ShardConsumer(store)
    consumer.rebalance(force=True)
    rows = [accept(store, "c1", n) for n in range(3)]
    batch = consumer.poll(block_ms=20)
    consumer.replay(0)  # the first turn's commit was refused (say a ticket changed under it)
    assert not consumer.begin(batch[1]), "the rest of the batch waits"
    assert drain(store, consumer) == rows


def test_renewing_a_lease_during_a_turn_does_not_refuse_its_commit(redis_url):
    store = worker(redis_url, shards=1)
    consumer = ShardConsumer(store)
    consumer.rebalance(force=True)
    row = accept(store, "c1", 0)
    (entry,) = consumer.poll(block_ms=20)
    assert consumer.begin(entry)
    with store.transaction():
        store.add_decision("c1", T0, "message", "suggest", {}, message_row=row)
        store.mark_processed(row)
        consumer.renew()  # the heartbeat, mid-turn (a WATCH-based commit would fail here)
    consumer.end(entry, ack=False)
    assert store.get_message(row).processed and store.unprocessed_messages() == []
    assert store.redis.xpending(store.inbox_key(0), "kefu")["pending"] == 0, "acknowledged in the same commit"


def test_two_workers_queueing_one_decision_make_one_outbox_item(redis_url, monkeypatch):
    a, b = worker(redis_url), worker(redis_url)
    oa, ob = RedisOutbox(a), RedisOutbox(b)
    decision = a.add_decision("c1", T0, "message", "auto_send", {}, delivery="pending")
    theirs = ob.enqueue(decision, "c1", "shop", "shop", T0)
    real_get, seen = a.core.get, []

    def stale_get(key):  # a read the item's key just before b committed it
        if key.endswith(f"ob:dec:{decision}") and not seen:
            seen.append(key)
            return None
        return real_get(key)

    monkeypatch.setattr(a.core, "get", stale_get)
    mine = oa.enqueue(decision, "c1", "shop", "shop", T0)
    assert seen, "the race was played"
    assert mine == theirs and oa.counts()["pending"] == 1
