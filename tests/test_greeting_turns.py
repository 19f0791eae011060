"""Greetings beside what is not a question, and the platform's entry stamp (`intents.clauses`,
`bot.reading`).

JD's client stamps "京东快递(移动端)" on a line when the chat was opened from that entry: the customer
did not type it, so it is a filler, not a courier question. A short statement followed by 在吗/你好
("我已经购买 在?") asks for nothing we can tell: the customer is calling for someone, so the turn is a
greeting — but a question or a stated problem beside the greeting always wins, a longer turn is
left to a person rather than answered with a hello, and a greeting in front changes nothing (the
opener real customers put before anything).
"""

from __future__ import annotations

import pytest

from intents.clauses import is_entry_tag, is_filler, is_greeting


@pytest.mark.parametrize("clause", ["京东快递(移动端)", "京东快递（移动端）", "京东(PC端)", "京东超市(小程序)"])
def test_the_entry_stamp_is_a_filler_but_no_greeting(clause):
    assert is_entry_tag(clause) and is_filler(clause) and not is_greeting(clause)


@pytest.mark.parametrize("clause", ["京东快递", "顺丰(次日达)", "(移动端)", "我用的是京东快递(移动端)下的单吧"])
def test_what_the_customer_typed_is_no_entry_stamp(clause):
    assert not is_entry_tag(clause)


@pytest.mark.parametrize("clause", ["在吗", "在", "你好", "有人吗", "亲 在吗", "您好"])
def test_greetings(clause):
    assert is_greeting(clause)


@pytest.mark.parametrize("clause", ["亲", "美女", "麻烦问下", "那个", "我在家"])
def test_an_address_or_a_hedge_is_no_greeting(clause):
    assert not is_greeting(clause)


@pytest.mark.parametrize("text, intent", [
    ("你好 京东快递(移动端)", "greeting"),
    ("在吗 京东快递(移动端)", "greeting"),
    ("快递今天可以到吗 京东快递(移动端)", "shipping_time"),
    ("修改地址 京东快递(移动端)", "order_change"),
])
def test_the_entry_stamp_changes_nothing_the_customer_said(engine, text, intent):
    assert engine.suggest(text).intent == intent


@pytest.mark.parametrize("text", ["我已经购买 在?", "我昨天买的 在吗", "我是上次那个顾客 你好"])
def test_a_short_statement_followed_by_a_greeting_is_a_greeting(engine, text):
    decision = engine.suggest(text)
    assert decision.intent == "greeting", decision.reasons
    assert any("greeting beside a statement" in r for r in decision.reasons)
    assert decision.suggestions and decision.suggestions[0].intent == "greeting"


@pytest.mark.parametrize("text, intent", [
    ("在吗 快递三天没动了", "logistics_stuck"),  # a stated problem wins
    ("你好 我要退货", "return_exchange"),  # a request wins
    ("在吗 这个是正品吗", "authenticity"),  # a question wins
])
def test_a_want_beside_a_greeting_wins(engine, text, intent):
    assert engine.suggest(text).intent == intent


@pytest.mark.parametrize("text", [
    "亲 我已经付款了",  # 亲 is an address, not a call for someone
    "好的 已经提交了 在 [订单x] 这个订单号",  # several clauses: more than we read
    "是的 预约安装派送 你好，因本人不在郑州[地址x]，谢谢",
    "你好，我这个没有反应了",  # a problem told: a person, not a hello
    "你好，电话没有收到",
])
def test_no_greeting_is_made_of_an_address_or_a_longer_turn(engine, text):
    assert engine.suggest(text).intent != "greeting"


@pytest.mark.parametrize("text", ["我试试", "我提交了", "哦哦 那算了", "我已经购买"])
@pytest.mark.parametrize("prefix", ["在吗？", "亲 在吗 你好，", "你好 "])
def test_a_greeting_in_front_never_changes_the_reading(engine, prefix, text):
    """The opener customers put before anything: "在吗？我试试" reads as "我试试" does."""
    plain = engine.suggest(text)
    prefixed = engine.suggest(prefix + text)
    assert prefixed.intent == plain.intent
    assert prefixed.kind == plain.kind
