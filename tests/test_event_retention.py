"""The live event log keeps ``store.events_days``: older rows are pruned on a bounded schedule,
reveal events and the newest event stay, and a page whose cursor fell among pruned rows loads
its state afresh (a ``hello``) instead of missing them."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from agent_helpers import MORNING, auth, tokens
from redis_support import open_backend
from test_agent_api import read_events

import bot.store.redis_events as redis_events
import bot.store.retention as retention
from bot.app import build
from bot.config import load_config
from bot.identity import scoped
from bot.scheduler import ManualClock
from bot.store import SqliteStore
from bot.store.retention import EventRetention
from bot.store.sqlite.codec import to_db_time
from bot.testkit import configured, engine_under
from tests_support import until

OLD = MORNING - timedelta(days=10)


@pytest.fixture(params=["file", "redis"])
def store(request, tmp_path):
    store = open_backend(request.param, tmp_path, request)  # the same promises on a real redis-server
    yield store
    store.close()


def kinds(store) -> list[tuple[int, str, str]]:
    return [(e["id"], e["kind"], e["ref"]) for e in store.events_after(0, 10_000)]


def test_pruning_deletes_old_feed_events_but_keeps_reveals_the_newest_and_what_they_point_at(store):
    store.add_message("c1", "in", "包邮吗", OLD, platform="sim", message_id="m1")  # a trigger logs it
    store.add_event("reveal", "xiaomei", OLD, conversation_id="c1", payload={"slot": "phone"})
    store.add_event("presence", "xiaomei", OLD + timedelta(hours=1))
    store.add_event("presence", "xiaomei", MORNING)
    store.add_event("ticket", "7", OLD + timedelta(hours=2), conversation_id="c1")  # logged late: the newest
    assert [k for _, k, _ in kinds(store)] == ["message", "reveal", "presence", "presence", "ticket"]

    deleted = store.prune_events(MORNING - timedelta(days=7), 1000)

    assert deleted == 2
    left = kinds(store)
    assert [k for _, k, _ in left] == ["reveal", "presence", "ticket"], "the audit, the recent, the newest"
    assert store.get_message(1) is not None and store.get_message(1).text == "包邮吗", "messages are untouched"
    newest = store.last_event_id()
    assert newest == left[-1][0] == 5
    assert store.add_event("presence", "xiaomei", MORNING) == 6, "ids are never reused after pruning"


def test_a_run_looks_at_a_bounded_batch_of_the_oldest_rows(store):
    for i in range(10):
        store.add_event("presence", f"a{i}", OLD + timedelta(minutes=i))
    store.add_event("presence", "now", MORNING)
    cutoff = MORNING - timedelta(days=7)
    assert store.prune_events(cutoff, 4) == 4
    assert store.prune_events(cutoff, 4) == 4
    assert store.prune_events(cutoff, 4) == 2
    assert store.prune_events(cutoff, 4) == 0
    assert [ref for _, _, ref in kinds(store)] == ["now"]


def test_a_cursor_among_pruned_rows_is_told_apart_from_one_that_missed_nothing(store):
    for i in range(6):
        store.add_event("presence", f"a{i}", OLD if i < 3 else MORNING)
    assert not any(store.events_lost_after(n) for n in range(0, 8)), "nothing pruned: nothing lost"
    store.prune_events(MORNING - timedelta(days=1), 100)  # ids 1..3 go
    assert store.events_lost_after(0) and store.events_lost_after(2)
    assert not store.events_lost_after(3), "a page that saw id 3 misses nothing"
    assert not store.events_lost_after(6) and not store.events_lost_after(99)


def test_the_schedule_runs_at_once_then_hourly_and_again_at_once_after_a_full_batch(store, monkeypatch):
    clock = ManualClock(MORNING)
    for i in range(5):
        store.add_event("presence", f"a{i}", OLD)
    store.add_event("presence", "now", MORNING)
    monkeypatch.setattr(retention, "BATCH", 2)
    keep = EventRetention(7, clock)
    assert keep.due(), "the first check prunes"
    assert keep.run(store) == 2 and keep.due(), "a full batch: more may wait, so again at once"
    assert keep.run(store) == 2 and keep.run(store) == 1
    assert not keep.due(), "less than a batch: the next run is in an hour"
    clock.advance(timedelta(minutes=59))
    assert not keep.due()
    clock.advance(timedelta(minutes=1))
    assert keep.due() and keep.run(store) == 0
    assert keep.deleted == 5
    assert not EventRetention(0, clock).due(), "0 days keeps everything"


def test_events_days_is_a_documented_setting(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("store:\n  events_days: 2.5\n", encoding="utf-8")
    assert load_config(path).store.events_days == 2.5
    path.write_text("store:\n  events_days: -1\n", encoding="utf-8")
    with pytest.raises(Exception, match="events_days"):
        load_config(path)


async def test_the_server_prunes_the_log_and_a_page_behind_the_pruned_rows_reloads(
        aiohttp_client, engine, tmp_path):
    config = configured(engine.config, store={"events_days": 1})
    clock = ManualClock(OLD)
    store = SqliteStore(tmp_path / "kefu.sqlite")
    server = build(config, engine=engine_under(config, engine), store=store, clock=clock,
                   connectors={"sim": {"type": "simulator"}}).server
    try:
        for i in range(3):  # messages of ten days ago (their events carry their time)
            server.assistant.accept(scoped(server.connectors["sim"].inbound("c-old", f"在吗{i}")))
        store.add_event("reveal", "xiaomei", OLD, conversation_id="sim:c-old", payload={"slot": "phone"})
        clock.set(MORNING)
        stale = 1  # a page that saw the first event ten days ago
        client = await aiohttp_client(server.app())
        await until(lambda: server.event_retention.deleted >= 3, timeout=30)
        await until(lambda: not store.unprocessed_messages(), timeout=30)
        left = store.events_after(0, 1000)
        cutoff = to_db_time(MORNING - timedelta(days=1))
        assert [e["kind"] for e in left if e["at"] < cutoff] == ["reveal"], "only the audit is older than a day"
        assert store.events_lost_after(stale)
        inbound = [m for m in store.recent_messages("sim:c-old", 10) if m.direction == "in"]
        assert [m.text for m in inbound] == ["在吗0", "在吗1", "在吗2"] and all(m.processed for m in inbound)

        key = tokens(server)["xiaomei"]
        behind = await client.get("/api/events", headers={**auth(key), "Last-Event-ID": str(stale)})
        [first] = await read_events(behind, 1)
        assert first["event"] == "hello", "the page loads its state afresh instead of missing what was pruned"
        assert first["data"]["last_event_id"] == store.last_event_id()
        behind.close()

        current = store.last_event_id()
        server.assistant.accept(scoped(server.connectors["sim"].inbound("c-new", "包邮吗")))
        level = await client.get("/api/events", headers={**auth(key), "Last-Event-ID": str(current)})
        [event] = await read_events(level, 1)
        assert event["event"] == "message" and int(event["id"]) > current, "an up-to-date page just goes on"
        level.close()
    finally:
        store.close()


def test_on_redis_one_worker_prunes_at_a_time_and_another_takes_over_when_its_lease_lapses(
        request, tmp_path, monkeypatch):
    first = open_backend("redis", tmp_path, request)
    second = type(first)(first.path)  # another worker on the same Redis
    try:
        for i in range(6):
            first.add_event("presence", f"a{i}", OLD)
        first.add_event("presence", "now", MORNING)
        cutoff = MORNING - timedelta(days=7)
        assert first.prune_events(cutoff, 2) == 2
        assert second.prune_events(cutoff, 2) == 0, "the first worker holds the pruning lease"
        assert first.prune_events(cutoff, 2) == 2, "its holder goes on (a full batch: again at once)"
        monkeypatch.setattr(redis_events, "LEASE_MS", 100)
        first.prune_events(cutoff, 1)  # renewed, now for 0.1 s
        time.sleep(0.3)  # the first worker died: its lease lapses
        assert second.prune_events(cutoff, 10) == 1
        assert [ref for _, _, ref in kinds(second)] == ["now"]
        assert second.events_lost_after(0) and not second.events_lost_after(6)
    finally:
        second.close()
        first.close()


def test_on_redis_a_run_does_not_read_the_kept_reveals_again(request, tmp_path):
    store = open_backend("redis", tmp_path, request)
    try:
        for _ in range(5):
            store.add_event("reveal", "xiaomei", OLD, conversation_id="c1", payload={"slot": "phone"})
        for i in range(3):
            store.add_event("presence", f"a{i}", OLD)
        store.add_event("presence", "now", MORNING)
        cutoff = MORNING - timedelta(days=7)
        assert store.prune_events(cutoff, 3) == 3, "reveals do not use up the batch"
        assert store.core.redis.get(store.core.key("events", "pruned")) == "8", "the cursor is past them"
        store.add_event("presence", "late", OLD)  # (logged late with an old time)
        store.add_event("presence", "newest", MORNING)
        assert store.prune_events(cutoff, 3) == 1, "behind a recent one the cursor stopped at: looked at again"
        assert [ref for _, _, ref in kinds(store)] == ["xiaomei"] * 5 + ["now", "newest"]
    finally:
        store.close()


async def test_a_server_on_redis_prunes_its_log_on_schedule(aiohttp_client, engine, tmp_path, request):
    config = configured(engine.config, store={"events_days": 1})
    clock = ManualClock(MORNING)
    store = open_backend("redis", tmp_path, request)
    for i in range(3):
        store.add_event("presence", f"a{i}", OLD)
    store.add_event("reveal", "xiaomei", OLD, conversation_id="sim:c-old", payload={"slot": "phone"})
    store.add_event("presence", "now", MORNING)
    server = build(config, engine=engine_under(config, engine), store=store, clock=clock,
                   connectors={"sim": {"type": "simulator"}}).server
    try:
        await aiohttp_client(server.app())
        await until(lambda: server.event_retention.deleted >= 3, timeout=30)
        assert [k for _, k, _ in kinds(store)] == ["reveal", "presence"]
        assert store.events_lost_after(1) and not store.events_lost_after(4)
    finally:
        store.close()
