"""Replay tests of every scripted flow, on a simulated clock (no sleeping, no network)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
import yaml
from click.testing import CliRunner

from bot.cli import REPLAY_KEYS, main
from bot.replay import Replay, ReplayError, load_script

START = "2026-11-23T10:00:00+08:00"


def replay(engine, events, *, clock=START, agents_online=False, tmp_path=None, **config_updates):
    """Run events through a fresh in-memory store; return the decision lines."""
    import tempfile
    from pathlib import Path

    folder = Path(tmp_path or tempfile.mkdtemp())
    path = folder / "script.yaml"
    path.write_text(yaml.safe_dump({"clock": clock, "agents_online": agents_online, "events": events},
                                   allow_unicode=True), encoding="utf-8")
    config = engine.config.model_copy(deep=True)
    for section, values in config_updates.items():
        setattr(config, section, getattr(config, section).model_copy(update=values))
    start, online, parsed = load_script(path, config)
    from bot.engine import Engine

    runner = Replay(Engine(config, engine.classifier, engine.phrasebook), start, online)
    return runner.run(parsed)


def say(customer, text):
    return {"customer": customer, "text": text}


def by_trigger(lines, trigger):
    return [line for line in lines if line.trigger == trigger]


# --- bargaining ladder ------------------------------------------------------------------------

LADDER = [say("c1", "能便宜点吗"), say("c1", "再便宜一点呗"), say("c1", "还能再少点吗，少点就买")]


def test_ladder_reaches_the_manager_on_the_third_ask_and_the_gift_follows_once(engine):
    lines = replay(engine, [*LADDER, {"advance": "1m"}, {"advance": "2m"}, {"advance": "10m"},
                            say("c1", "再便宜点吧")])
    asks = by_trigger(lines, "message")
    assert [line.intent for line in asks] == ["price_bargain"] * 4
    ladder = [line.replies[-1]["phrase_id"] for line in asks]
    assert ladder[:3] == ["bargain.first", "bargain.first", "bargain.manager"]
    assert ladder[3] == "bargain.after_concession"  # the gift was a concession
    timers = by_trigger(lines, "timer")
    assert len(timers) == 1
    assert timers[0].phrase_id == "bargain.gift_followup" and timers[0].kind == "auto_send"
    assert timers[0].at == "2026-11-23T10:02:30+08:00"  # 2–3 minutes after the manager line
    assert "{" not in timers[0].text


def test_second_ask_gets_another_wording(engine):
    lines = by_trigger(replay(engine, LADDER[:2]), "message")
    assert lines[0].replies[-1]["phrase_id"] == lines[1].replies[-1]["phrase_id"] == "bargain.first"
    assert lines[0].replies[-1]["text"] != lines[1].replies[-1]["text"]


@pytest.mark.parametrize(
    "text, phrase",
    [("别家比你们便宜二十块", "bargain.competitor"), ("我是老顾客了，能不能给点优惠", "bargain.returning")],
)
def test_ladder_side_steps(engine, text, phrase):
    line = by_trigger(replay(engine, [say("c1", text)]), "message")[0]
    assert line.replies[-1]["phrase_id"] == phrase


def test_after_a_concession_the_price_is_already_the_best(engine):
    lines = by_trigger(replay(engine, [say("c1", "老顾客有优惠吗"), say("c1", "能便宜点吗")]), "message")
    assert lines[0].replies[-1]["phrase_id"] == "bargain.returning"
    assert lines[1].replies[-1]["phrase_id"] == "bargain.after_concession"


def test_small_bulk_gets_the_tiered_price_and_a_big_one_goes_to_sales(engine):
    small, big = by_trigger(replay(engine, [say("c1", "买12件有优惠吗"), say("c2", "我们公司要采购200件，能优惠多少")]), "message")
    assert small.replies[-1]["phrase_id"] == "bargain.bulk" and small.handoff is None
    assert big.kind == "handoff" and big.phrase_id == "bargain.bulk_handoff"
    assert (big.handoff["reason"], big.handoff["priority"], big.handoff["group"]) == ("bulk_order", "high", "sales")


# --- payment chasing --------------------------------------------------------------------------

def order(status, consulted=False, customer="c1", order_id="o1"):
    return {"order": {"order_id": order_id, "customer": customer, "status": status,
                      "consulted_before_order": consulted}}


@pytest.mark.parametrize("consulted, phrase", [(True, "pay.chase.consulted"), (False, "pay.chase.plain")])
def test_unpaid_order_is_chased_once_with_the_right_line(engine, consulted, phrase):
    lines = replay(engine, [order("created", consulted), {"advance": "29m"}, {"advance": "2m"}, {"advance": "3h"}])
    assert by_trigger(lines, "order")[0].kind == "none"
    timers = by_trigger(lines, "timer")
    assert [(t.phrase_id, t.at) for t in timers] == [(phrase, "2026-11-23T10:30:00+08:00")]
    assert timers[0].kind == "auto_send"


def test_paid_before_the_chase_cancels_it(engine):
    lines = replay(engine, [order("created"), {"advance": "10m"}, order("paid"), {"advance": "2h"}])
    assert by_trigger(lines, "timer") == []


def test_closed_order_is_not_chased(engine):
    lines = replay(engine, [order("created"), order("closed"), {"advance": "2h"}])
    assert by_trigger(lines, "timer") == []


def test_chase_moves_out_of_quiet_hours(engine):
    lines = replay(engine, [order("created"), {"advance": "12h"}], clock="2026-11-23T21:50:00+08:00")
    timers = by_trigger(lines, "timer")
    assert [(t.phrase_id, t.at) for t in timers] == [("pay.chase.plain", "2026-11-24T08:00:00+08:00")]


# --- away greeting, farewell, context, variants ------------------------------------------------

def test_away_greeting_once_a_day(engine):
    lines = by_trigger(replay(engine, [say("c1", "在吗"), say("c1", "在吗"), {"advance": "24h"}, say("c1", "在吗")]),
                       "message")
    greeted = [any(r["phrase_id"] == "greeting.away" for r in line.replies) for line in lines]
    assert greeted == [True, False, True]
    assert lines[1].replies and lines[1].replies[0]["phrase_id"] != "greeting.away"


def test_away_greeting_comes_before_the_answer_and_holds_what_needs_an_agent(engine):
    answered, held = by_trigger(replay(engine, [say("c1", "包邮吗"), say("c2", "嗯嗯")]), "message")
    assert [r["phrase_id"] for r in answered.replies][0] == "greeting.away"
    assert answered.kind == "auto_send" and len(answered.replies) == 2
    assert held.kind == "hold" and [r["phrase_id"] for r in held.replies] == ["greeting.away"]


def test_no_away_greeting_while_agents_work(engine):
    line = by_trigger(replay(engine, [say("c1", "在吗")], agents_online=True), "message")[0]
    assert line.kind == "suggest" and line.replies == []


def test_agents_online_but_outside_working_hours_counts_as_away(engine):
    line = by_trigger(replay(engine, [say("c1", "在吗")], agents_online=True, clock="2026-11-23T23:30:00+08:00"),
                      "message")[0]
    assert line.replies[0]["phrase_id"] == "greeting.away"


def test_presence_changes_mid_replay(engine):
    lines = by_trigger(replay(engine, [{"agents_online": True}, say("c1", "包邮吗"), {"agents_online": False},
                                       say("c1", "包邮吗")]), "message")
    assert [line.kind for line in lines] == ["suggest", "auto_send"]


def test_farewell_depends_on_the_deal(engine):
    lines = by_trigger(replay(engine, [order("created", customer="c1"), say("c1", "好的拜拜"), say("c2", "好的拜拜")]),
                       "message")
    assert lines[0].replies[-1]["phrase_id"] == "farewell.deal"
    assert lines[1].replies[-1]["phrase_id"] == "farewell.no_deal"


def test_follow_up_is_read_in_the_light_of_the_previous_intent(engine):
    lines = by_trigger(replay(engine, [say("c1", "发什么快递"), say("c1", "那可以发顺丰吗")]), "message")
    first, follow = lines
    lone = engine.suggest("那可以吗")
    assert lone.intent == "other"
    lines = by_trigger(replay(engine, [say("c1", "什么时候发货"), say("c1", "那可以吗")]), "message")
    assert lines[1].intent == "shipping_time"
    assert lines[1].kind == "suggest"
    assert "follow-up read from the previous turn" in lines[1].reasons[0]
    assert first.intent == "courier_choice"


def test_same_line_never_twice_in_a_row(engine):
    lines = by_trigger(replay(engine, [say("c1", "包邮吗")] * 4, policy={"mode": "auto"}), "message")
    sent = [line.replies[-1]["text"] for line in lines]
    assert all(a != b for a, b in zip(sent, sent[1:])), sent


def test_rate_limit_stops_a_bot_loop(engine):
    lines = by_trigger(replay(engine, [say("c1", "包邮吗")] * 8, policy={"mode": "auto"}), "message")
    kinds = [line.kind for line in lines]
    assert kinds[:6] == ["auto_send"] * 6
    assert kinds[6:] == ["suggest", "suggest"]
    assert any("rate limit" in r for r in lines[6].reasons)
    # a minute later the bot may speak again
    later = by_trigger(replay(engine, [*([say("c1", "包邮吗")] * 6), {"advance": "61s"}, say("c1", "包邮吗")],
                              policy={"mode": "auto"}), "message")
    assert later[-1].kind == "auto_send"


def test_suggest_mode_never_sends(engine):
    lines = replay(engine, [*LADDER, {"advance": "5m"}, order("created"), {"advance": "1h"}], policy={"mode": "suggest"})
    assert all(line.replies == [] for line in lines)
    assert {line.kind for line in lines} <= {"suggest", "none"}


# --- the file and the CLI ---------------------------------------------------------------------

def test_cli_json_contract(engine, config_path, tmp_path):
    script = tmp_path / "s.yaml"
    script.write_text(yaml.safe_dump({"clock": START, "events": [*LADDER, {"advance": "3m"}, order("created")]},
                                     allow_unicode=True), encoding="utf-8")
    result = CliRunner().invoke(main, ["replay", str(script), "--json", "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert all(set(row) == REPLAY_KEYS for row in rows)
    assert [row["trigger"] for row in rows] == ["message", "message", "message", "timer", "order"]
    assert rows[2]["phrase_id"] == "bargain.manager" or rows[2]["text"]
    assert rows[3]["phrase_id"] == "bargain.gift_followup"
    assert datetime.fromisoformat(rows[3]["at"]) == datetime.fromisoformat("2026-11-23T10:02:30+08:00")
    text = CliRunner().invoke(main, ["replay", str(script), "--config", str(config_path)]).output
    assert "c1: 能便宜点吗" in text and "bargain.gift_followup" in text


@pytest.mark.parametrize(
    "content, message",
    [
        ("clock: 2026-11-23T10:00:00+08:00\nevents:\n  - {customer: c1}\n", ":3: an event is one of"),
        ("clock: 2026-11-23T10:00:00+08:00\nevents:\n  - {advance: soon}\n", ":3: advance"),
        ("clock: yesterday\nevents: []\n", ":1: clock"),
        ("events: [\n", ": invalid YAML"),
    ],
)
def test_bad_replay_files_name_the_line(engine, tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ReplayError) as info:
        load_script(path, engine.config)
    assert str(info.value).startswith(str(path)) and message in str(info.value)
