"""Clauses and fillers (`intents.clauses`) and how the engine reads multi-clause messages."""

from __future__ import annotations

import pytest

from bot.engine import Engine
from intents.clauses import Classified, asks, choose_main, clauses_of, is_filler, split_clauses, strip_fillers


@pytest.mark.parametrize(
    "text, clauses",
    [
        ("亲 在吗 你好，包邮吗？什么时候发货", ["亲", "在吗", "你好", "包邮吗", "什么时候发货"]),
        ("包邮吗？？？什么时候发货！！", ["包邮吗", "什么时候发货"]),
        ("包邮吗然后什么时候发货", ["包邮吗", "然后什么时候发货"]),
        ("包邮吗另外能开发票吗", ["包邮吗", "另外能开发票吗"]),
        ("包邮吗还有就是什么时候发", ["包邮吗", "还有就是什么时候发"]),
        ("在嗎？什麼時候發貨", ["在吗", "什么时候发货"]),  # 繁體 and full width first
        ("价格12.5元吗", ["价格12.5元吗"]),  # a decimal point is not a full stop
        ("还有货吗", ["还有货吗"]),  # a bare 还有 is not a connective
        ("订单[订单x] 还没到", ["订单[订单x]", "还没到"]),
        # a tag question belongs to the clause before it; alone, or after a filler, it stays
        ("师傅说要收安装费，是真的吗？", ["师傅说要收安装费 是真的吗"]),
        ("帮我改个地址，可以吗", ["帮我改个地址 可以吗"]),
        ("包邮吗？对不对", ["包邮吗 对不对"]),
        ("是真的吗", ["是真的吗"]),
        ("亲，是真的吗", ["亲", "是真的吗"]),
        ("包邮吗？是正品吗", ["包邮吗", "是正品吗"]),  # a real second question is no tag
        ("", []),
    ],
)
def test_split_clauses(text, clauses):
    assert split_clauses(text) == clauses


@pytest.mark.parametrize(
    "clause", ["在吗", "亲", "亲亲", "你好", "您好", "有人吗", "麻烦问下", "请问", "在不在", "亲在吗你好", "hello", "还有"]
)
def test_fillers(clause):
    assert is_filler(clause)


@pytest.mark.parametrize("clause", ["包邮吗", "在哪里发货", "你好像发错货了", "[订单x]", "是", "好的", "谢谢", "嗯嗯"])
def test_not_fillers(clause):
    assert not is_filler(clause)


@pytest.mark.parametrize(
    "clause, body",
    [
        ("亲在吗包邮吗", "包邮吗"),
        ("请问什么时候发货", "什么时候发货"),
        ("麻烦问下能开发票吗", "能开发票吗"),
        ("包邮吗亲", "包邮吗"),
        ("然后什么时候发货", "什么时候发货"),
        ("你好像发错货了", "你好像发错货了"),  # 你好像 is not 你好
        ("在哪里发货", "在哪里发货"),  # 在 only as a whole clause
        ("你好", "你好"),  # nothing else left: unchanged
    ],
)
def test_strip_fillers(clause, body):
    assert strip_fillers(clause) == body


def test_fillers_are_flagged_and_the_rest_keeps_its_words():
    clauses = clauses_of("亲 在吗 你好，我昨天买的，什么时候发货")
    assert [c.filler for c in clauses] == [True, True, True, False, False]
    assert [c.text for c in clauses if not c.filler] == ["我昨天买的", "什么时候发货"]
    assert [c.asks for c in clauses if not c.filler] == [False, True]


@pytest.mark.parametrize("clause", ["包邮吗", "什么时候发货", "能不能便宜点", "帮我查一下物流", "我要退货", "发的什么快递",
                                    "取消订单", "我要取消了", "退款了吗", "换一个", "为何发票开的是[金额x]", "能到对吧",
                                    "尺寸告诉我", "快一点", "改地址", "取消了重新拍", "电话写错了", "付款失败",
                                    "申请退货", "我要申请退款", "已经取消了吗"])
def test_asks(clause):
    assert asks(clause)


@pytest.mark.parametrize("clause", ["我昨天买的", "已经收到了", "东西挺好的",
                                    # a perfective 了 reports what happened: no request
                                    "取消了", "订单被取消了", "取消订单了", "地址改了", "不退了",
                                    # so does 已/已经 before the verb: a request already made
                                    "已取消", "订单已取消", "已经申请退货", "已提交换货", "已改好"])
def test_statements_do_not_ask(clause):
    assert not asks(clause)


@pytest.mark.parametrize("text, asking", [
    ("跟其他的记录仪降压线都通用?", [True]),  # the mark asks though no particle does
    ("跟其他的记录仪降压线都通用", [False]),
    ("我昨天买的？什么时候发货", [True, True]),
    ("我昨天买的，东西挺好的！", [False, False]),
    ("包邮吗然后发顺丰?", [True, True]),
    ("？？", []),  # punctuation only: no clause
])
def test_a_question_mark_makes_its_clause_ask(text, asking):
    assert [c.asks for c in clauses_of(text) if not c.filler] == asking


def c(text, intent, asks=True, confident=True, score=0.9):
    return Classified(text, asks, intent, score, confident)


def test_main_is_the_whole_reading_and_a_second_question_keeps_its_intent():
    clauses = [c("包邮吗", "free_shipping"), c("什么时候发货", "shipping_time")]
    assert choose_main(clauses, "free_shipping", True) == (0, [1], "free_shipping")
    assert choose_main(clauses, "shipping_time", True) == (1, [0], "shipping_time")


def test_without_a_confident_whole_the_first_asking_clause_is_main():
    clauses = [c("我昨天买的", "other", asks=False), c("东西挺好", "product_quality", asks=False),
               c("什么时候发货", "shipping_time")]
    assert choose_main(clauses, "other", False) == (2, [], "shipping_time")


def test_a_statement_is_never_the_request():
    clauses = [c("我家里就我一个人", "other", asks=False), c("没有其他人", "missing_item", asks=False)]
    assert choose_main(clauses, "other", False) == (None, [], None)


def test_an_urgent_question_is_never_a_mere_second_question():
    clauses = [c("包邮吗", "free_shipping"), c("我的快递是不是丢了", "lost_parcel")]
    main, others, intent = choose_main(clauses, "free_shipping", True, frozenset({"lost_parcel"}))
    assert (main, intent) == (1, "lost_parcel") and others == [0]


def test_one_further_question_per_intent():
    clauses = [c("包邮吗", "free_shipping"), c("运费多少", "free_shipping"), c("能开票吗", "invoice")]
    assert choose_main(clauses, "free_shipping", True) == (0, [2], "free_shipping")


# --- the engine: fillers never swallow the question; every clause keeps its intent -------------


@pytest.mark.parametrize("prefix", ["", "在吗？", "亲 在吗 你好，", "亲，", "你好，请问"])
def test_greeting_prefixes_do_not_change_the_reading(engine, prefix):
    decision = engine.suggest(prefix + "是正品吗")
    assert decision.intent == "authenticity"
    assert decision.suggestions[0].intent == "authenticity"


def test_a_tag_question_is_not_read_as_a_question_of_its_own(engine):
    """"是真的吗" alone asks whether the goods are genuine; after another clause it asks whether
    that clause is true. Read alone it auto-sent "保证正品" (p 1.00) to a customer asking whether
    the installer may charge a fee."""
    fee = engine.suggest("师傅说要收安装费，是真的吗？")
    assert fee.intent != "authenticity" and fee.kind != "auto_send"
    call = engine.suggest("有人打电话说要给我退款，是真的吗")
    assert [c.text for c in call.clauses] == ["有人打电话说要给我退款 是真的吗"]  # one clause, read whole
    assert call.kind != "auto_send"
    assert engine.suggest("是真的吗").intent == "authenticity"


def test_a_greeting_alone_is_still_a_greeting(engine):
    decision = engine.suggest("亲 在吗")
    assert decision.intent == "greeting"
    assert [c.role for c in decision.clauses] == ["filler", "filler"]


@pytest.mark.parametrize("text, asking", [
    ("我已经付款了，没填写啊。", False),
    ("取消订单了 你查查", False),  # the clause that reads cancel_order reports; 你查查 asks for something else
    ("我要取消订单", True),
    ("你好，包邮吗", True),
    ("是", False),  # a bare answer asks nothing
])
def test_a_reading_knows_whether_the_message_asks_for_its_intent(engine, text, asking):
    assert engine.read(text).asks is asking


def test_a_report_of_a_cancellation_is_not_answered_as_a_request_to_cancel(engine):
    """"取消订单了 你查查": the customer says it was cancelled; the bot must not send how to cancel.

    With no bar on the intent's probability, only the statement holds the reply back.
    """
    config = engine.config.model_copy(deep=True)
    config.policy.auto_intent_min = 0.0
    engine = Engine(config, engine.classifier, engine.phrasebook)
    decision = engine.suggest("取消订单了 你查查")
    assert decision.kind != "auto_send" and not decision.replies
    assert any("asks nothing" in r for r in decision.reasons)
    asked = engine.suggest("我要取消订单")
    assert asked.intent == "cancel_order"
    assert not any("asks nothing" in r for r in asked.reasons)


def test_two_questions_both_get_suggestions_and_the_trace_shows_the_clauses(engine):
    decision = engine.suggest("亲 在吗 你好，包邮吗？什么时候发货")
    roles = {c.text: (c.role, c.intent) for c in decision.clauses}
    assert roles["亲"] == ("filler", "") and roles["在吗"][0] == "filler"
    assert {roles["包邮吗"][1], roles["什么时候发货"][1]} == {"free_shipping", "shipping_time"}
    assert {roles["包邮吗"][0], roles["什么时候发货"][0]} == {"main", "question"}
    question = next(c for c in decision.clauses if c.role == "question")
    assert question.suggestions and question.suggestions[0].intent == question.intent
    assert decision.trace["clauses"][3]["text"] == "包邮吗"
    if decision.kind == "auto_send":  # both questions answered, never only one
        assert {r.intent for r in decision.replies} == {"free_shipping", "shipping_time"}


def test_a_second_question_an_agent_must_answer_keeps_the_message_from_going_out_alone(engine):
    # the main clause alone may go out (a low intent bar), so only the second question holds it back
    config = engine.config.model_copy(deep=True)
    config.policy.auto_intent_min = 0.5
    decision = Engine(config, engine.classifier, engine.phrasebook).suggest("是正品吗？拆封了还能退吗")
    assert decision.kind != "auto_send"
    assert any("further question" in r for r in decision.reasons)


def test_suggest_many_reads_clauses_like_suggest(engine):
    texts = ["在吗？包邮吗", "是", "好的谢谢", "包邮吗？什么时候发货"]
    assert [(d.intent, d.kind) for d in engine.suggest_many(texts)] == [
        (d.intent, d.kind) for d in (engine.suggest(t) for t in texts)
    ]


def test_cli_suggest_shows_the_clauses(config_path, engine):
    from click.testing import CliRunner

    from bot.cli import main

    result = CliRunner().invoke(main, ["suggest", "在吗？包邮吗？什么时候发货", "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    assert "clauses   在吗 (filler) | 包邮吗 (" in result.output
    assert "question  " in result.output


@pytest.mark.parametrize("clause, seeks", [
    ("后续处理结果在哪看的", True), ("什么时候发货", True), ("能退吗", True), ("有没有货", True),
    ("还要那么久啊", False), ("不会麻烦你们吧", False), ("服务真好", False),
])
def test_seeks_answer_tells_a_real_question_from_a_rhetorical_one(clause, seeks):
    from intents.clauses import seeks_answer

    assert seeks_answer(clause) is seeks


@pytest.mark.parametrize("text, intent", [
    ("谢谢，服务真好", "thanks"),  # the thanks is what it says
    ("还要那么久啊? 谢谢你", "thanks"),  # a rhetorical question beside it
])
def test_thanks_beside_a_statement_is_thanks(engine, text, intent):
    assert engine.read(text).result.intent == intent


def test_thanks_never_covers_a_question_it_leaves_unanswered(engine):
    """"目前没有了 谢谢 后续处理结果在哪看的" asks where to see the result: no goodbye goes out."""
    decision = engine.suggest("目前没有了 谢谢 后续处理结果在哪看的")
    assert decision.intent not in {"thanks", "farewell"}
    assert decision.kind != "auto_send"
