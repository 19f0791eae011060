"""The send policy's pure rules, table-driven: `decide`, `auto_send_blockers`, `mode_blockers`,
`line_blockers`, `script_blockers`, `intent_blocker` and `below`.

Each row is one condition that must stop (or allow) an auto-send, so a mutant that drops the
platform from the red-line check, forgets the shop's banned words or sends a pre-sale handoff
to the after-sale queue fails a named case here.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bot.config import PolicySettings
from bot.config.conversation import DEFAULT_HANDOFF_INTENTS
from bot.models import Suggestion
from bot.policy import (
    Gate,
    auto_send_blockers,
    below,
    decide,
    decide_answer,
    intent_blocker,
    line_blockers,
    mode_blockers,
    script_blockers,
)
from intents.classifier import IntentResult
from intents.clauses import STATED

AUTO = PolicySettings(mode="auto")


def result(intent="free_shipping", score=0.99, confident=True, runner_up=("other", 0.01)):
    return IntentResult(intent, score, [(intent, score), runner_up], confident)


def line(text="亲，全国包邮哦", *, id="shipping.free", intent="free_shipping", score=0.9, auto_send=True, requires=()):
    return Suggestion(id=id, text=text, score=score, intent=intent, auto_send=auto_send, requires=list(requires))


# --- decide ------------------------------------------------------------------------------------


def test_a_confident_clean_line_is_auto_sent():
    assert decide(AUTO, result(), [line()]) == ("auto_send", [], None)


@pytest.mark.parametrize(
    ("intent", "group", "priority"),
    [("lost_parcel", "aftersale", "high"), ("quality_complaint", "aftersale", "high"),
     ("bad_review_threat", "aftersale", "urgent")],
)
def test_a_handoff_intent_goes_to_its_queue(intent, group, priority):
    """The same group and priority rule as the handoff triggers (`queue_for`, `priority_for`)."""
    kind, reasons, handoff = decide(AUTO, result(intent), [line(intent=intent)])
    assert kind == "handoff"
    assert reasons == [f"intent {intent} is handled by a person"]
    assert (handoff.reason, handoff.group, handoff.priority) == (intent, group, priority)


def test_a_pre_sale_handoff_intent_goes_to_the_presale_queue():
    policy = PolicySettings(mode="auto", handoff_intents=["human_request", "bulk_discount"])
    for intent in ("human_request", "bulk_discount"):
        kind, _, handoff = decide(policy, result(intent), [line(intent=intent)])
        assert (kind, handoff.group) == ("handoff", "presale"), intent


def test_no_handoff_when_unsure_or_a_person_already_owns_it():
    kind, _, handoff = decide(AUTO, result("lost_parcel", confident=False), [])
    assert (kind, handoff) == ("suggest", None)
    kind, reasons, handoff = decide(AUTO, result("lost_parcel"), [line(intent="lost_parcel")], Gate(owner="human"))
    assert (kind, handoff) == ("suggest", None)
    assert "a person owns this conversation" in reasons


def test_decide_passes_the_gate_on():
    kind, reasons, _ = decide(AUTO, result(), [line("抱歉，本店不开发票")], Gate(platform="tmall"))
    assert (kind, reasons) == ("suggest", ["red line invoice_refusal: '不开发票'"])


# --- auto_send_blockers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("res", "lines", "expected"),
    [
        (result(), [line()], []),
        (result(score=0.62, confident=False), [line()], ["intent unsure (free_shipping p=0.62)"]),
        (result(score=0.89), [line()], ["intent p=0.89 < auto_intent_min 0.9"]),
        (result(score=0.9), [line()], []),  # exactly the minimum is enough
        (result(), [], ["no matching reply"]),
        (result(score=0.5, confident=False), [], ["intent unsure (free_shipping p=0.50)", "no matching reply"]),
        (result(), [line(intent="invoice", id="invoice.ok")], ["best reply invoice.ok is for invoice, not free_shipping"]),
        (result(), [line(score=0.49)], ["score 0.49 < auto_send_min 0.5"]),
        (result(), [line(score=0.5)], []),  # exactly the minimum is enough
        (result(), [line(auto_send=False)], ["shipping.free is marked auto_send: false"]),
        (result(), [line(), line("加我微信", id="x")], []),  # only the best line is judged
    ],
)
def test_auto_send_blockers(res, lines, expected):
    assert auto_send_blockers(AUTO, res, lines) == expected


def test_mode_blockers_come_first_even_with_no_reply():
    policy = PolicySettings(mode="suggest")
    assert auto_send_blockers(policy, result(confident=False, score=0.3), []) == [
        "mode is suggest", "intent unsure (free_shipping p=0.30)", "no matching reply",
    ]
    assert auto_send_blockers(policy, result(), [line("加我微信")]) == [
        "mode is suggest", "red line off_platform: '加我微信'",
    ]


# --- mode_blockers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "gate", "expected"),
    [
        ("auto", Gate(), []),
        ("auto", Gate(available=True), []),
        ("away", Gate(), []),
        ("away", Gate(available=True), ["an agent is online"]),
        ("suggest", Gate(), ["mode is suggest"]),
        ("suggest", Gate(available=True), ["mode is suggest"]),
        ("auto", Gate(owner="human"), ["a person owns this conversation"]),
        ("auto", Gate(recent_auto_sends=5, max_auto_per_minute=6), []),
        ("auto", Gate(recent_auto_sends=6, max_auto_per_minute=6), ["rate limit: 6 auto-sends in the last minute"]),
        ("away", Gate(available=True, owner="human", recent_auto_sends=9, max_auto_per_minute=2),
         ["an agent is online", "a person owns this conversation", "rate limit: 9 auto-sends in the last minute"]),
    ],
)
def test_mode_blockers(mode, gate, expected):
    assert mode_blockers(PolicySettings(mode=mode), gate) == expected


# --- line_blockers: what this text may not say -------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "text", "expected"),
    [
        ("tmall", "抱歉，本店不开发票", ["red line invoice_refusal: '不开发票'"]),
        ("taobao", "抱歉，本店不开发票", []),  # the platform reaches the red-line check
        ("jd", "抱歉，本店不开发票", []),
        ("jd", "加我微信更便宜", ["red line off_platform: '加我微信'"]),
        ("taobao", "全网最低价", ["red line banned_word: '全网最低'", "red line banned_word: '最低价'"]),
    ],
)
def test_line_blockers_check_the_red_lines_of_the_gate_platform(platform, text, expected):
    assert line_blockers(AUTO, line(text), Gate(platform=platform)) == expected


def test_line_blockers_check_the_shops_banned_words():
    policy = PolicySettings(mode="auto", banned_words=["秒杀", "清仓"])
    assert line_blockers(policy, line("今天秒杀价"), Gate()) == ["red line banned_word: '秒杀'"]
    assert line_blockers(AUTO, line("今天秒杀价"), Gate()) == []


@pytest.mark.parametrize(
    ("requires", "facts", "expected"),
    [
        ((), None, []),
        (("platform:tmall",), None, ["shipping.free requires platform:tmall, which does not hold"]),
        (("platform:taobao",), None, []),  # with no facts, the platform is known
        (("order_paid",), frozenset({"order_paid"}), []),
        (("order_paid", "concession_made"), frozenset({"order_paid"}),
         ["shipping.free requires concession_made, which does not hold"]),
    ],
)
def test_line_blockers_check_requires_against_the_facts(requires, facts, expected):
    assert line_blockers(AUTO, line(requires=requires), Gate(facts=facts)) == expected


def test_line_blockers_list_every_reason():
    bad = line("加我微信", auto_send=False, requires=("order_paid",))
    assert line_blockers(AUTO, bad, Gate(facts=frozenset())) == [
        "shipping.free is marked auto_send: false",
        "shipping.free requires order_paid, which does not hold",
        "red line off_platform: '加我微信'",
    ]


def test_gate_known_facts():
    assert Gate(platform="jd").known_facts() == frozenset({"platform:jd"})
    assert Gate(facts=frozenset({"order_paid"})).known_facts() == frozenset({"order_paid"})
    assert Gate(facts=frozenset()).known_facts() == frozenset()


# --- script_blockers: a flow's line skips the intent checks, never the rest ---------------------


@pytest.mark.parametrize(
    ("policy", "gate", "scripted", "expected"),
    [
        (AUTO, Gate(), line(score=0.0, intent="other"), []),
        (PolicySettings(mode="suggest"), Gate(), line(), ["mode is suggest"]),
        (AUTO, Gate(recent_auto_sends=2, max_auto_per_minute=2), line(),
         ["rate limit: 2 auto-sends in the last minute"]),
        (AUTO, Gate(platform="tmall"), line("发票开不了哦"), ["red line invoice_refusal: '发票开不了'"]),
        (AUTO, Gate(platform="taobao"), line("发票开不了哦"), []),
        (PolicySettings(mode="auto", banned_words=["秒杀"]), Gate(), line("秒杀"), ["red line banned_word: '秒杀'"]),
        (AUTO, Gate(owner="human"), line(auto_send=False),
         ["a person owns this conversation", "shipping.free is marked auto_send: false"]),
    ],
)
def test_script_blockers(policy, gate, scripted, expected):
    assert script_blockers(policy, scripted, gate) == expected


# --- below ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "threshold", "shown"),
    [
        (0.42, 0.5, "0.42"),
        (0.4952, 0.5, "0.495"),
        (0.49999, 0.5, "0.49999"),
        (0.4999999, 0.5, "0.499999"),  # rounding to 6 digits still reads 0.500000: truncated
        (0.9599, 0.96, "0.9599"),
        (0.9999999, 1.0, "0.999999"),  # truncated to 6 digits, not rounded up to the threshold
    ],
)
def test_below_never_prints_the_threshold(value, threshold, shown):
    assert below(value, threshold) == shown
    assert float(shown) < threshold


# --- the policy's own survivors after the pipeline rewrite ---------------------------------------

def test_a_shop_intent_of_the_aftersale_group_is_handed_to_aftersale():
    """decide passes the shop's policy to the queue rule: its own after-sale intents count."""
    policy = PolicySettings(mode="auto", handoff_intents=["warranty_claim"])
    policy._aftersale = frozenset({"warranty_claim"})  # what Config sets for a custom intent of group aftersale
    kind, _, handoff = decide(policy, result("warranty_claim"), [line(intent="warranty_claim")])
    assert (kind, handoff.group) == ("handoff", "aftersale")


def test_a_request_for_a_person_as_a_handoff_intent_is_normal_priority():
    """The reason is the intent: 转人工 is a plain request (normal), not a problem (high)."""
    kind, _, handoff = decide(AUTO, result("human_request"), [line(intent="human_request")])
    assert (kind, handoff.reason, handoff.priority) == ("handoff", "human_request", "normal")


# decide_answer: the engine's answer with its further questions (duck-typed stand-ins for Answer)

def clause(text, *suggestions):
    return SimpleNamespace(text=text, suggestions=list(suggestions))


def answer(main=None, suggestions=None, notes=(), questions=(), asks=True):
    main = main or result()
    reading = SimpleNamespace(notes=list(notes), result=main, asks=asks)
    return SimpleNamespace(result=main, suggestions=[line()] if suggestions is None else suggestions,
                           reading=reading, questions=list(questions))


COURIER = line("亲，默认发中通哦", id="courier.default", intent="courier_choice")


def test_a_confident_answer_sends_its_best_reply_with_the_readings_notes_first():
    verdict = decide_answer(AUTO, answer(notes=["filler 亲 removed"]), Gate())
    assert (verdict.kind, [r.id for r in verdict.replies]) == ("auto_send", ["shipping.free"])
    assert verdict.reasons == ["filler 亲 removed"] and verdict.handoff is None


def test_a_message_that_asks_nothing_is_not_answered_alone():
    """"我已经付款了" states; a confident topic is then a guess at what the customer wants."""
    verdict = decide_answer(AUTO, answer(asks=False, notes=["n"]), Gate())
    assert (verdict.kind, verdict.replies) == ("suggest", [])
    assert verdict.reasons == ["n", "the message asks nothing (a statement): what it wants from free_shipping"
                               " is left to a person"]


@pytest.mark.parametrize("intent", sorted(STATED - set(DEFAULT_HANDOFF_INTENTS)))
def test_what_a_customer_says_by_stating_it_still_goes_out_alone(intent):
    """Thanks, a parcel that does not move: the statement is the want."""
    verdict = decide_answer(AUTO, answer(main=result(intent), suggestions=[line(intent=intent)], asks=False), Gate())
    assert verdict.kind == "auto_send"


def test_a_further_question_that_passes_is_answered_too():
    further = (clause("发什么快递", COURIER), result("courier_choice"))
    verdict = decide_answer(AUTO, answer(questions=[further]), Gate())
    assert verdict.kind == "auto_send"
    assert [r.id for r in verdict.replies] == ["shipping.free", "courier.default"]


def test_a_further_question_that_may_not_go_out_holds_the_whole_message():
    unsure = (clause("发什么快递", COURIER), result("courier_choice", score=0.5))
    verdict = decide_answer(AUTO, answer(notes=["n"], questions=[unsure]), Gate())
    assert (verdict.kind, verdict.replies) == ("suggest", [])
    assert verdict.reasons[0].startswith("further question '发什么快递' (courier_choice): intent p=0.50")
    assert len(verdict.reasons) == 1, "only the further question's blockers: the main answer was fine"


def test_a_further_question_with_no_reply_holds_the_message():
    verdict = decide_answer(AUTO, answer(questions=[(clause("还有别的吗"), result("other"))]), Gate())
    assert verdict.kind == "suggest" and "no matching reply" in verdict.reasons[0]


def test_an_answer_that_is_not_sent_keeps_its_own_reasons_and_ignores_the_further_questions():
    further = (clause("发什么快递", COURIER), result("courier_choice"))
    low = answer(main=result(score=0.5), notes=["n"], questions=[further])
    verdict = decide_answer(AUTO, low, Gate())
    assert (verdict.kind, verdict.replies) == ("suggest", [])
    assert verdict.reasons[0] == "n" and any("auto_intent_min" in r for r in verdict.reasons[1:])
    assert not any(r.startswith("further question") for r in verdict.reasons)


def test_a_handoff_answer_carries_its_handoff_and_sends_nothing():
    verdict = decide_answer(AUTO, answer(main=result("lost_parcel"), suggestions=[line(intent="lost_parcel")]), Gate())
    assert (verdict.kind, verdict.replies, verdict.handoff.group) == ("handoff", [], "aftersale")


def test_only_the_best_reply_of_the_main_answer_goes_out():
    second = line("亲，满99包邮", id="shipping.threshold")
    verdict = decide_answer(AUTO, answer(suggestions=[line(), second]), Gate())
    assert [r.id for r in verdict.replies] == ["shipping.free"]


def test_decide_answer_passes_the_gate_to_the_main_answer_and_to_each_further_question():
    owned = decide_answer(AUTO, answer(), Gate(owner="human"))
    assert owned.kind == "suggest" and "a person owns this conversation" in owned.reasons
    refusal = line("抱歉，本店不开发票", id="invoice.none", intent="invoice")
    further = (clause("能开发票吗", refusal), result("invoice"))
    on_tmall = decide_answer(AUTO, answer(questions=[further]), Gate(platform="tmall"))
    assert on_tmall.kind == "suggest" and "red line invoice_refusal" in on_tmall.reasons[0]
    assert decide_answer(AUTO, answer(questions=[further]), Gate(platform="taobao")).kind == "auto_send"


def test_a_further_questions_blockers_are_listed_with_semicolons():
    wrong = line("亲，默认发中通哦", id="courier.default", intent="courier_choice", score=0.1)
    further = (clause("能开发票吗", wrong), result("invoice", score=0.5))
    verdict = decide_answer(AUTO, answer(questions=[further]), Gate())
    assert verdict.reasons[0].startswith("further question '能开发票吗' (invoice): intent p=0.50 < auto_intent_min")
    _, _, listed = verdict.reasons[0].partition("): ")
    assert listed.split("; ") == auto_send_blockers(AUTO, result("invoice", score=0.5), [wrong], Gate())
    assert len(listed.split("; ")) == 3  # p, wrong intent, low score


@pytest.mark.parametrize("reading, blocked", [
    (result(score=0.99), ""),
    (result(score=AUTO.auto_intent_min), ""),
    (result(score=0.999, confident=False), "intent unsure (free_shipping p=1.00)"),  # a lone 没有了
    (result(score=0.5), f"intent p=0.50 < auto_intent_min {AUTO.auto_intent_min}"),
])
def test_intent_blocker_stops_an_unsure_reading_whatever_its_p(reading, blocked):
    assert intent_blocker(AUTO, reading) == blocked
