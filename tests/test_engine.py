"""Engine.suggest end to end on the shipped phrasebook and model, and the send policy alone."""

from __future__ import annotations

import dataclasses

import pytest

from bot.config import PolicySettings
from bot.engine import Context
from bot.models import Suggestion
from bot.policy import Gate, auto_send_blockers, decide
from intents.classifier import IntentResult


@pytest.mark.parametrize(
    "text, intent, first_id_prefix",
    [
        ("在吗", "greeting", "greeting."),
        ("是正品吗", "authenticity", "auth"),
        ("能便宜点吗", "price_bargain", "bargain.first"),
        ("买20件有优惠吗", "bulk_discount", "bargain."),
        ("别家比你们便宜", "competitor_cheaper", "bargain.competitor"),
        ("什么时候发货", "shipping_time", ""),
        ("能开发票吗", "invoice", "invoice."),
        ("我要退货", "return_exchange", ""),
        ("谢谢", "thanks", "thanks."),
        ("转人工", "human_request", "handoff."),
    ],
)
def test_common_messages(engine, text, intent, first_id_prefix):
    decision = engine.suggest(text)
    assert decision.intent == intent
    assert decision.suggestions, text
    assert decision.suggestions[0].id.startswith(first_id_prefix)
    assert decision.suggestions[0].intent == intent


def test_decision_carries_ranking_slots_and_trace(engine):
    decision = engine.suggest("亲亲亲，買兩件包郵嗎？？？")
    assert decision.trace["normalised"] == "亲,买两件包邮吗?"
    assert decision.slots == {"quantity": 2}
    assert decision.intents[0][0] == decision.intent == "free_shipping"
    assert len(decision.intents) == 31
    assert [m["id"] for m in decision.trace["matches"]] == [s.id for s in decision.suggestions]
    assert len(decision.suggestions) <= engine.config.policy.top_k
    assert all("{" not in s.text for s in decision.suggestions)


def test_placeholders_come_from_the_shop_profile(engine):
    decision = engine.suggest("是正品吗")
    shop = engine.config.shop
    text = " ".join(s.text for s in decision.suggestions)
    assert shop.brand in text or shop.shop_name in text


def test_handoff_intents_never_auto_send(engine):
    decision = engine.suggest("你们卖假货，我要投诉到12315")
    assert decision.kind == "handoff"
    assert decision.handoff is not None and decision.handoff.group == "aftersale"
    assert decision.reply is None


def test_away_mode_respects_online_agents(engine):
    away = engine.suggest("在吗", Context(available=False))
    online = engine.suggest("在吗", Context(available=True))
    assert away.kind == "auto_send" and away.reply is not None
    assert online.kind == "suggest" and "an agent is online" in online.reasons


def test_unsure_message_is_only_suggested(engine):
    decision = engine.suggest("嗯")
    assert decision.intent == "other"
    assert decision.kind == "suggest"


def test_variants_rotate_away_from_the_last_sent_line(engine):
    first = engine.suggest("在吗").suggestions[0]
    entry = engine.phrasebook.get(first.id)
    assert len(entry.replies) > 1
    again = engine.suggest("在吗", Context(avoid=(first.text,))).suggestions[0]
    assert again.id == first.id and again.text != first.text


def test_render_script_line_with_runtime_value(engine):
    text = engine.render_entry("handoff.wait", wait_minutes="5")
    assert "5" in text and "{" not in text
    with pytest.raises(KeyError, match="wait_minutes"):
        engine.render_entry("handoff.wait")


def test_suggest_many_agrees_with_suggest(engine):
    texts = ["包邮吗", "快递到哪了", "嗯"]
    assert [d.intent for d in engine.suggest_many(texts)] == [engine.suggest(t).intent for t in texts]


# --- policy alone -----------------------------------------------------------------------------

RESULT = IntentResult("free_shipping", 0.97, [("free_shipping", 0.97), ("other", 0.03)], True)
GOOD = Suggestion(id="post.free", text="包邮哦", score=0.8, intent="free_shipping", auto_send=True)


def test_policy_auto_sends_when_everything_holds():
    assert decide(PolicySettings(mode="auto"), RESULT, [GOOD], Gate(available=True))[0] == "auto_send"


@pytest.mark.parametrize(
    "policy, result, suggestion, online, reason",
    [
        (PolicySettings(mode="suggest"), RESULT, GOOD, False, "mode is suggest"),
        (PolicySettings(mode="away"), RESULT, GOOD, True, "an agent is online"),
        (PolicySettings(auto_send_min=0.9), RESULT, GOOD, False, "score 0.80 < auto_send_min 0.9"),
        (PolicySettings(auto_intent_min=0.99), RESULT, GOOD, False, "intent p=0.97 < auto_intent_min 0.99"),
        (PolicySettings(), dataclasses.replace(RESULT, intent="other", confident=False), GOOD, False, "intent unsure"),
        (PolicySettings(), RESULT, GOOD.model_copy(update={"auto_send": False}), False, "post.free is marked auto_send: false"),
        (PolicySettings(), RESULT, GOOD.model_copy(update={"intent": "shipping_time"}), False, "is for shipping_time"),
    ],
)
def test_policy_blockers(policy, result, suggestion, online, reason):
    blockers = auto_send_blockers(policy, result, [suggestion], Gate(available=online))
    assert any(reason in b for b in blockers), blockers
    assert decide(policy, result, [suggestion], Gate(available=online))[0] == "suggest"


def test_policy_human_owner_and_rate_limit():
    owned = auto_send_blockers(PolicySettings(), RESULT, [GOOD], Gate(owner="human"))
    assert owned == ["a person owns this conversation"]
    limited = auto_send_blockers(PolicySettings(), RESULT, [GOOD], Gate(recent_auto_sends=6, max_auto_per_minute=6))
    assert limited == ["rate limit: 6 auto-sends in the last minute"]


def test_policy_without_suggestions():
    assert "no matching reply" in auto_send_blockers(PolicySettings(), RESULT, [], Gate())


def test_policy_hands_off_configured_intents():
    result = IntentResult("lost_parcel", 0.8, [("lost_parcel", 0.8)], True)
    kind, reasons, handoff = decide(PolicySettings(), result, [])
    assert kind == "handoff" and handoff.reason == "lost_parcel" and handoff.group == "aftersale"
    kind, _, _ = decide(PolicySettings(handoff_intents=[]), result, [])
    assert kind == "suggest"
