"""Intake that ends: every step is satisfied, declined or abandoned; no question is asked twice."""

from __future__ import annotations

import pytest
from test_replay import by_trigger, replay, say

from bot.handoff.intake import Turn, outcome

ORDER_NO = "订单号是123456789012345678"
LOST = "物流显示已签收，但是我根本没收到货"
BROKEN = "收到的杯子是碎的，裂了好几道"
AUTO = {"policy": {"mode": "auto"}}


def run(engine, *texts, **kwargs):
    events = [t if isinstance(t, dict) else say("c1", t) for t in texts]
    return by_trigger(replay(engine, events, **{**AUTO, **kwargs}), "message")


def ids(line):
    return [r["phrase_id"] for r in line.replies]


def asks(lines):
    return [i for line in lines for i in ids(line) if i.startswith("aftersale.ask_")]


def turn(text="", acts=(), intent="other", confident=False, order=False, images=False, unrelated=False):
    return Turn(tuple(acts), intent, confident, order, images, text, unrelated)


@pytest.mark.parametrize(
    "item, t, expected",
    [
        ("order", turn(order=True), "satisfied"),
        ("photos", turn(images=True), "satisfied"),
        ("order", turn("没有订单号"), "declined"),
        ("order", turn("找不到订单号了"), "declined"),
        ("order", turn("没有", acts=["no"]), "declined"),
        ("order", turn("还没", acts=["not_yet"]), "declined"),
        ("order", turn("不知道", acts=["unsure"]), "declined"),
        ("photos", turn("不想拍"), "declined"),
        ("photos", turn("拍不了"), "declined"),
        ("order", turn("我也不太懂这个"), "declined"),  # not it: asking again would only annoy
        ("order", turn("谢谢", acts=["thanks"]), "abandoned"),
        ("order", turn("再见", acts=["bye"]), "abandoned"),
        ("order", turn("能开发票吗", intent="invoice", confident=True, unrelated=True), "abandoned"),
        ("order", turn("好的", acts=["ok"]), "waiting"),
    ],
)
def test_outcome(item, t, expected):
    assert outcome(item, t, waited=False) == expected


def test_waiting_happens_once():
    assert outcome("order", turn("好的", acts=["ok"]), waited=True) == "declined"


def test_satisfied_the_order_number_arrives_and_the_case_goes_to_a_person(engine):
    ask, handed = run(engine, LOST, ORDER_NO)
    assert ids(ask) == ["aftersale.ask_order"]
    assert handed.kind == "handoff" and handed.handoff["reason"] == "lost_parcel"


def test_satisfied_order_then_photos(engine):
    lines = run(engine, BROKEN, ORDER_NO, {"customer": "c1", "text": "照片发你了", "images": 2})
    assert asks(lines) == ["aftersale.ask_order", "aftersale.ask_photos"]
    assert lines[2].kind == "handoff" and lines[2].handoff["reason"] == "quality_complaint"


def test_declined_the_order_number_is_not_asked_again(engine):
    ask, handed = run(engine, LOST, "没有订单号")
    assert ids(ask) == ["aftersale.ask_order"]
    assert handed.kind == "handoff" and "aftersale.ask_order" not in ids(handed)


def test_declined_each_item_once_then_a_person(engine):
    lines = run(engine, BROKEN, "订单号找不到了", "不想拍")
    assert asks(lines) == ["aftersale.ask_order", "aftersale.ask_photos"]
    assert lines[-1].kind == "handoff" and lines[-1].handoff["reason"] == "quality_complaint"


def test_a_bare_no_ends_the_step_and_never_starts_a_missing_item_intake(engine):
    lines = run(engine, LOST, "没有")
    assert asks(lines) == ["aftersale.ask_order"]
    assert lines[1].kind == "handoff" and lines[1].handoff["reason"] == "lost_parcel"


def test_abandoned_by_thanks_or_goodbye_hands_off_without_asking_again(engine):
    for closing in ["好的谢谢", "再见"]:
        lines = run(engine, LOST, closing)
        assert asks(lines) == ["aftersale.ask_order"], closing
        assert lines[1].kind == "handoff", closing


def test_abandoned_by_a_new_subject_the_bot_answers_it(engine):
    lines = run(engine, LOST, "能开发票吗")
    assert lines[1].intent == "invoice" and lines[1].kind == "auto_send"
    assert lines[1].handoff is None and asks(lines) == ["aftersale.ask_order"]


def test_the_same_question_is_never_asked_twice_in_a_conversation(engine):
    lines = run(engine, LOST, "能开发票吗", "快递丢了，显示签收了没收到")
    assert asks(lines) == ["aftersale.ask_order"]
    assert lines[-1].kind == "handoff"


def test_ok_waits_once_for_the_order_number(engine):
    lines = run(engine, LOST, "好的", ORDER_NO)
    assert ids(lines[1]) == [] and lines[1].kind == "suggest"
    assert lines[2].kind == "handoff" and asks(lines) == ["aftersale.ask_order"]


def test_ok_twice_does_not_keep_the_intake_open(engine):
    lines = run(engine, LOST, "好的", "嗯嗯")
    assert lines[2].kind == "handoff" and asks(lines) == ["aftersale.ask_order"]


def test_anger_during_intake_still_goes_straight_to_a_person(engine):
    lines = run(engine, BROKEN, "你们这什么垃圾东西，气死我了，骗子！")
    assert lines[1].kind == "handoff" and lines[1].handoff["reason"] == "angry"
