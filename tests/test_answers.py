"""Answer acts (`intents.answers`): short answers are recognised, and alone they ask for nothing."""

from __future__ import annotations

import pytest

from intents.answers import ACTS, answer_act, answer_acts, bare_answer, main_act
from tests_support import assistant_and_customer

EXAMPLES = {
    "yes": ["是", "是的", "对", "对的呀", "有的", "要", "可以的", "嗯对"],
    "no": ["不是", "没有", "不要", "不用了", "不需要", "不对", "没有啊"],
    "not_yet": ["还没", "还没有", "没呢", "还没呢", "暂时没有"],
    "ok": ["好的", "好", "ok", "嗯嗯", "知道了", "明白了", "收到", "好吧", "哦"],
    "thanks": ["谢谢", "谢谢你", "多谢", "感谢", "辛苦了", "thx"],
    "bye": ["再见", "拜拜", "bye"],
    "number": ["2", "两个", "3件", "十箱", "[数字x]"],
    "order_number": ["123456789012", "订单号123456789012345678", "[订单x]", "单号:12345678901"],
    "unsure": ["不知道", "不清楚", "忘了"],
}


def test_every_act_has_examples():
    assert set(EXAMPLES) == set(ACTS)


@pytest.mark.parametrize("act, text", [(a, t) for a, texts in EXAMPLES.items() for t in texts])
def test_acts(act, text):
    assert answer_act(text) == act
    assert answer_acts(text) == [act]
    assert bare_answer(text)


@pytest.mark.parametrize("text", ["亲 在吗 是的", "是的亲", "嗯，是的！", "是的。"])
def test_fillers_and_punctuation_around_an_answer(text):
    assert answer_acts(text)[-1] == "yes"


@pytest.mark.parametrize(
    "text, acts, main",
    [
        ("好的谢谢", ["ok", "thanks"], "thanks"),
        ("好的，谢谢", ["ok", "thanks"], "thanks"),
        ("没有了谢谢", ["no", "thanks"], "thanks"),
        ("嗯 没有", ["ok", "no"], "no"),
        ("好的 再见", ["ok", "bye"], "bye"),
        ("嗯嗯好的", ["ok", "ok"], "ok"),
    ],
)
def test_several_acts_and_the_one_that_carries_the_answer(text, acts, main):
    assert answer_acts(text) == acts
    assert main_act(acts) == main


@pytest.mark.parametrize(
    "text",
    ["是正品吗", "没有收到货", "还没收到", "还没发货吗", "好的，什么时候发货", "没有订单号", "不是我买的", "有货吗", "2号能到吗", "在吗", ""],
)
def test_more_than_a_short_answer(text):
    assert answer_acts(text) == []
    assert not bare_answer(text)


# --- without a question before it, a bare answer is never a request ------------------------------


@pytest.mark.parametrize("text", ["是", "没有", "不是", "还没", "好的", "嗯嗯", "2", "123456789012", "不知道", "对的"])
def test_a_bare_answer_alone_is_no_content_intent_and_is_not_sent(engine, text):
    decision = engine.suggest(text)
    assert decision.intent == "other"
    assert decision.kind == "suggest" and not decision.replies
    assert decision.handoff is None
    assert not decision.suggestions
    assert any("bare answer" in r for r in decision.reasons)
    assert [c.role for c in decision.clauses] == ["answer"]


def test_thanks_and_goodbye_stay_what_they_are(engine):
    assert engine.suggest("好的谢谢").intent == "thanks"
    assert engine.suggest("好的，再见").intent == "farewell"


@pytest.mark.parametrize("text", ["没有谢谢", "没有了，谢谢", "没了 谢谢啦"])
def test_no_with_thanks_closes_the_conversation(engine, text):
    """It answers "还有什么可以帮您?": a goodbye (the real chats' labelling convention)."""
    assert engine.suggest(text).intent == "farewell"


def test_a_short_answer_beside_a_request_is_context(engine):
    decision = engine.suggest("好的，什么时候发货")
    assert decision.intent == "shipping_time"
    assert [c.role for c in decision.clauses] == ["answer", "main"]


def test_in_a_conversation_a_bare_answer_with_no_question_starts_nothing(engine):
    from test_replay import by_trigger, replay, say

    lines = by_trigger(replay(engine, [say("c1", "是"), say("c2", "没有"), say("c3", "不是"), say("c4", "还没")]), "message")
    for line in lines:  # away mode: the shop's away greeting goes out once, nothing else
        assert line.kind in {"suggest", "hold"}, (line.customer, line.kind)
        assert [r["phrase_id"] for r in line.replies] in ([], ["greeting.away"])
        assert line.handoff is None


@pytest.mark.parametrize("text", ["好的呢", "嗯呐 ; 好的呢"])
def test_a_bare_answer_after_a_turn_that_asked_nothing_inherits_no_intent(engine, text):
    """No question is open (the bot only suggested): the answer is no follow-up of the last intent."""
    from test_replay import by_trigger, replay, say

    lines = by_trigger(replay(engine, [say("c1", "能便宜点吗"), say("c1", text)], policy={"mode": "suggest"}),
                       "message")
    assert lines[0].intent == "price_bargain" and not lines[0].replies
    assert lines[1].intent == "other" and not any("bargain" in r for r in lines[1].reasons)


# --- with a question before it, a short answer is read against that question ------------------


def _run(engine, *texts):
    from test_replay import by_trigger, replay, say

    return by_trigger(replay(engine, [say("c1", t) for t in texts], policy={"mode": "auto"}), "message")


@pytest.mark.parametrize("act_text", ["是", "没有", "不是", "还没", "好的", "2", "不知道", "123456789012"])
def test_an_answer_to_the_bots_question_is_read_as_its_topic_and_only_suggested(engine, act_text):
    # the second bargain.bulk variant asks "您大概要多少件？"
    lines = _run(engine, "买十件有优惠吗", "买十件有优惠吗", act_text)
    asked, answer = lines[1], lines[2]
    assert "？" in asked.replies[-1]["text"]
    assert answer.intent == "bulk_discount"
    assert answer.kind == "suggest" and not answer.replies and answer.handoff is None
    assert any("to bargain.bulk" in r for r in answer.reasons)


def test_a_question_is_answered_only_once(engine):
    lines = _run(engine, "买十件有优惠吗", "买十件有优惠吗", "是", "是")
    assert lines[2].intent == "bulk_discount"
    assert lines[3].intent == "other" and any("no question before it" in r for r in lines[3].reasons)


def test_an_answer_to_an_offer_does_not_climb_the_bargaining_ladder(engine):
    from bot.flows.answering import prompt_of
    from bot.models import Suggestion

    offer = Suggestion(id="bargain.gift_followup", text="可以额外送您赠品，您看这样行吗？", score=1, intent="price_bargain",
                       auto_send=True)
    assert prompt_of(offer)["expects"] == "answer"
    plain = Suggestion(id="shipping.when", text="付款后48小时内发货。", score=1, intent="shipping_time", auto_send=True)
    assert prompt_of(plain) is None


def test_yes_never_auto_sends_genuine_goods_and_no_never_starts_missing_item_intake(engine):
    for text in ["是", "没有"]:
        (line,) = _run(engine, text)
        assert line.kind == "suggest" and not line.replies, text
        assert line.intent == "other"


def test_an_agents_question_is_what_the_next_short_answer_answers(engine):
    from bot.flows.answering import note_agent_line, read_against
    from bot.state import ConversationState

    state = ConversationState(conversation_id="c", customer_id="c", last_intents=["invoice"])
    note_agent_line(state, "请问发票抬头是个人还是公司？")
    answered = read_against(engine.read("公司"), state.prompt)
    assert answered is None  # "公司" is more than a short answer
    reading, why = read_against(engine.read("是的"), state.prompt)
    assert reading.result.intent == "invoice" and not reading.result.confident
    assert "the agent's question" in why
    note_agent_line(state, "已经帮您改好了。")
    assert state.prompt is None and read_against(engine.read("是的"), state.prompt) is None


def test_through_the_assistant_a_short_answer_answers_the_agents_last_question(engine):
    bot, say = assistant_and_customer(engine)

    say("能开发票吗", 1)
    bot.agent_replied("c1", "可以的，请问要开公司抬头吗？")
    answer = say("是的", 2)
    assert answer.intent == "invoice"  # read against the agent's question, not as a bare "yes"
    assert answer.kind == "suggest" and not answer.replies  # the agent owns the conversation
    again = say("是的", 3)  # the question was answered once: now it is a bare answer again
    assert again.intent == "other"
    bot.store.close()
