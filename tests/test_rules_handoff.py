"""The handoff rules, table-driven: `find_trigger`, `group_for`, `intake_needs`, `build_summary`.

A pre-sale 转人工 must reach the pre-sale queue, an after-sale one the after-sale queue; the
order of the rules decides which reason and urgency a ticket carries.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.config import HandoffSettings, PolicySettings
from bot.handoff.summary import build_summary, headline
from bot.handoff.triggers import Trigger, find_trigger, group_for, intake_needs
from bot.state import ConversationState
from bot.store import StoredMessage

POLICY = PolicySettings()
SETTINGS = HandoffSettings()
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def state(**changes) -> ConversationState:
    return ConversationState(conversation_id="c1", customer_id="u1", **changes)


def trigger(intent="other", *, confident=True, angry=False, anger_words=(), has_images=False, st=None):
    return find_trigger(intent=intent, confident=confident, angry=angry, anger_words=list(anger_words),
                        has_images=has_images, state=st or state(), policy=POLICY, settings=SETTINGS)


@pytest.mark.parametrize(
    ("kwargs", "stage", "expected"),
    [
        # 转人工: at once, in the queue of the conversation's stage
        ({"intent": "human_request"}, "presale", Trigger("human_request", "normal", "presale", True, "customer asked for a person")),
        ({"intent": "human_request"}, "insale", Trigger("human_request", "normal", "presale", True, "customer asked for a person")),
        ({"intent": "human_request"}, "aftersale", Trigger("human_request", "normal", "aftersale", True, "customer asked for a person")),
        ({"intent": "human_request", "angry": True, "anger_words": ["垃圾"]}, "presale",
         Trigger("human_request", "high", "presale", True, "customer asked for a person")),
        # anger: urgent, at once; the group from the intent or the stage
        ({"intent": "price_bargain", "angry": True, "anger_words": ["垃圾", "骗子"]}, "presale",
         Trigger("angry", "urgent", "presale", True, "angry: 垃圾, 骗子")),
        ({"intent": "lost_parcel", "angry": True, "anger_words": ["a", "b", "c", "d", "e", "f"]}, "presale",
         Trigger("angry", "urgent", "aftersale", True, "angry: a, b, c, d, e")),
        ({"intent": "human_request", "confident": False, "angry": True, "anger_words": ["滚"]}, "presale",
         Trigger("angry", "urgent", "presale", True, "angry: 滚")),
        # handoff intents: through intake, urgent for threats
        ({"intent": "lost_parcel"}, "presale", Trigger("lost_parcel", "high", "aftersale", False, "intent lost_parcel")),
        ({"intent": "bad_review_threat"}, "presale", Trigger("bad_review_threat", "urgent", "aftersale", False, "intent bad_review_threat")),
        ({"intent": "platform_dispute"}, "presale", Trigger("platform_dispute", "urgent", "aftersale", False, "intent platform_dispute")),
        ({"intent": "counterfeit_claim"}, "presale", Trigger("counterfeit_claim", "urgent", "aftersale", False, "intent counterfeit_claim")),
        ({"intent": "lost_parcel", "confident": False}, "presale", None),
        # photos in an after-sale conversation
        ({"intent": "other", "has_images": True}, "aftersale", Trigger("images", "high", "aftersale", True, "photos sent in an after-sale conversation")),
        ({"intent": "other", "has_images": True}, "presale", None),
        ({"intent": "other"}, "presale", None),
        ({"intent": "human_request", "confident": False}, "presale", None),
    ],
)
def test_find_trigger(kwargs, stage, expected):
    assert trigger(**kwargs, st=state(stage=stage)) == expected


def test_a_shop_handoff_intent_that_is_pre_sale_goes_to_the_presale_queue():
    policy = PolicySettings(handoff_intents=["bulk_discount"])
    got = find_trigger(intent="bulk_discount", confident=True, angry=False, anger_words=[], has_images=False,
                       state=state(), policy=policy, settings=SETTINGS)
    assert got == Trigger("bulk_discount", "high", "presale", False, "intent bulk_discount")
    in_aftersale = find_trigger(intent="bulk_discount", confident=True, angry=False, anger_words=[], has_images=False,
                                state=state(stage="aftersale"), policy=policy, settings=SETTINGS)
    assert in_aftersale.group == "aftersale"


@pytest.mark.parametrize(
    ("streak", "fires"),
    [(SETTINGS.low_confidence_turns - 1, False), (SETTINGS.low_confidence_turns, True), (SETTINGS.low_confidence_turns + 3, True)],
)
def test_low_confidence_streak(streak, fires):
    got = trigger("other", confident=False, st=state(unsure_streak=streak))
    if fires:
        assert got == Trigger("low_confidence", "normal", "presale", True, f"{streak} unsure turns in a row")
    else:
        assert got is None


def test_rules_apply_in_order():
    st = state(stage="aftersale", unsure_streak=99)
    assert trigger("human_request", angry=True, anger_words=["x"], has_images=True, st=st).reason == "human_request"
    assert trigger("lost_parcel", angry=True, anger_words=["x"], has_images=True, st=st).reason == "angry"
    assert trigger("lost_parcel", has_images=True, st=st).reason == "lost_parcel"
    assert trigger("other", has_images=True, st=st).reason == "images"
    assert trigger("other", confident=False, st=st).reason == "low_confidence"


@pytest.mark.parametrize(
    ("stage", "intent", "group"),
    [("presale", None, "presale"), ("presale", "price_bargain", "presale"), ("presale", "lost_parcel", "aftersale"),
     ("insale", "track_parcel", "aftersale"), ("aftersale", None, "aftersale"), ("aftersale", "price_bargain", "aftersale")],
)
def test_group_for(stage, intent, group):
    assert group_for(state(stage=stage), intent, POLICY) == group
    assert group_for(state(stage=stage), intent) == group  # the default policy knows the same intents


@pytest.mark.parametrize(
    ("intent", "has_order", "has_photos", "needs"),
    [
        ("lost_parcel", False, False, ["order"]),
        ("lost_parcel", True, False, []),
        ("quality_complaint", False, False, ["order", "photos"]),
        ("quality_complaint", True, False, ["photos"]),
        ("quality_complaint", False, True, ["order"]),
        ("quality_complaint", True, True, []),
        ("missing_item", True, False, ["photos"]),
        ("bad_review_threat", False, False, ["order"]),
    ],
)
def test_intake_needs(intent, has_order, has_photos, needs):
    assert intake_needs(intent, has_order, has_photos) == needs


def _messages(n: int) -> list[StoredMessage]:
    return [
        StoredMessage(id=i, conversation_id="c1", direction="in" if i % 2 == 0 else "out", text=f"m{i}",
                      at=T0 + timedelta(minutes=i))
        for i in range(n)
    ]


def test_build_summary():
    st = state(stage="aftersale", last_intents=["greeting", "other", "lost_parcel", "other", "lost_parcel", "refund_status"],
               slots={"order_id": "123456789012"}, orders={"o9": "shipped"}, photos_received=True)
    recent = _messages(9)
    summary = build_summary(st, recent, Trigger("lost_parcel", "high", "aftersale", False, "intent lost_parcel"))
    assert summary == {
        "reason": "lost_parcel",
        "detail": "intent lost_parcel",
        "stage": "aftersale",
        "intents": ["greeting", "lost_parcel", "refund_status"],  # once each, in order, no "other"
        "slots": {"order_id": "123456789012"},
        "orders": {"o9": "shipped"},
        "photos": True,
        "last_messages": [
            {"from": "customer" if i % 2 == 0 else "kefu", "text": f"m{i}", "at": (T0 + timedelta(minutes=i)).isoformat()}
            for i in range(3, 9)
        ],
        "bot_said": ["m3", "m5", "m7"],
    }
    summary["slots"]["order_id"] = "changed"
    assert st.slots["order_id"] == "123456789012", "the summary is a copy"


def test_build_summary_of_a_fresh_conversation():
    summary = build_summary(state(), [], Trigger("human_request", "normal", "presale", True, "x"))
    assert summary["intents"] == [] and summary["last_messages"] == [] and summary["bot_said"] == []
    assert headline(summary) == "human_request"


def test_headline():
    st = state(last_intents=["a", "b", "c", "d"], orders={"o7": "paid"})
    recent = [StoredMessage(id=1, conversation_id="c1", direction="in", text="我的快递" * 20, at=T0),
              StoredMessage(id=2, conversation_id="c1", direction="out", text="好的", at=T0)]
    summary = build_summary(st, recent, Trigger("angry", "urgent", "presale", True, ""))
    assert headline(summary) == f"angry · b/c/d · 订单 o7 · “{('我的快递' * 10)}”"
    summary["slots"]["order_id"] = "555"
    assert "订单 555" in headline(summary)
