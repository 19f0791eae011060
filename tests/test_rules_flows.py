"""The scripted flows' pure rules, table-driven: the bargaining ladder (`on_price_ask`), the
payment chase (`chase_job`, `quiet_until`, `on_chase_due`), follow-ups (`carried_intent`) and the
small conversation rules. No engine, no store: a state, settings and a time in, an answer out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.config import FlowSettings
from bot.flows import aftersale, answering, conversation, truth
from bot.flows.bargaining import FOLLOWUP_KIND, PRICE_INTENTS, followup_key, on_followup_due, on_price_ask
from bot.flows.conversation import away_greeting_due, carried_intent, farewell
from bot.flows.payment import CHASE_KIND, STOPS_CHASE, chase_job, chase_key, on_chase_due, quiet_until
from bot.models import Suggestion
from bot.reading import Reading
from bot.state import ConversationState
from intents.classifier import IntentResult

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
FLOWS = FlowSettings()


def state(**changes) -> ConversationState:
    return ConversationState(conversation_id="c1", customer_id="u1", **changes)


def ask(intent, text="能便宜点吗", quantity=None, st=None, flows=FLOWS):
    """The ladder's answer, its line taken as sent: what it notes and what sending it changes applied."""
    st = st if st is not None else state()
    before = st.model_copy(deep=True)
    scripted = on_price_ask(intent, text, quantity, st, flows, NOW)
    assert st == before, "the rule only reads the state"
    if scripted is not None:
        for name, value in {**scripted.noted, **scripted.on_sent}.items():
            setattr(st, name, value)
    return scripted, st


# --- the bargaining ladder -----------------------------------------------------------------------


@pytest.mark.parametrize("intent", ["greeting", "free_shipping", "other", "invoice"])
def test_not_a_price_ask(intent):
    scripted, st = ask(intent)
    assert scripted is None and st.bargain_round == 0


@pytest.mark.parametrize(
    ("text", "quantity", "phrase"),
    [
        ("买多点能便宜吗", None, "bargain.bulk"),
        ("买49件能便宜吗", 49, "bargain.bulk"),
        ("买50件能便宜吗", 50, "bargain.bulk_handoff"),  # exactly bulk_handoff_qty reaches sales
        ("买500件", 500, "bargain.bulk_handoff"),
        ("批发价多少", None, "bargain.bulk_handoff"),  # a big-order word without any quantity
        ("团购有优惠吗", None, "bargain.bulk_handoff"),
        ("公司采购，量大", 3, "bargain.bulk_handoff"),
    ],
)
def test_bulk_asks(text, quantity, phrase):
    scripted, st = ask("bulk_discount", text, quantity)
    assert scripted.phrase_id == phrase
    assert st.bargain_round == 0, "a bulk ask is not a rung of the ladder"
    if phrase == "bargain.bulk_handoff":
        assert (scripted.handoff.reason, scripted.handoff.group, scripted.handoff.priority) == ("bulk_order", "sales", "high")
        assert scripted.why == "bulk order: a sales colleague takes over"
    else:
        assert scripted.handoff is None and scripted.why == f"bulk ask (quantity {quantity})"


@pytest.mark.parametrize("word", ["大宗", "批发", "公司采购", "企业采购", "单位采购", "集采", "团购", "批量采购", "工厂", "经销", "代理"])
def test_every_big_order_word_reaches_sales(word):
    scripted, _ = ask("bulk_discount", f"我们{word}，能便宜吗", None)
    assert scripted.phrase_id == "bargain.bulk_handoff"


def test_the_bulk_threshold_is_the_shops():
    flows = FlowSettings(bulk_handoff_qty=10)
    assert ask("bulk_discount", "买10件", 10, flows=flows)[0].phrase_id == "bargain.bulk_handoff"
    assert ask("bulk_discount", "买9件", 9, flows=flows)[0].phrase_id == "bargain.bulk"


def test_the_ladder_climbs_to_the_manager_once():
    st = state()
    phrases = [ask("price_bargain", st=st)[0].phrase_id for _ in range(5)]
    assert phrases == ["bargain.first", "bargain.first", "bargain.manager", "bargain.manager_pending",
                       "bargain.manager_pending"]
    assert st.bargain_round == 5 and st.bargain_followup == "pending"


def test_the_manager_rung_schedules_the_follow_up():
    st = state(bargain_round=2)
    scripted, _ = ask("price_bargain", st=st)
    assert scripted.phrase_id == "bargain.manager" and scripted.why == "ask #3: ask the manager, follow up later"
    (job,) = scripted.jobs
    assert (job.key, job.kind, job.due_at) == (followup_key("c1"), FOLLOWUP_KIND, NOW + FLOWS.bargain_followup_after)
    assert followup_key("c1") == "bargain_followup:c1"


@pytest.mark.parametrize(
    ("intent", "changes", "phrase", "why"),
    [
        ("price_bargain", {}, "bargain.first", "ask #1: unified price"),
        ("competitor_cheaper", {}, "bargain.competitor", "ask #1: another shop is cheaper"),
        ("competitor_cheaper", {"bargain_round": 1}, "bargain.competitor", "ask #2: another shop is cheaper"),
        ("returning_discount", {}, "bargain.returning", "ask #1: returning customer → member price"),
        ("returning_discount", {"concessions": ["member_price"]}, "bargain.after_concession",
         "ask #1: a concession was made, no further"),
        ("price_bargain", {"concessions": ["gift"]}, "bargain.after_concession",
         "ask #1: a concession was made, no further"),
        ("price_bargain", {"bargain_round": 5, "bargain_followup": "done"}, "bargain.firm",
         "ask #6: no concession, the price stays"),
        ("price_bargain", {"bargain_round": 1, "bargain_followup": "done"}, "bargain.first", "ask #2: unified price"),
        ("competitor_cheaper", {"bargain_round": 2, "bargain_followup": "done"}, "bargain.firm",
         "ask #3: no concession, the price stays"),
        ("price_bargain", {"bargain_round": 3, "bargain_followup": "pending"}, "bargain.manager_pending",
         "ask #4: the manager has not answered yet"),
        ("price_bargain", {"bargain_round": 3, "bargain_followup": "pending", "concessions": ["gift"]},
         "bargain.after_concession", "ask #4: a concession was made, no further"),
    ],
)
def test_ladder_rungs(intent, changes, phrase, why):
    scripted, st = ask(intent, st=state(**changes))
    assert (scripted.phrase_id, scripted.why) == (phrase, why)
    assert scripted.jobs == () and scripted.handoff is None
    assert st.bargain_round == changes.get("bargain_round", 0) + 1


def test_every_price_intent_is_a_rung():
    assert PRICE_INTENTS == {"price_bargain", "bulk_discount", "returning_discount", "competitor_cheaper"}
    for intent in PRICE_INTENTS - {"bulk_discount"}:
        assert ask(intent)[1].bargain_round == 1


def test_the_follow_up_is_the_gift_and_closes_the_ladder():
    st = state(bargain_followup="pending")
    scripted = on_followup_due(st)
    assert (scripted.phrase_id, scripted.why) == ("bargain.gift_followup", "manager follow-up: a gift instead of a discount")
    assert scripted.noted == {"bargain_followup": "done"} and st.bargain_followup == "pending", "noted, not applied"


# --- the payment chase -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("created", "due"),
    [
        ("2026-11-23 10:00", "2026-11-23 10:30"),
        ("2026-11-23 21:29", "2026-11-23 21:59"),
        ("2026-11-23 21:30", "2026-11-24 08:00"),  # due at 22:00: waits for the morning
        ("2026-11-24 07:00", "2026-11-24 08:00"),
        ("2026-11-24 07:30", "2026-11-24 08:00"),
    ],
)
def test_chase_job_is_due_later_and_never_in_quiet_hours(created, due):
    at = datetime.fromisoformat(created).replace(tzinfo=SHANGHAI)
    job = chase_job("o1", True, at, FLOWS)
    assert (job.key, job.kind, job.payload) == ("payment_chase:o1", CHASE_KIND, {"order_id": "o1", "consulted": True})
    assert job.due_at == datetime.fromisoformat(due).replace(tzinfo=SHANGHAI)
    assert chase_key("o1") == "payment_chase:o1"


def test_chase_job_follows_the_shop_settings():
    flows = FlowSettings(payment_chase_after="2h", quiet_hours="00:00-00:00")
    job = chase_job("o2", False, datetime(2026, 11, 23, 23, 0, tzinfo=UTC), flows)
    assert job.due_at == datetime(2026, 11, 24, 1, 0, tzinfo=UTC) and job.payload["consulted"] is False


@pytest.mark.parametrize(
    ("local", "until"),
    [
        ("2026-11-23 21:59", None),
        ("2026-11-23 22:30", "2026-11-24 08:00"),
        ("2026-11-24 07:59", "2026-11-24 08:00"),
        ("2026-11-24 08:00", None),
    ],
)
def test_quiet_until(local, until):
    at = datetime.fromisoformat(local).replace(tzinfo=SHANGHAI)
    expected = datetime.fromisoformat(until).replace(tzinfo=SHANGHAI) if until else None
    assert quiet_until(at, FLOWS) == expected


@pytest.mark.parametrize("status", [*sorted(STOPS_CHASE), None, "unknown"])
def test_the_chase_checks_the_order_is_still_unpaid(status):
    assert on_chase_due(status, True) is None
    assert on_chase_due(status, False) is None


def test_the_chase_line_depends_on_whether_the_customer_consulted():
    assert on_chase_due("created", True).phrase_id == "pay.chase.consulted"
    assert on_chase_due("created", True).why == "unpaid order, customer consulted before ordering"
    assert on_chase_due("created", False).phrase_id == "pay.chase.plain"
    assert on_chase_due("created", False).why == "unpaid order"


# --- follow-ups and conversation rules -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "confident", "last", "carried"),
    [
        ("那怎么查呢", False, "track_parcel", "track_parcel"),
        ("多久能到", False, "track_parcel", "track_parcel"),
        ("可以吗", False, "return_exchange", "return_exchange"),
        ("还有呢", False, "free_shipping", "free_shipping"),
        ("啥时候发", False, "shipping_time", "shipping_time"),
        ("那怎么查呢", True, "track_parcel", None),  # its own intent wins
        ("那怎么查呢", False, None, None),  # nothing to carry
        ("那怎么查呢", False, "greeting", None),
        ("那怎么查呢", False, "thanks", None),
        ("那怎么查呢", False, "other", None),
        ("那怎么查呢", False, "farewell", None),
        ("那怎么查呢", False, "human_request", None),
        ("好的", False, "track_parcel", None),  # not a follow-up
        ("那我再考虑一下明天再说吧谢谢", False, "track_parcel", None),  # too long
        ("那我再考虑一下明天再说吧", False, "track_parcel", "track_parcel"),  # 12 characters
        ("  那 怎么查呢  ", False, "track_parcel", "track_parcel"),
    ],
)
def test_carried_intent(text, confident, last, carried):
    st = state(last_intents=[last] if last else [])
    assert carried_intent(text, confident, st) == carried


def test_away_greeting_once_a_day():
    assert away_greeting_due(state(), NOW)
    assert not away_greeting_due(state(away_greeted_on="2026-11-23"), NOW)
    assert away_greeting_due(state(away_greeted_on="2026-11-22"), NOW)


def test_farewell_depends_on_the_deal():
    assert (farewell(state()).phrase_id, farewell(state()).why) == ("farewell.no_deal", "farewell without an order")
    deal = farewell(state(orders={"o1": "paid"}))
    assert (deal.phrase_id, deal.why) == ("farewell.deal", "farewell after an order")
    assert farewell(state(orders={"o1": "closed"})).phrase_id == "farewell.no_deal"


# --- truth: facts from what happened -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "facts"),
    [
        ({}, set()),
        ({"concessions": ["gift"]}, {"concession_made"}),
        ({"phrase_uses": {"bargain.manager": 1}}, {"manager_asked"}),
        ({"phrase_uses": {"bargain.manager": 0}}, set()),
        ({"orders": {"o1": "created"}}, {"order_placed"}),
        ({"orders": {"o1": "paid"}}, {"order_placed", "order_paid"}),
        ({"orders": {"o1": "shipped"}}, {"order_placed", "order_paid", "order_shipped"}),
        ({"orders": {"o1": "delivered"}}, {"order_placed", "order_paid", "order_shipped"}),
        ({"orders": {"o1": "closed"}}, set()),
        ({"slots": {"order_id": "123"}}, {"order_known"}),
        ({"slots": {"order_id": None}}, set()),
        ({"photos_received": True}, {"photos_received"}),
    ],
)
def test_facts_of(changes, facts):
    assert truth.facts_of(state(**changes), "tmall") == frozenset({"platform:tmall", *facts})


def test_record_sent_notes_only_concession_lines():
    st = state()
    lines = [Suggestion(id=i, text="t", score=1, intent="x", auto_send=True)
             for i in ("bargain.first", "bargain.returning", "bargain.gift_followup")]
    truth.record_sent(st, lines)
    assert st.concessions == ["member_price", "gift"] and st.concession_given
    quiet = state()
    truth.record_sent(quiet, lines[:1])
    assert quiet.concessions == [] and not quiet.concession_given


def test_holds():
    assert truth.holds(["platform:jd"], state(), "jd")
    assert not truth.holds(["platform:jd"], state(), "tmall")
    assert not truth.holds(["order_paid"], state(orders={"o1": "created"}), "jd")
    assert truth.holds([], state(), "jd")


# --- after-sale reroute -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("intent", "text", "rerouted"),
    [
        ("return_exchange", "东西坏了要退货", True),
        ("refund_status", "收到是碎了的，退款呢", True),
        ("return_exchange", "发错颜色了换一下", True),
        ("return_exchange", "我自己摔坏的，能退吗", False),
        ("return_exchange", "不是质量问题，就是不喜欢", False),
        ("return_exchange", "不想要了能退吗", False),
        ("price_bargain", "坏了", False),
        *[("return_exchange", f"用了三天就{word}了 能退吗", True)
          for word in ["不加热", "不热", "不制冷", "不出水", "不出风", "不充电", "充不进电", "充不上电", "没反应",
                       "失灵", "坏掉"]],
    ],
)
def test_faulty_goods_become_a_quality_complaint(intent, text, rerouted):
    result = IntentResult(intent, 0.9, [(intent, 0.9), ("quality_complaint", 0.05)], True)
    out = aftersale.reroute(result, text)
    if rerouted:
        assert out.intent == "quality_complaint" and out.score == 0.9 and out.confident
        assert out.ranking == [("quality_complaint", 0.9), (intent, 0.9)]
    else:
        assert out is result


# --- short answers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "asks"),
    [("您大概要多少件？", True), ("可以吗", True), ("好的呢~", True), ("您看可以吗", True), ("要不要加购", True),
     ("需不需要发票", True), ("好的，马上发货", False), ("收到啦", False), ("吗啡", False)],
)
def test_asks_something(text, asks):
    assert answering.asks_something(text) is asks


def test_prompt_of_sent_lines():
    intake = Suggestion(id="aftersale.ask_order", text="请提供订单号", score=1, intent="lost_parcel", auto_send=True)
    question = Suggestion(id="bargain.bulk", text="您要多少件？", score=1, intent="bulk_discount", auto_send=True)
    plain = Suggestion(id="shipping.free", text="包邮的亲", score=1, intent="free_shipping", auto_send=True)
    assert answering.prompt_of(intake) == {"by": "bot", "phrase_id": "aftersale.ask_order", "intent": "lost_parcel",
                                           "expects": "order"}
    assert answering.prompt_of(question, by="agent") == {"by": "agent", "phrase_id": "bargain.bulk",
                                                         "intent": "bulk_discount", "expects": "answer"}
    assert answering.prompt_of(plain) is None
    st = state()
    answering.note_sent(st, [plain, question])
    assert st.prompt["phrase_id"] == "bargain.bulk"
    answering.note_sent(st, [])
    assert st.prompt["phrase_id"] == "bargain.bulk", "nothing sent: the question still waits"
    answering.note_sent(st, [plain])
    assert st.prompt is None


def test_note_agent_line():
    st = state(last_intents=["invoice"])
    answering.note_agent_line(st, "请问是哪个订单？")
    assert st.prompt == {"by": "agent", "phrase_id": None, "intent": "invoice", "expects": "answer"}
    answering.note_agent_line(st, "请问是哪个订单？", intent="lost_parcel")
    assert st.prompt["intent"] == "lost_parcel"
    answering.note_agent_line(st, "好的")
    assert st.prompt is None
    fresh = state()
    answering.note_agent_line(fresh, "您看可以吗")
    assert fresh.prompt["intent"] == "other"


def _reading(act="yes", bare=True):
    result = IntentResult("other", 0.3, [("other", 0.3), ("bulk_discount", 0.25), ("invoice", 0.2)], False)
    return Reading("是的", result, "是", clauses=("c",), parts=("p",), main=0, acts=(act,) if bare else ())


def test_read_against_a_question():
    prompt = {"by": "bot", "phrase_id": "bargain.bulk", "intent": "bulk_discount", "expects": "answer"}
    reading, why = answering.read_against(_reading(), prompt)
    assert why == "answer (yes) to bargain.bulk: an agent confirms"
    assert reading.result.intent == "bulk_discount" and reading.result.confident is False
    assert reading.result.ranking == [("bulk_discount", 1.0), ("other", 0.3), ("invoice", 0.2)]
    assert reading.result.score == 0.0 and reading.notes == (why,)
    original = _reading()
    kept = ("text", "core", "clauses", "parts", "main", "acts")
    assert [getattr(reading, f) for f in kept] == [getattr(original, f) for f in kept]
    _, why = answering.read_against(_reading(), {"phrase_id": None, "intent": "invoice", "expects": "answer"})
    assert why == "answer (yes) to the bot's question: an agent confirms"
    agent = {"by": "agent", "phrase_id": None, "intent": None, "expects": "answer"}
    reading, why = answering.read_against(_reading(act="no"), agent)
    assert why == "answer (no) to the agent's question: an agent confirms" and reading.result.intent == "other"
    assert answering.read_against(_reading(), None) is None
    assert answering.read_against(_reading(bare=False), prompt) is None
    assert answering.read_against(_reading(act="thanks"), prompt) is None
    assert answering.read_against(_reading(), {**prompt, "expects": "order"}) is None


def test_conversation_module_constants():
    assert conversation.NO_CARRY == {"other", "greeting", "thanks", "farewell", "human_request"}
    assert timedelta(0) < FLOWS.bargain_followup_after
