"""The report over a replayed day (tests/reports_scenario.py): every count and rate exact.

The conversations go through the real Assistant and SQLite store on a simulated clock; the
report reads the store back. Expected figures are worked out from the script by hand (see the
comments), not read from the report.
"""

from __future__ import annotations

from datetime import date

import pytest
from reports_scenario import NOW, SHANGHAI, play

from bot.config import load_config
from bot.reports import REPORT_KEYS, build_report
from bot.reports.period import Period
from bot.store import SqliteStore


@pytest.fixture(scope="module")
def day(engine, tmp_path_factory):
    store = SqliteStore(tmp_path_factory.mktemp("reports") / "kefu.sqlite")
    decisions = play(engine, store)
    yield store, decisions
    store.close()


def report_for(store, engine, first: str, last: str | None = None):
    config = engine.config
    period = Period(date.fromisoformat(first), date.fromisoformat(last or first), SHANGHAI)
    return build_report(store, config, period, NOW, matcher=engine.matcher)


@pytest.fixture(scope="module")
def report(day, engine):
    return report_for(day[0], engine, "2026-11-23")


def test_the_period_is_the_shop_day_in_utc(report):
    assert tuple(report) == REPORT_KEYS
    assert report["period"]["start"] == "2026-11-22T16:00:00+00:00"
    assert report["period"]["end"] == "2026-11-23T16:00:00+00:00"


def test_conversion_counts_customers_who_asked_ordered_and_paid(report):
    conv = report["conversion"]
    # asked: late (00:00:00), buyer, chased, unpaid, human, kz1-4, st1-3, phone, night (23:59:59) = 14;
    # not "broken" nor "fake" (after-sale only: a bare order number does not make an inquiry),
    # not "next" (00:00:00 the next day)
    assert conv["asked"] == 14
    # ordered: buyer, chased, unpaid; not late (its order was created at 23:58 the day before)
    assert conv["ordered"] == 3
    assert conv["paid"] == 2
    assert conv["order_rate"] == 3 / 14
    assert conv["paid_of_ordered"] == 2 / 3
    assert conv["conversion"] == 2 / 14
    rows = {r["intent"]: r for r in conv["by_first_intent"]}
    assert sum(r["asked"] for r in rows.values()) == 14
    for intent, counts in {"price_bargain": (1, 1, 1), "payment_howto": (1, 1, 1), "stock": (1, 0, 0),
                           "invoice": (1, 0, 0), "human_request": (1, 0, 0)}.items():
        assert (rows[intent]["asked"], rows[intent]["ordered"], rows[intent]["paid"]) == counts, intent
    assert rows["price_bargain"]["order_rate"] == 1.0 and rows["stock"]["order_rate"] == 0.0


def test_inquiry_log_lists_who_asked_and_did_not_order(report):
    rows = {r["customer"]: r for r in report["inquiries"]["rows"]}
    assert report["inquiries"]["count"] == 11
    assert set(rows) == {"late", "human", "kz1", "kz2", "kz3", "kz4", "st1", "st2", "st3", "phone", "night"}
    late = rows["late"]
    assert late["first_at"] == "2026-11-23T00:00:00+08:00"  # midnight belongs to the new day
    assert (late["first_question"], late["last_message"], late["messages"]) == ("有货吗", "有货吗", 1)
    assert late["intents"] == ["stock"] and late["intent_names"] == ["库存"]
    assert late["answered_by"] == "bot"
    human = rows["human"]
    assert (human["first_question"], human["last_message"], human["messages"]) == ("我要转人工", "好的我等你", 2)
    assert human["answered_by"] == "bot+human"
    assert rows["night"]["first_at"] == "2026-11-23T23:59:59+08:00"
    assert rows["phone"]["first_question"] == "我的手机号138****5678"  # masked
    assert [r["customer"] for r in report["inquiries"]["rows"]][:2] == ["late", "human"]  # by first message


def test_unpaid_orders_and_the_chase(report):
    up = report["unpaid"]
    assert (up["created"], up["paid"], up["unpaid"], up["chased"], up["paid_after_chase"]) == (3, 2, 1, 2, 1)
    assert up["chase_recovery"] == 0.5
    rows = {r["order_id"]: r for r in up["rows"]}
    assert set(rows) == {"o2", "o3"}  # o1 was paid before any chase
    assert rows["o2"]["chased_at"] == "2026-11-23T11:31:00+08:00" and rows["o2"]["paid_after_chase"] is True
    assert rows["o2"]["paid_at"] == "2026-11-23T12:00:00+08:00" and rows["o2"]["reason"] == ""
    o3 = rows["o3"]
    assert (o3["paid"], o3["chased"], o3["chased_at"], o3["status"]) == (False, True, "2026-11-23T13:32:00+08:00", "created")
    assert o3["amount"] == 88.5
    assert o3["reason"] == "顾虑运费或时效"  # the customer asked which courier


def test_first_response_times(report):
    rt = report["response_times"]
    # 18 customer messages, each its own wait; 17 answered by the bot at once, one (human, 14:01)
    # by an agent 90 s later (the agent's 14:00:30 greeting answered no waiting message)
    assert (rt["waits"], rt["answered"], rt["unanswered"]) == (18, 18, 0)
    assert rt["within"] == 17 and rt["within_share"] == 17 / 18
    assert rt["bot"] == {"count": 17, "p50": 0.0, "p90": 0.0, "max": 0.0}
    assert rt["human"] == {"count": 1, "p50": 90.0, "p90": 90.0, "max": 90.0}
    hours = {h["hour"]: h for h in rt["by_hour"]}
    assert hours[0]["waits"] == 1 and hours[23]["waits"] == 1  # both midnight edges inside
    assert hours[14]["waits"] == 2 and hours[14]["within_share"] == 0.5 and hours[14]["human_p50"] == 90.0
    assert hours[15]["waits"] == 3 and hours[16]["waits"] == 8
    assert sum(h["waits"] for h in rt["by_hour"]) == 18


def test_shares_handoffs_and_tickets(report, day):
    sh = report["shares"]
    kinds = [d.kind for d in day[1][1:-1]]  # the 23rd's messages (not 23:59:30 the day before, not the 24th)
    assert sh["messages"] == 18 == len(kinds)
    by_kind = {k["kind"]: k for k in sh["by_kind"]}
    for kind in ("auto_send", "suggest", "handoff", "hold", "none"):
        assert by_kind[kind]["count"] == kinds.count(kind), kind
        assert by_kind[kind]["share"] == kinds.count(kind) / 18
    assert by_kind["handoff"]["count"] == 2 and by_kind["suggest"]["count"] == 1
    assert sh["auto_reply_share"] == kinds.count("auto_send") / 18
    assert sh["handoffs"] == 2
    assert sh["handoffs_by_reason"] == [{"reason": "counterfeit_claim", "name": "假货质疑", "count": 1},
                                        {"reason": "human_request", "name": "要求人工", "count": 1}]
    assert sh["handoffs_by_group"] == [{"group": "aftersale", "name": "售后", "count": 1},
                                       {"group": "presale", "name": "售前", "count": 1}]
    # "human": an agent answered after 30 s (presale SLA 3 min), then went silent after 14:02:30
    # and release_after (30 min) handed it back; "fake": queued with nobody online, past its
    # 10 min after-sale SLA and still open
    human, fake = day[0].tickets_created_between(*_bounds())
    assert human["status"] == "released" and fake["status"] == "queued"
    assert sh["sla_breaches"] == 1 and sh["open_tickets"] == 1


def _bounds():
    p = Period(date(2026, 11, 23), date(2026, 11, 23), SHANGHAI)
    return p.start, p.end


def test_intent_mix_against_the_previous_day(report):
    mix = report["intent_mix"]
    assert (mix["total"], mix["previous_total"]) == (18, 1)
    rows = {r["intent"]: r for r in mix["rows"]}
    assert rows["free_shipping"]["count"] == 0 and rows["free_shipping"]["previous"] == 1  # 23:59:30 the 22nd
    assert rows["free_shipping"]["delta_pp"] == -100.0
    assert rows["stock"]["count"] == 1 and rows["stock"]["share"] == 1 / 18
    assert rows["stock"]["delta_pp"] == 100 / 18
    assert rows["counterfeit_claim"]["count"] == 1
    assert sum(r["count"] for r in mix["rows"]) == 18


def test_unanswered_questions_grouped_with_the_nearest_phrase(report, engine):
    texts = ["可以刻字吗", "能刻字吗", "刻字可以吗", "可以帮我刻个字吗", "你们有实体店吗", "有实体店吗"]
    threshold = engine.config.policy.auto_intent_min
    unsure = [t for t in texts if (r := engine.classifier.predict(t)).intent == "other" or r.score < threshold]
    assert unsure == texts, "the classifier learnt these: pick other questions nobody has a phrase for"
    rows = report["unanswered"]["rows"]
    top = rows[0]
    assert top["count"] == 4 and top["text"] in texts[:4]
    assert set(top["examples"]) <= set(texts[:4]) and len(top["examples"]) == 3
    assert top["nearest"] is not None and top["nearest"]["id"]
    second = rows[1]
    assert second["count"] == 2 and set(second["examples"]) == {"你们有实体店吗", "有实体店吗"}
    singles = {r["text"] for r in rows if r["count"] == 1}
    assert "我的手机号138****5678" in singles  # masked, never the number
    assert all("13812345678" not in str(r) for r in rows)


def test_the_day_before_and_a_two_day_period(day, engine):
    store = day[0]
    before = report_for(store, engine, "2026-11-22")
    assert before["conversion"]["asked"] == 1 and before["conversion"]["ordered"] == 1
    assert before["conversion"]["paid"] == 0
    (o0,) = before["unpaid"]["rows"]
    # created 23:58, its chase moved out of quiet hours to 08:00 the next day: not chased within the 22nd
    assert (o0["order_id"], o0["chased"], o0["reason"]) == ("o0", False, "顾虑运费或时效")
    both = report_for(store, engine, "2026-11-22", "2026-11-23")
    assert both["conversion"]["asked"] == 14  # "late" asked on both days: one customer
    assert both["conversion"]["ordered"] == 4 and both["conversion"]["paid"] == 2
    assert both["response_times"]["waits"] == 19
    assert both["intent_mix"]["previous_total"] == 0
    after = report_for(store, engine, "2026-11-24")
    assert after["conversion"]["asked"] == 1 and after["intent_mix"]["total"] == 1


def test_an_empty_day_has_no_traffic(day, engine):
    from bot.reports import has_traffic

    empty = report_for(day[0], engine, "2026-11-20")
    assert not has_traffic(empty)
    assert empty["conversion"]["asked"] == 0 and empty["conversion"]["conversion"] == 0.0
    assert empty["response_times"]["within_share"] == 0.0


def test_config_names_the_time_zone(config_path):
    assert load_config(config_path).flows.timezone == "Asia/Shanghai"
