"""A leading "没有了" is the customer closing, not a bare "no" to drop (`intents.answers.no_more`,
`bot.reading`, `bot.flows.answering`).

Without a question before it, "没有了" opening a turn of several clauses says there is nothing more
to ask: "暂时没有了 我再等等" is a goodbye (the real chats' labelling convention), unless another
clause still wants something. After the closing question ("还有什么可以帮您？") even a bare
"没有了" answers it: nothing more, a goodbye — not the topic of the last question.
"""

from __future__ import annotations

import pytest

from intents.answers import no_more
from tests_support import assistant_and_customer


@pytest.mark.parametrize("text", [
    "没有了", "没了", "暂时没有了", "其他没有了", "没别的了", "没有其他问题了", "目前没有了", "没事了",
    "其他都没有了", "没有了哈", "没有了谢谢", "亲 没有了",
])
def test_nothing_more_is_recognised(text):
    assert no_more(text)


@pytest.mark.parametrize("text", [
    "没有", "没有啊", "暂时没有", "没收到", "没有货了", "没有了吗", "没有其他颜色了吗", "没法用了", "没发货", "都没有了",
])
def test_a_plain_no_or_a_problem_is_not_nothing_more(text):
    assert not no_more(text)


# --- no question before it ----------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "暂时没有了 我再等等",
    "暂时没有了 只能继续等了",
    "其他没有了 商家那边确认取消订单了 谢谢呢",
    "没有了 好的",
    "好的 没有了",
    "没有了，谢谢",
    "没事了 先这样吧",
])
def test_a_turn_opening_with_nothing_more_that_wants_nothing_else_is_a_goodbye(engine, text):
    decision = engine.suggest(text)
    assert decision.intent == "farewell", decision.reasons
    assert decision.handoff is None


def test_the_reason_says_why_and_the_classifier_sees_the_whole_turn(engine):
    reading = engine.read("暂时没有了 我再等等")
    assert reading.result.intent == "farewell" and reading.result.confident
    assert any("没有了" in note for note in reading.notes)
    assert "暂时没有了" in reading.core  # the matcher sees what was said, not "我再等等" alone
    assert not reading.asks and not reading.bare_answer


@pytest.mark.parametrize("text, intent", [
    ("没有了 物流怎么还没到", "logistics_stuck"),  # it asks
    ("没有了 就是想问下什么时候发货", "shipping_time"),
    ("没有了 我的快递五天了还没到", "logistics_stuck"),  # a stated want
])
def test_a_real_want_after_nothing_more_still_wins(engine, text, intent):
    assert engine.suggest(text).intent == intent


def test_nothing_more_asked_with_a_question_mark_is_no_goodbye(engine):
    """"没有了？" asks whether none is left: the turn is not the customer closing."""
    assert engine.suggest("没有了？ 那我再等等").intent != "farewell"
    assert engine.suggest("没有了 那我再等等").intent == "farewell"


@pytest.mark.parametrize("text", ["暂时没有", "没有", "没有啊"])
def test_a_single_no_with_no_question_stays_a_bare_answer(engine, text):
    decision = engine.suggest(text)
    assert decision.intent == "other" and not decision.replies
    assert any("bare answer" in r for r in decision.reasons)


@pytest.mark.parametrize("text", ["没有了", "没了", "没有啦", "米有了", "亲 没有了"])
def test_a_lone_nothing_more_is_an_unsure_goodbye_that_nothing_acts_on(engine, text):
    """Real customers send "没了" as the answer to "还有什么可以帮您？" asked where we could not see it
    (the agent's own client): a goodbye, but one the bot neither sends alone nor hands off on."""
    decision = engine.suggest(text)
    assert decision.intent == "farewell", decision.reasons
    assert decision.kind != "auto_send" and not decision.replies and decision.handoff is None
    assert any("没有了" in r for r in decision.reasons)
    reading = engine.read(text)
    assert not reading.result.confident and reading.bare_answer


def test_through_the_assistant_a_lone_nothing_more_sends_nothing_and_opens_no_case(engine):
    bot, say = assistant_and_customer(engine)
    answer = say("没了", 1)
    assert answer.intent == "farewell" and answer.handoff is None
    assert any("lone 没有了" in r for r in answer.reasons), answer.reasons  # the agent sees why
    # only the away notice (once a day, to any first message) goes out; no goodbye is sent alone
    assert [r.id for r in answer.replies] == ["greeting.away"]
    assert say("没了", 2).replies == []
    bot.store.close()


# --- after the closing question -------------------------------------------------------------------


def _asked(question):
    from bot.flows.answering import note_agent_line
    from bot.state import ConversationState

    state = ConversationState(conversation_id="c", customer_id="c", last_intents=["shipping_time"])
    note_agent_line(state, question)
    return state.prompt


@pytest.mark.parametrize("question", ["还有什么可以帮您？", "请问还有其他问题吗？", "亲，还有别的需要吗？"])
@pytest.mark.parametrize("text", ["没有了", "没有", "暂时没有", "不用了", "没事了", "没有了 好的"])
def test_no_to_the_closing_question_is_a_goodbye(engine, question, text):
    from bot.flows.answering import read_against

    answered = read_against(engine.read(text), _asked(question))
    assert answered is not None, text
    reading, why = answered
    assert reading.result.intent == "farewell" and reading.result.confident
    assert "nothing more to ask" in why


def test_no_to_any_other_question_is_still_read_as_its_topic(engine):
    from bot.flows.answering import read_against

    reading, why = read_against(engine.read("没有了"), _asked("请问您是什么时候下的单？"))
    assert reading.result.intent == "shipping_time" and not reading.result.confident
    assert "an agent confirms" in why


def test_a_question_after_the_closing_question_is_read_on_its_own(engine):
    from bot.flows.answering import read_against

    prompt = _asked("还有什么可以帮您？")
    assert read_against(engine.read("有 发票怎么开"), prompt) is None
    assert engine.read("没有了 那发票怎么开呢").result.intent == "invoice"


def test_the_bots_own_closing_question_opens_the_same_reading():
    from bot.flows.answering import prompt_of
    from bot.models import Suggestion

    back = Suggestion(id="handoff.back", text="亲，我回来啦～还有什么需要帮忙的吗？", score=1, intent="other",
                      auto_send=True)
    offer = Suggestion(id="bargain.gift_followup", text="可以额外送您赠品，您看这样行吗？", score=1,
                       intent="price_bargain", auto_send=True)
    assert prompt_of(back)["anything_else"] is True
    assert not prompt_of(offer).get("anything_else")


def test_through_the_assistant_nothing_more_after_the_agents_closing_question_is_a_goodbye(engine):
    bot, say = assistant_and_customer(engine)

    say("什么时候发货", 1)
    bot.agent_replied("c1", "今天下午就发出哦，请问还有什么可以帮您？")
    answer = say("没有了", 2)
    assert answer.intent == "farewell"
    assert answer.handoff is None
    again = say("没有了", 3)  # the question was answered once: an unsure goodbye, nothing sent alone
    assert again.intent == "farewell" and not again.replies
    bot.store.close()
