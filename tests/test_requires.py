"""Truthful scripts: `requires` on phrases, checked by the loader, the flows, the policy and lint."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from test_replay import by_trigger, replay, say

from bot.config import FlowSettings, PolicySettings
from bot.flows.bargaining import on_followup_due, on_price_ask
from bot.flows.truth import facts_of, record_sent
from bot.models import Suggestion
from bot.policy import Gate, line_blockers
from bot.state import ConversationState
from phrasebook.claims import lint_claims
from phrasebook.conditions import parse_condition, unmet
from phrasebook.loader import PhrasebookError, load_phrasebook

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def write(tmp_path, body):
    path = tmp_path / "book.yaml"
    path.write_text(body, encoding="utf-8")
    return path


# --- schema and loader ------------------------------------------------------------------------


def test_conditions_parse():
    assert parse_condition("concession_made") == "concession_made"
    assert parse_condition({"platform": "tmall"}) == "platform:tmall"
    with pytest.raises(ValueError, match="unknown condition 'manager_said'"):
        parse_condition("manager_said")
    assert unmet(["concession_made", "platform:jd"], {"platform:jd"}) == ["concession_made"]


def test_an_unknown_condition_fails_loading_with_file_and_line(tmp_path):
    path = write(tmp_path, """\
- id: a.one
  intent: greeting
  questions: [你好]
  replies: [您好]
- id: a.two
  intent: price_bargain
  replies: [已经是最低了]
  requires: [concession_made, {platform: tmall}, manager_said]
""")
    with pytest.raises(PhrasebookError) as caught:
        load_phrasebook([path], placeholders=[])
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}:8: requires (a.two)") and "manager_said" in problem


def test_requires_load_normalised(tmp_path):
    path = write(tmp_path, """\
- id: a.two
  intent: invoice
  replies: [天猫店铺都可以开票]
  requires: [order_paid, {platform: tmall}]
""")
    (entry,) = load_phrasebook([path], placeholders=[])
    assert entry.requires == ("order_paid", "platform:tmall")


# --- the send policy ----------------------------------------------------------------------------


def line(requires=(), phrase_id="bargain.after_concession"):
    return Suggestion(id=phrase_id, text="价格已经是最好的了", score=1.0, intent="price_bargain", auto_send=True,
                      requires=list(requires))


def test_policy_refuses_a_line_whose_conditions_do_not_hold():
    policy = PolicySettings()
    reasons = line_blockers(policy, line(["concession_made"]), Gate(facts=frozenset({"platform:taobao"})))
    assert reasons == ["bargain.after_concession requires concession_made, which does not hold"]
    assert line_blockers(policy, line(["concession_made"]), Gate(facts=frozenset({"concession_made"}))) == []


def test_policy_without_conversation_facts_knows_only_the_platform():
    policy = PolicySettings()
    assert line_blockers(policy, line(["platform:tmall"]), Gate(platform="tmall")) == []
    assert line_blockers(policy, line(["platform:tmall"]), Gate(platform="jd"))
    assert line_blockers(policy, line(["concession_made"]), Gate(platform="tmall"))


def test_facts_come_from_what_happened():
    state = ConversationState(conversation_id="c", customer_id="c")
    assert facts_of(state, "jd") == {"platform:jd"}
    record_sent(state, [line(phrase_id="bargain.returning")])
    state.phrase_uses["bargain.manager"] = 1
    state.orders["o1"] = "paid"
    state.slots["order_id"] = "o1"
    assert facts_of(state, "jd") >= {"concession_made", "manager_asked", "order_placed", "order_paid", "order_known"}
    assert state.concessions == ["member_price"]


# --- the flows ------------------------------------------------------------------------------------


PRICE = ["price_bargain", "competitor_cheaper", "returning_discount"]


@pytest.mark.parametrize("asks", list(itertools.product(PRICE, repeat=5))[::7])
@pytest.mark.parametrize("sent", [True, False])
def test_the_ladder_only_picks_lines_whose_conditions_hold(engine, asks, sent):
    """Whatever the customer asks in whatever order, and whether or not each line went out."""
    state = ConversationState(conversation_id="c", customer_id="c")
    flows = FlowSettings()
    for number, intent in enumerate(asks):
        scripted = on_price_ask(intent, "能便宜点吗", None, state, flows, NOW)
        entry = engine.phrasebook.get(scripted.phrase_id)
        assert not unmet(entry.requires, facts_of(state, "taobao")), (asks, number, scripted.phrase_id)
        if sent:
            state.phrase_uses[entry.id] = state.phrase_uses.get(entry.id, 0) + 1
            record_sent(state, [line(phrase_id=entry.id)])
        if number == 2 and state.bargain_followup == "pending":
            gift = on_followup_due(state)
            entry = engine.phrasebook.get(gift.phrase_id)
            if sent:
                assert not unmet(entry.requires, facts_of(state, "taobao"))
                record_sent(state, [line(phrase_id=entry.id)])
            else:
                assert unmet(entry.requires, facts_of(state, "taobao")) == ["manager_asked"]


def test_the_third_ask_and_after_never_claim_a_concession_that_was_not_made(engine):
    lines = by_trigger(replay(engine, [say("c1", t) for t in
                                       ["能便宜点吗", "再便宜一点呗", "还能再少点吗，少点就买", "再便宜点吧", "便宜点嘛"]]),
                       "message")
    sent = [r["phrase_id"] for x in lines for r in x.replies if r["phrase_id"].startswith("bargain.")]
    assert sent == ["bargain.first", "bargain.first", "bargain.manager", "bargain.manager_pending",
                    "bargain.manager_pending"]
    texts = " ".join(r["text"] for x in lines for r in x.replies)
    assert "会员优惠价" not in texts and "VIP" not in texts


def test_after_the_gift_went_out_the_price_is_the_best(engine):
    lines = replay(engine, [say("c1", "能便宜点吗"), say("c1", "再便宜一点呗"), say("c1", "还能再少点吗"),
                            {"advance": "3m"}, say("c1", "再便宜点吧")])
    assert [x.phrase_id for x in lines][-2:] == ["bargain.gift_followup", "bargain.after_concession"]


# --- lint -------------------------------------------------------------------------------------------


def test_lint_flags_claims_without_a_condition(tmp_path):
    path = write(tmp_path, """\
- id: bargain.after_concession
  intent: price_bargain
  replies:
    - 亲，刚才给您的已经是会员优惠价了，真的没法再低了
    - 这个价格是特意为您申请的VIP价，平时不对外的
- id: bargain.gift
  intent: price_bargain
  replies: [问过主管了，可以额外送您一个小礼物]
- id: shipping.promise
  intent: shipping_time
  questions: [什么时候发]
  replies: [放心，今天一定给您发出]
- id: ok.checked
  intent: price_bargain
  replies: [刚才给您的已经是最优惠的了]
  requires: [concession_made]
""")
    problems = lint_claims(load_phrasebook([path], placeholders=[]), {})
    assert len(problems) == 6, problems  # reply 2 and the gift line each make two claims
    assert problems[0].startswith(f"{path}:1: bargain.after_concession: reply 1: claims a concession")
    assert "requires: [concession_made or manager_asked]" in problems[0]
    assert any("reply 2: claims a special price" in p for p in problems)
    assert any("bargain.gift" in p and "manager answer" in p for p in problems)
    assert any("shipping.promise" in p and "shipping promise" in p and "order_paid" in p for p in problems)
    assert not any("ok.checked" in p for p in problems)


def test_the_default_phrasebook_lints_clean(engine):
    from bot.config import RUNTIME_PLACEHOLDERS

    assert lint_claims(engine.phrasebook, engine.values, RUNTIME_PLACEHOLDERS) == []


def test_kefu_lint_reports_an_unchecked_claim(tmp_path):
    from click.testing import CliRunner

    from bot.cli import main
    from tests_support import write_config

    write(tmp_path, """\
- id: my.vip
  intent: price_bargain
  questions: [能便宜吗]
  replies: [给您的是内部价了]
""")
    config = write_config(tmp_path, phrasebook={"paths": [str(tmp_path / "book.yaml")]})
    result = CliRunner().invoke(main, ["lint", "--config", str(config)])
    assert result.exit_code == 1
    assert "my.vip: reply 1: claims a special price" in result.output


# --- damaged goods take the after-sale path --------------------------------------------------------


@pytest.mark.parametrize("text", ["东西坏了要退货", "收到是坏的能退吗", "发错货了我要退", "屏幕碎了，我要退款",
                                  "电水壶用了一周就不加热了 还在保修期吧 怎么弄"])
def test_faulty_goods_never_get_the_no_reason_return_policy(engine, text):
    decision = engine.suggest(text)
    assert decision.intent == "quality_complaint"
    assert decision.kind == "handoff"
    assert "return.policy" not in [r.id for r in decision.replies]


@pytest.mark.parametrize("text", ["不喜欢能退吗", "我自己摔坏的，能换吗"])
def test_a_change_of_mind_or_own_fault_stays_a_return(engine, text):
    assert engine.suggest(text).intent == "return_exchange"


@pytest.mark.parametrize("text", ["为什么拒绝售后?", "退货申请被拒绝了 为什么", "售后申请被驳回了", "为什么不给我售后"])
def test_a_refused_after_sale_goes_to_a_person_not_the_how_to(engine, text):
    # "how to apply" answers what the customer already did; the refusal needs someone to look
    decision = engine.suggest(text)
    assert decision.kind != "auto_send"
    assert decision.suggestions[0].id in {"return.rejected", "refund.rejected"}
    assert "return.how" not in [r.id for r in decision.replies]


def test_in_a_conversation_broken_goods_start_the_after_sale_intake(engine):
    (line,) = by_trigger(replay(engine, [say("c1", "东西坏了要退货")]), "message")
    assert [r["phrase_id"] for r in line.replies][-1] == "aftersale.ask_order"
