"""Order look-ups and order-state answers (bot/orders): which line for which state, no guessed
courier, timeouts and failures that only suggest, buyer ↔ conversation links."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.app import build
from bot.models import Inbound, OrderEvent
from bot.orders.answers import ADDRESS, CANCEL, TRACK, choose_line, question_kind, values_for
from bot.orders.base import OrderInfo, OrderSource, SourceUnavailable
from bot.orders.linking import message_buyer_ids
from bot.orders.lookup import OrderLookup
from bot.orders.store_source import StoreOrderSource
from bot.scheduler import ManualClock
from bot.store import SqliteStore
from phrasebook.render import choose_reply

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
STATUSES = ["created", "paid", "printed", "shipped", "delivered", "closed", "refunding"]

EXPECTED = {
    TRACK: {"created": "track_unpaid", "paid": "track_waiting", "printed": "track_waiting",
            "shipped": "track_shipped_plain", "delivered": "track_delivered", "closed": "closed",
            "refunding": "refunding"},
    ADDRESS: {"created": "address_ok", "paid": "address_ok", "printed": "address_ok",
              "shipped": "address_too_late", "delivered": "address_too_late", "closed": "closed",
              "refunding": "refunding"},
    CANCEL: {"created": "cancel_unpaid", "paid": "cancel_ok", "printed": "cancel_return_path",
             "shipped": "cancel_return_path", "delivered": "cancel_return_path", "closed": "closed",
             "refunding": "refunding"},
}


@pytest.mark.parametrize("kind", [TRACK, ADDRESS, CANCEL])
@pytest.mark.parametrize("status", STATUSES)
def test_each_state_gets_its_line(kind, status):
    assert choose_line(kind, OrderInfo(order_id="1", status=status)) == f"order_state.{EXPECTED[kind][status]}"


def test_address_rules_follow_the_source_but_never_after_shipping():
    assert choose_line(ADDRESS, OrderInfo(order_id="1", status="printed", address_changeable=False)) \
        == "order_state.address_locked"
    assert not OrderInfo(order_id="1", status="shipped", address_changeable=True).can_change_address
    shipped = OrderInfo(order_id="1", status="shipped", courier="顺丰", tracking_no="SF1")
    assert choose_line(TRACK, shipped) == "order_state.track_shipped"


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("known", [True, False])
def test_the_shop_default_courier_never_stands_in_for_the_real_one(engine, status, known):
    """Render every line any question can choose: with no known courier the default never shows."""
    default = engine.values["courier"]
    info = OrderInfo(order_id="9", status=status, courier="极兔速递" if known else None,
                     tracking_no="JT0001" if known else None)
    for kind in (TRACK, ADDRESS, CANCEL):
        entry = engine.phrasebook.get(choose_line(kind, info))
        for turn in range(len(entry.replies)):
            text = choose_reply(entry, {**engine.values, **values_for(info), "confirm": ""}, (), turn)
            assert default not in text, (entry.id, text)
            assert "{" not in text


def test_questions_that_are_about_an_order():
    assert question_kind("track_parcel", "发货了吗", "track.shipped") == TRACK
    assert question_kind("cancel_order", "不想要了", "cancel.request") == CANCEL
    assert question_kind("order_change", "能改地址吗", "order.change_address") == ADDRESS
    assert question_kind("order_change", "拍错颜色了", "order.change_spec") is None
    assert question_kind("free_shipping", "包邮吗", "shipping.free") is None


def test_buyer_ids_of_a_message():
    assert message_buyer_ids("bridge", "bridge:tb_nick") == ["bridge:tb_nick", "tb_nick"]
    assert message_buyer_ids("bridge", "tb_nick") == ["tb_nick"]
    assert message_buyer_ids("bridge", "other:tb_nick") == ["other:tb_nick"]  # only its own connector's scope
    assert message_buyer_ids("bridge", "bridge:") == ["bridge:"]


# --- the store source and the look-up timeout -------------------------------------------------

def test_store_source_folds_events(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite")
    store.add_order_event("o1", "u", "paid", T0, {"order_id": "o1"}, buyer_ids=["nick"])
    store.add_order_event("o1", "u", "shipped", T0 + timedelta(hours=1), {"courier": "中通快递", "tracking_no": "731"})
    store.add_order_event("o1", "u", "shipped", T0 + timedelta(hours=2), {"courier": None})  # says nothing new
    store.add_order_event("o2", "u", "created", T0 + timedelta(hours=3), {})
    source = StoreOrderSource(store)
    info = source.get("o1")
    assert (info.status, info.courier, info.tracking_no) == ("shipped", "中通快递", "731")
    assert set(info.buyer_ids) == {"u", "nick"}
    assert source.get("nope") is None
    assert [o.order_id for o in source.recent(["nick"])] == ["o1"]
    assert [o.order_id for o in source.recent(["u"])] == ["o2", "o1"]  # newest first
    store.close()


class Slow(OrderSource):
    name = "slow-erp"

    def __init__(self, delay: float, fail: bool = False):
        self.delay, self.fail = delay, fail
        self.release = threading.Event()

    def get(self, order_id):
        self.release.wait(self.delay)
        if self.fail:
            raise ConnectionError("boom")
        return OrderInfo(order_id=order_id, status="paid")

    def recent(self, buyer_ids, limit=3):
        return [self.get("x")]


def test_a_slow_source_is_given_up_after_the_timeout():
    source = Slow(delay=5)
    lookup = OrderLookup(source, timeout=0.2)
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match="did not answer within 0.2 s"):
        lookup.get("1")
    assert time.monotonic() - started < 1.0
    source.release.set()
    assert OrderLookup(Slow(0), timeout=1).get("7").order_id == "7"


def test_a_failing_source_is_unavailable_not_a_crash():
    with pytest.raises(SourceUnavailable, match="ConnectionError"):
        OrderLookup(Slow(0, fail=True), timeout=1).recent(["u"])


# --- the assistant: answers, links, chases ----------------------------------------------------

def make(engine, tmp_path, source=None):
    store = SqliteStore(tmp_path / "kefu.sqlite")
    clock = ManualClock(T0)
    return build(engine.config, engine=engine, store=store, clock=clock, orders=source).assistant, store, clock


def answered(decision):
    """What went out besides the once-a-day away greeting."""
    return [r for r in decision.replies if r.id != "greeting.away"]


def say(assistant, text, mid, conversation="conv-1", customer="bridge:tb_nick", platform="bridge"):
    return assistant.handle_message(Inbound(platform=platform, conversation_id=conversation,
                                            customer_id=customer, message_id=mid, text=text))


def test_orders_of_a_buyer_who_never_wrote_join_the_conversation_and_the_chase_follows(engine, tmp_path):
    assistant, store, clock = make(engine, tmp_path)
    assistant.handle_order(OrderEvent(order_id="o1", customer_id="AAH-open", buyer_ids=["tb_nick"],
                                      status="created", at=T0))
    assert store.orders_for_buyers(["tb_nick"])[0]["order_id"] == "o1"
    clock.set(T0 + timedelta(minutes=5))
    decision = say(assistant, "发货了吗", "m1")
    assert decision.replies[-1].id == "order_state.track_unpaid" and "o1" in decision.replies[-1].text
    assert store.load_state("conv-1")["orders"] == {"o1": "created"}
    clock.set(T0 + timedelta(minutes=31))
    fired = assistant.tick()
    assert [(c, d.replies[0].id) for c, d in fired] == [("AAH-open", "pay.chase.plain")]
    chase = [d for d in store.decisions() if d["trigger"] == "timer"]
    assert [d["conversation_id"] for d in chase] == ["conv-1"]  # sent where she writes, once
    store.close()


def test_a_later_event_goes_to_the_linked_conversation(engine, tmp_path):
    assistant, store, clock = make(engine, tmp_path)
    say(assistant, "在吗", "m1")
    assistant.handle_order(OrderEvent(order_id="o2", customer_id="tb_nick", status="paid", at=T0))
    assert store.load_state("conv-1")["orders"] == {"o2": "paid"}
    assert store.load_state("tb_nick") is None  # no phantom conversation
    store.close()


def test_an_order_of_someone_else_is_never_described(engine, tmp_path):
    assistant, store, clock = make(engine, tmp_path)
    assistant.handle_order(OrderEvent(order_id="88001234567", customer_id="someone", status="shipped", at=T0,
                                      courier="顺丰", tracking_no="SF100"))
    decision = say(assistant, "订单88001234567发货了吗", "m1")
    assert decision.kind in {"suggest", "hold"} and not answered(decision)
    assert any("not known for this customer" in r for r in decision.reasons)
    assert all("SF100" not in s.text for s in decision.suggestions)
    store.close()


def test_a_named_order_of_the_customer_is_answered_without_asking_to_confirm(engine, tmp_path):
    assistant, store, clock = make(engine, tmp_path)
    assistant.handle_order(OrderEvent(order_id="88001234567", customer_id="tb_nick", status="shipped", at=T0,
                                      courier="顺丰速运", tracking_no="SF1000"))
    line = say(assistant, "订单88001234567到哪了", "m1").replies[-1]
    assert line.id == "order_state.track_shipped"
    assert "顺丰速运" in line.text and "SF1000" in line.text and "订单号发我" not in line.text
    store.close()


def test_no_order_at_all_keeps_the_general_line_and_a_failing_source_only_suggests(engine, tmp_path):
    assistant, store, clock = make(engine, tmp_path)
    decision = say(assistant, "发货了吗", "m1")  # the general line asks for the order number
    assert [r.id for r in answered(decision)] == ["track.shipped"]
    assert not any(r.id.startswith("order_state.") for r in decision.suggestions)
    store.close()
    (tmp_path / "b").mkdir()
    assistant, store, clock = make(engine, tmp_path / "b", source=Slow(delay=5))
    assistant.handle_order(OrderEvent(order_id="o1", customer_id="tb_nick", status="paid", at=T0))
    assistant.orders.answers.lookup.timeout = 0.1
    started = time.monotonic()
    decision = say(assistant, "发货了吗", "m1")
    assert time.monotonic() - started < 2.0
    assert decision.kind in {"suggest", "hold"} and not answered(decision)
    assert "did not answer" in decision.reasons[0]
    assistant.orders.source.release.set()
    store.close()


def test_other_messages_are_untouched(engine, tmp_path):
    assistant, store, clock = make(engine, tmp_path)
    decision = say(assistant, "包邮吗", "m1")
    assert decision.replies[-1].id == "shipping.free"
    store.close()


def test_the_server_chases_only_buyers_who_wrote(engine, tmp_path):
    assistant, store, clock = make(engine, tmp_path)
    assistant.orders.chase_only_reachable = True  # as build_server sets it
    assistant.handle_order(OrderEvent(order_id="o1", customer_id="silent", status="created", at=T0))
    assistant.handle_order(OrderEvent(order_id="o2", customer_id="tb_nick", status="created", at=T0))
    say(assistant, "在吗", "m1")
    clock.set(T0 + timedelta(minutes=31))
    fired = {c: d for c, d in assistant.tick()}
    assert fired["silent"].kind == "none" and "never wrote" in fired["silent"].reasons[0]
    assert [r.id for r in fired["tb_nick"].replies] == ["pay.chase.plain"]
    store.close()
