"""Replay tests of the handoff layer: triggers, intake, tickets, the bot stepping back, release."""

from __future__ import annotations

import pytest
from test_replay import by_trigger, replay, say

from bot.replay import ReplayError

ORDER_NO = "订单号是123456789012345678"


def messages(lines):
    return by_trigger(lines, "message")


def sent_ids(line):
    return [r["phrase_id"] for r in line.replies]


def test_lost_parcel_asks_for_the_order_number_first_then_hands_off(engine):
    ask, handed = messages(replay(engine, [say("c1", "物流显示已签收，但是我根本没收到货"), say("c1", ORDER_NO)]))
    assert ask.intent == "lost_parcel" and ask.kind == "auto_send"
    assert "aftersale.ask_order" in sent_ids(ask)
    assert handed.kind == "handoff"
    assert handed.handoff["reason"] == "lost_parcel"
    assert handed.handoff["priority"] == "high" and handed.handoff["group"] == "aftersale"
    assert handed.handoff["ticket_id"] is not None


def test_intake_skips_the_question_when_the_order_number_is_known(engine):
    (line,) = messages(replay(engine, [say("c1", f"{ORDER_NO}，显示已签收但我没收到")]))
    assert line.kind == "handoff" and line.handoff["reason"] == "lost_parcel"
    assert "aftersale.ask_order" not in sent_ids(line)


def test_quality_complaint_asks_for_order_then_photos(engine):
    lines = messages(replay(engine, [say("c1", "收到的杯子是碎的，裂了好几道"), say("c1", ORDER_NO),
                                     {"customer": "c1", "text": "照片发你了", "images": 2}]))
    assert "aftersale.ask_order" in sent_ids(lines[0])
    assert "aftersale.ask_photos" in sent_ids(lines[1])
    assert lines[2].kind == "handoff" and lines[2].handoff["reason"] == "quality_complaint"


def test_an_angry_customer_skips_intake(engine):
    (line,) = messages(replay(engine, [say("c1", "你们这什么垃圾东西，气死我了，骗子！我要投诉！！")]))
    assert line.kind == "handoff"
    assert line.handoff["reason"] == "angry" and line.handoff["priority"] == "urgent"
    assert "aftersale.ask_order" not in sent_ids(line)


def test_human_request_hands_off_at_once(engine):
    (line,) = messages(replay(engine, [say("c1", "转人工")]))
    assert line.kind == "handoff" and line.handoff["reason"] == "human_request"
    assert sent_ids(line)[-1] in {"handoff.notice", "handoff.wait", "handoff.no_agent"}


def test_threats_are_urgent(engine):
    lines = messages(replay(engine, [say("c1", f"{ORDER_NO} 再不处理我就给差评，还要打12315投诉你们")]))
    assert lines[0].kind == "handoff" and lines[0].handoff["priority"] == "urgent"


def test_images_in_an_after_sale_conversation(engine):
    lines = messages(replay(engine, [say("c1", "我想退货，怎么操作"), {"customer": "c1", "text": "你看下", "images": 1}]))
    assert lines[0].intent == "return_exchange" and lines[0].kind != "handoff"
    assert lines[1].kind == "handoff" and lines[1].handoff["reason"] == "images"


def test_low_confidence_turns_in_a_row(engine):
    texts = ["阿斯顿法国红酒", "xx", "这个东西那个"]
    assert all(engine.classifier.predict(t).score < engine.config.policy.auto_intent_min for t in texts)
    lines = messages(replay(engine, [say("c1", t) for t in texts], handoff={"low_confidence_turns": 3}))
    assert [line.kind == "handoff" for line in lines] == [False, False, True]
    assert lines[-1].handoff["reason"] == "low_confidence"


def test_an_understood_turn_resets_the_count(engine):
    lines = messages(replay(engine, [say("c1", "阿斯顿法国红酒"), say("c1", "包邮吗"), say("c1", "xx")],
                            handoff={"low_confidence_turns": 2}))
    assert all(line.kind != "handoff" for line in lines)


def test_bulk_goes_to_sales(engine):
    (line,) = messages(replay(engine, [say("c2", "我们公司要采购200件，能优惠多少")]))
    assert line.kind == "handoff" and line.handoff["group"] == "sales" and line.handoff["reason"] == "bulk_order"
    assert sent_ids(line)[-1] == "bargain.bulk_handoff"


def test_no_auto_send_after_handoff_until_release(engine):
    lines = replay(engine, [{"presence": {"agent": "xiaomei", "online": True}}, say("c1", "转人工"),
                            say("c1", "包邮吗"), say("c1", "在吗"), {"release": "c1"}, say("c1", "包邮吗")],
                   policy={"mode": "auto"})
    handed, *owned, back = messages(lines)
    assert handed.kind == "handoff"
    assert [line.kind for line in owned] == ["suggest", "suggest"]
    assert all(line.replies == [] for line in owned)
    assert "a person owns this conversation" in owned[0].reasons[0]
    assert by_trigger(lines, "agent")[0].kind == "none"
    assert back.kind == "auto_send" and sent_ids(back)[-1].startswith("shipping.")


def test_nobody_online_gets_an_honest_wait_with_the_service_hours_and_no_number(engine):
    (line,) = messages(replay(engine, [say("c1", "转人工")]))
    assert line.handoff["assignee"] is None
    assert sent_ids(line)[-1] == "handoff.no_agent"
    text = line.replies[-1]["text"]
    assert engine.config.shop.service_hours in text
    assert "分钟" not in text and "3" not in text.replace(engine.config.shop.service_hours, "")


def test_after_working_hours_the_wait_says_so(engine):
    (line,) = messages(replay(engine, [say("c1", "转人工")], clock="2026-11-23T23:30:00+08:00"))
    assert sent_ids(line)[-1] == "handoff.after_hours"
    assert engine.config.shop.service_hours in line.replies[-1]["text"]


def test_busy_agents_of_the_group_give_an_estimate(engine):
    busy = [say(f"c{n}", "转人工") for n in range(5)]  # xiaomei (presale, capacity 5) is full then
    lines = messages(replay(engine, [{"presence": {"agent": "xiaomei", "online": True}}, *busy,
                                     say("c9", "转人工")], policy={"mode": "auto"}))
    assert all(line.handoff["assignee"] == "xiaomei" for line in lines[:5])
    assert lines[-1].handoff["assignee"] is None and sent_ids(lines[-1])[-1] == "handoff.wait"
    assert "分钟" in lines[-1].replies[-1]["text"]


def test_an_online_agent_of_the_group_gets_the_ticket(engine):
    lines = messages(replay(engine, [{"presence": {"agent": "ajie", "online": True}},
                                     say("c1", f"{ORDER_NO}，显示签收了但我没收到")]))
    assert lines[0].handoff["assignee"] == "ajie"


def test_idle_conversation_returns_to_the_bot(engine):
    lines = replay(engine, [{"presence": {"agent": "xiaomei", "online": True}}, say("c1", "转人工"),
                            {"presence": {"agent": "xiaomei", "online": False}}, {"advance": "31m"},
                            say("c1", "包邮吗")])
    assert lines[0].handoff["assignee"] == "xiaomei"
    assert [line.trigger for line in lines] == ["message", "timer", "message"]
    assert lines[1].reasons == ["released: no agent activity"]
    assert lines[2].kind == "auto_send"


def test_queued_ticket_is_not_taken_back_by_the_bot_but_it_answers_other_questions(engine):
    lines = replay(engine, [say("c1", "转人工"), {"advance": "2h"}, say("c1", "包邮吗")])
    assert [line.trigger for line in lines] == ["message", "message"], "a queued ticket is never idle-released"
    assert lines[1].kind == "auto_send"
    assert sent_ids(lines[1])[0].startswith("shipping.") and sent_ids(lines[1])[-1] == "handoff.queued"


def test_agent_reply_keeps_the_conversation(engine):
    lines = replay(engine, [{"presence": {"agent": "xiaomei", "online": True}}, say("c1", "转人工"),
                            {"presence": {"agent": "xiaomei", "online": False}}, {"advance": "20m"},
                            {"agent_reply": {"customer": "c1", "text": "您好，我来帮您看看"}},
                            {"advance": "20m"}, say("c1", "包邮吗")])
    assert [line.trigger for line in lines] == ["message", "message"]
    assert lines[1].kind == "suggest"


def test_replay_presence_takes_a_status_and_offline_requeues(engine):
    lines = messages(replay(engine, [{"presence": {"agent": "xiaomei", "status": "online"}}, say("c1", "转人工"),
                                     {"presence": {"agent": "xiaomei", "status": "offline"}}, say("c1", "包邮吗")]))
    assert lines[0].handoff["assignee"] == "xiaomei"
    assert lines[1].kind == "auto_send" and sent_ids(lines[1])[-1] == "handoff.queued", "back in the queue"


def test_replay_presence_needs_exactly_one_of_online_and_status(engine, tmp_path):
    with pytest.raises(ReplayError, match="presence takes one of online"):
        replay(engine, [{"presence": {"agent": "xiaomei", "online": True, "status": "away"}}], tmp_path=tmp_path)
