"""Scheduled lines re-check their rules when they fire, not only when scheduled (issue 11, item 4):
quiet hours move the line to the end of the window, the order's state, the conversation's owner
and the rate limit are read again."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.app import build
from bot.models import Inbound, OrderEvent
from bot.scheduler import ManualClock
from bot.store import SqliteStore
from bot.testkit import engine_under

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def shop(engine, tmp_path):
    config = engine.config.model_copy(deep=True)
    config.flows.quiet_hours = "22:00-08:00"
    config.policy.mode = "away"
    clock = ManualClock(datetime(2026, 6, 1, 21, 20, tzinfo=SHANGHAI))
    store = SqliteStore(tmp_path / "kefu.sqlite")
    assistant = build(config, engine=engine_under(config, engine), store=store, clock=clock, orders=None).assistant
    assistant.handle_message(Inbound(platform="shop", conversation_id="shop:c1", customer_id="shop:u1",
                                     message_id="m1", text="在吗"))
    yield assistant, clock, store
    store.close()


def chase_lines(store):
    return [d for d in store.decisions("shop:c1") if d["trigger"] == "timer" and d["payload"]["replies"]]


def order(assistant, clock, status="created"):
    assistant.handle_order(OrderEvent(order_id="o1", customer_id="shop:u1", status=status, at=clock.now()))


def test_a_chase_that_fires_in_quiet_hours_after_an_outage_waits_for_the_morning(shop):
    assistant, clock, store = shop
    clock.set(datetime(2026, 6, 1, 21, 25, tzinfo=SHANGHAI))
    order(assistant, clock)  # chase due 21:55, outside quiet hours when scheduled
    assert store.get_job("payment_chase:o1").due_at == datetime(2026, 6, 1, 21, 55, tzinfo=SHANGHAI)
    clock.set(datetime(2026, 6, 1, 22, 30, tzinfo=SHANGHAI))  # the server was down 21:55–22:30
    fired = assistant.tick()
    assert [d.kind for _, d in fired] == ["none"] and "quiet hours" in fired[0][1].reasons[0]
    assert chase_lines(store) == []
    morning = datetime(2026, 6, 2, 8, 0, tzinfo=SHANGHAI)
    assert store.next_due() == morning
    clock.set(morning - timedelta(minutes=1))
    assert assistant.tick() == []
    clock.set(morning)
    [(_, decision)] = assistant.tick()
    assert decision.kind == "auto_send" and decision.replies[0].id.startswith("pay.chase")
    assert len(chase_lines(store)) == 1


def test_a_deferred_chase_still_checks_the_order_when_it_fires(shop):
    assistant, clock, store = shop
    clock.set(datetime(2026, 6, 1, 21, 25, tzinfo=SHANGHAI))
    order(assistant, clock)
    clock.set(datetime(2026, 6, 1, 22, 30, tzinfo=SHANGHAI))
    assistant.tick()  # moved to 08:00
    clock.set(datetime(2026, 6, 1, 23, 0, tzinfo=SHANGHAI))
    order(assistant, clock, "paid")  # paid during the night
    clock.set(datetime(2026, 6, 2, 8, 0, tzinfo=SHANGHAI))
    [(_, decision)] = assistant.tick()
    assert decision.kind == "none" and chase_lines(store) == []


def test_a_chase_for_a_conversation_a_person_owns_is_only_suggested(shop):
    assistant, clock, store = shop
    clock.set(datetime(2026, 6, 1, 20, 0, tzinfo=SHANGHAI))
    order(assistant, clock)
    state = store.load_state("shop:c1")
    store.save_state("shop:c1", "shop:u1", {**state, "owner": "human"}, clock.now())  # a person took over meanwhile
    clock.set(datetime(2026, 6, 1, 20, 31, tzinfo=SHANGHAI))
    [(_, decision)] = assistant.tick()
    assert decision.kind == "suggest" and decision.replies == []
    assert any("person owns" in r for r in decision.reasons)


def test_a_rate_limited_chase_is_tried_again_a_minute_later_not_dropped(shop):
    assistant, clock, store = shop
    clock.set(datetime(2026, 6, 1, 20, 0, tzinfo=SHANGHAI))
    order(assistant, clock)
    fire_at = datetime(2026, 6, 1, 20, 30, tzinfo=SHANGHAI)
    state = store.load_state("shop:c1")
    sends = [(fire_at - timedelta(seconds=5)).isoformat()] * assistant.config.flows.max_auto_per_minute
    store.save_state("shop:c1", "shop:u1", {**state, "auto_sent_at": sends}, clock.now())
    clock.set(fire_at)
    [(_, decision)] = assistant.tick()
    assert decision.kind == "none" and "rate limit" in decision.reasons[0]
    clock.set(fire_at + timedelta(minutes=1))
    [(_, decision)] = assistant.tick()
    assert decision.kind == "auto_send"
