"""Direct tests of the pipeline's pure rules: one decision on the proposals, the away greeting, the queue rules."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.config import PolicySettings
from bot.engine import Engine
from bot.flows import JobSpec
from bot.handoff.ticket import Ticket
from bot.handoff.triggers import Trigger, priority_for, queue_for
from bot.models import Suggestion
from bot.pipeline.decide import decide, with_away
from bot.pipeline.proposal import Effects, Proposal
from bot.pipeline.queued import on_topic
from bot.policy import Gate
from bot.state import ConversationState

NOW = datetime.fromisoformat("2026-11-23T10:00:00+08:00")


def line(phrase_id: str = "bargain.manager", auto: bool = True, text: str = "亲，我去帮您问问主管～") -> Suggestion:
    return Suggestion(id=phrase_id, text=text, score=1.0, intent="price_bargain", auto_send=auto)


@pytest.fixture(scope="module")
def answer(engine):
    return engine.answer("能便宜点吗", engine.read("能便宜点吗"))


def config(engine, **policy):
    c = engine.config.model_copy(deep=True)
    c.policy = c.policy.model_copy(update=policy)
    return c


FOLLOW_UP = Effects({"bargain_followup": "pending"}, (JobSpec("f:c1", "bargain_followup", NOW),))


def test_a_sent_line_carries_its_effects(engine, answer):
    out = decide(config(engine, mode="auto"), Proposal("flow", "ask #3", line=line(), effects=FOLLOW_UP, keep=3),
                 answer, Gate(platform="taobao"))
    assert out.kind == "auto_send" and [r.id for r in out.replies] == ["bargain.manager"]
    assert out.effects == FOLLOW_UP and len(out.suggestions) <= 3


@pytest.mark.parametrize("gate_or_line", [
    (Gate(recent_auto_sends=6, max_auto_per_minute=6), line()),        # rate limit
    (Gate(owner="human"), line()),                                      # a person owns it
    (Gate(), line(auto=False)),                                         # agent-only line
    (Gate(), line(text="加我微信给您便宜")),                              # a red line
])
def test_a_blocked_line_is_only_suggested_and_changes_nothing(engine, answer, gate_or_line):
    gate, proposed = gate_or_line
    out = decide(config(engine, mode="auto"), Proposal("flow", "ask #3", line=proposed, effects=FOLLOW_UP),
                 answer, gate)
    assert out.kind == "suggest" and out.replies == [] and out.suggestions[0].id == proposed.id
    assert out.effects == Effects(), "no job, no promise for a line that does not go out"
    assert out.reasons[0] == "ask #3" and len(out.reasons) > 1


def test_mode_suggest_blocks_a_scripted_line(engine, answer):
    out = decide(config(engine, mode="suggest"), Proposal("flow", "x", line=line(), effects=FOLLOW_UP), answer, Gate())
    assert out.kind == "suggest" and out.effects == Effects()


def test_a_blocked_intake_question_falls_back_to_the_handoff(engine, answer):
    trigger = Trigger("lost_parcel", "high", "aftersale", False, "intent lost_parcel")
    handoff = Proposal("handoff", trigger.detail, handoff=trigger)
    intake = Proposal("intake", "ask order", line=line("aftersale.ask_order"), fallback=handoff,
                      effects=Effects({"intake": {"order": "asked"}}))
    limited = Gate(recent_auto_sends=9, max_auto_per_minute=2)
    out = decide(config(engine, mode="auto"), intake, answer, limited)
    assert out.kind == "handoff" and out.handoff_trigger == trigger and out.effects == Effects()
    asked = decide(config(engine, mode="auto"), intake, answer, Gate())
    assert asked.kind == "auto_send" and asked.effects.state == {"intake": {"order": "asked"}}
    assert asked.suggestions[0].id == "aftersale.ask_order"


@pytest.mark.parametrize("threshold, kind", [(0.5, "auto_send"), (1.01, "handoff")])
def test_an_intake_that_opens_a_case_needs_the_auto_send_confidence(engine, answer, threshold, kind):
    """Asking for an order number on an unsure reading asks a stranger about a problem they may not have."""
    trigger = Trigger("lost_parcel", "high", "aftersale", False, "intent lost_parcel")
    handoff = Proposal("handoff", trigger.detail, handoff=trigger)
    opening = Proposal("intake", "ask order", line=line("aftersale.ask_order"), fallback=handoff,
                       effects=Effects({"intake": {"order": "asked"}}), on_intent=True)
    out = decide(config(engine, mode="auto", auto_intent_min=threshold), opening, answer, Gate())
    assert out.kind == kind
    if kind == "handoff":
        assert out.handoff_trigger == trigger and out.effects == Effects()
    # a later intake question (the case is open; this message is the order number) is not held to it
    later = Proposal("intake", "ask photos", line=line("aftersale.ask_photos"), fallback=handoff)
    assert decide(config(engine, mode="auto", auto_intent_min=threshold), later, answer, Gate()).kind == "auto_send"


def test_a_flow_line_answering_the_message_needs_the_auto_send_confidence(engine, answer):
    ladder = Proposal("flow", "ask #1", line=line(), effects=FOLLOW_UP, on_intent=True)
    unsure = decide(config(engine, mode="auto", auto_intent_min=1.01), ladder, answer, Gate())
    assert unsure.kind == "suggest" and unsure.effects == Effects() and "auto_intent_min" in unsure.reasons[-1]
    assert decide(config(engine, mode="auto", auto_intent_min=0.5), ladder, answer, Gate()).kind == "auto_send"
    timer = Proposal("flow", "gift", line=line("bargain.gift_followup"), effects=FOLLOW_UP)  # not on a message
    assert decide(config(engine, mode="auto", auto_intent_min=1.01), timer, answer, Gate()).kind == "auto_send"


def test_a_hold_keeps_the_suggestions_and_says_why(engine, answer):
    out = decide(config(engine), Proposal("carry_over", hold=True, reasons=("follow-up",), answer_reasons=True),
                 answer, Gate(available=True))
    assert out.kind == "suggest" and out.replies == [] and out.suggestions == answer.suggestions
    assert out.reasons[0] == "follow-up" and "an agent is online" in out.reasons
    bare = decide(config(engine), Proposal("owner", hold=True, reasons=("owned",)), answer, Gate())
    assert bare.reasons == ["owned"]


def test_the_answer_alone_is_decided_on_its_merits(engine, answer):
    out = decide(config(engine, mode="auto"), Proposal("answer"), answer, Gate())
    assert out.kind == "auto_send" and out.replies[0].id == answer.suggestions[0].id
    assert decide(config(engine, mode="suggest"), Proposal("answer"), answer, Gate()).kind == "suggest"


def greeting():
    return Suggestion(id="greeting.away", text="亲，现在客服不在～", score=1.0, intent="greeting", auto_send=True)


def state(**fields) -> ConversationState:
    return ConversationState(conversation_id="c", customer_id="c", **fields)


def test_the_away_greeting_goes_first_once_a_day(engine, answer):
    c = config(engine, mode="away")
    sent = decide(c, Proposal("answer"), answer, Gate())
    out = with_away(c, sent, greeting, Gate(), "price_bargain", NOW, state())
    assert [r.id for r in out.replies] == ["greeting.away", *[r.id for r in sent.replies]]
    assert out.effects.state == {"away_greeted_on": "2026-11-23"}
    again = with_away(c, sent, greeting, Gate(), "price_bargain", NOW, state(away_greeted_on="2026-11-23"))
    assert again is sent
    tomorrow = with_away(c, sent, greeting, Gate(), "price_bargain", NOW + timedelta(days=1),
                         state(away_greeted_on="2026-11-23"))
    assert tomorrow.replies[0].id == "greeting.away"


def test_the_away_greeting_holds_a_suggestion_and_answers_a_greeting_alone(engine, answer):
    c = config(engine, mode="away")
    held = decide(c, Proposal("owner", hold=True, reasons=("x",)), answer, Gate())
    out = with_away(c, held, greeting, Gate(), "price_bargain", NOW, state())
    assert out.kind == "hold" and [r.id for r in out.replies] == ["greeting.away"]
    hello = with_away(c, held, greeting, Gate(), "greeting", NOW, state())
    assert hello.kind == "auto_send" and [r.id for r in hello.replies] == ["greeting.away"]


def test_through_the_server_an_unsure_greeting_gets_the_away_greeting_and_waits(engine):
    """"你好" surely greets: the away greeting answers it. Read below auto_intent_min, a greeting is
    greeted but held for an agent ("亲，好了么 还在吗" asks about something)."""
    from bot.pipeline.offline import fresh_decision

    sure = fresh_decision(engine, "你好")
    assert (sure.intent, sure.kind, [r.id for r in sure.replies]) == ("greeting", "auto_send", ["greeting.away"])
    strict = config(engine, auto_intent_min=1.0)
    unsure = fresh_decision(Engine(strict, engine.classifier, engine.phrasebook), "你好")
    assert (unsure.intent, unsure.kind, [r.id for r in unsure.replies]) == ("greeting", "hold", ["greeting.away"])


@pytest.mark.parametrize("why", ["agents", "mode", "handoff", "owner", "rate"])
def test_no_away_greeting_when_it_does_not_apply(engine, answer, why):
    c = config(engine, mode="auto" if why == "mode" else "away")
    gate = {"agents": Gate(available=True), "owner": Gate(owner="human"),
            "rate": Gate(recent_auto_sends=5, max_auto_per_minute=5)}.get(why, Gate())
    base = decide(c, Proposal("answer"), answer, gate)
    if why == "handoff":
        base = decide(c, Proposal("handoff", "h", handoff=Trigger("angry", "urgent", "presale", True, "h")),
                      answer, gate)
    assert with_away(c, base, greeting, gate, "price_bargain", NOW, state()) is base


@pytest.mark.parametrize(("stage", "intent", "group"), [
    ("presale", "price_bargain", "presale"), ("aftersale", "price_bargain", "aftersale"),
    ("presale", "lost_parcel", "aftersale"), ("insale", None, "presale"), ("aftersale", None, "aftersale"),
])
def test_one_queue_rule(stage, intent, group):
    assert queue_for(stage, intent, PolicySettings()) == group


@pytest.mark.parametrize(("reason", "intent", "angry", "priority"), [
    ("angry", None, True, "urgent"), ("bad_review_threat", "bad_review_threat", False, "urgent"),
    ("platform_dispute", "platform_dispute", False, "urgent"), ("counterfeit_claim", "counterfeit_claim", False, "urgent"),
    ("human_request", None, False, "normal"), ("human_request", None, True, "high"),
    ("lost_parcel", "lost_parcel", False, "high"), ("images", None, False, "high"),
    ("low_confidence", None, False, "normal"), ("agent_joined", None, False, "normal"),
])
def test_one_priority_rule(reason, intent, angry, priority):
    assert priority_for(reason, intent, angry) == priority


def test_the_engine_alone_hands_off_by_the_same_rule(engine):
    decision = engine.suggest("我要给差评")
    assert decision.intent == "bad_review_threat" and decision.kind == "handoff"
    assert (decision.handoff.group, decision.handoff.priority) == ("aftersale", "urgent")


def ticket(**fields) -> Ticket:
    base = dict(id=1, conversation_id="c", customer_id="c", status="queued", reason="lost_parcel",
                priority="high", group="aftersale", created_at=NOW, updated_at=NOW, sla_due=NOW,
                summary={"intents": ["lost_parcel"]})
    return Ticket(**{**base, **fields})


def test_the_topic_of_a_queued_ticket():
    policy = PolicySettings()
    assert on_topic(ticket(), "lost_parcel", True, None, policy.handoff_intents)
    assert on_topic(ticket(), "track_parcel", True, None, policy.handoff_intents)  # after-sale queue: any after-sale matter
    assert not on_topic(ticket(), "free_shipping", True, None, policy.handoff_intents)
    assert on_topic(ticket(), "free_shipping", False, None, policy.handoff_intents), "unsure is the agent's"
    assert on_topic(ticket(group="sales", reason="bulk_order", summary={}), "price_bargain", True, None, ())
    assert not on_topic(ticket(group="presale", reason="x", summary={}), "price_bargain", True, None, ())
