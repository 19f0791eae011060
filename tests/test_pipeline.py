"""The turn pipeline: one decision per turn, effects only for what goes out, one path for every entry point."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pydantic import ValidationError

from bot.app import build
from bot.assistant import Assistant
from bot.cli import main
from bot.flows.bargaining import FOLLOWUP_KIND, PRICE_INTENTS
from bot.flows.payment import CHASE_KIND
from bot.models import Decision, Inbound, SentLine, Suggestion
from bot.pipeline.offline import shop_time
from bot.pipeline.registry import job_flow, message_flows
from bot.replay import Replay, load_script
from bot.scheduler import ManualClock
from bot.testkit import engine_under

DEV = Path("/work/shared/data/jddc_intents/dev.jsonl")
START = datetime.fromisoformat("2026-11-23T10:00:00+08:00")


def shop(engine, **sections) -> Assistant:
    """An Assistant over a fresh in-memory store, on a clock that moves only when told."""
    config = engine.config.model_copy(deep=True)
    for section, values in sections.items():
        setattr(config, section, getattr(config, section).model_copy(update=values))
    return build(config, engine=engine_under(config, engine), store=":memory:", clock=ManualClock(START),
                 orders=None).assistant


def say(assistant: Assistant, text: str, n: int, customer: str = "c1") -> Decision:
    decision = assistant.handle_message(Inbound(connector="test", conversation_id=customer, customer_id=customer,
                                                message_id=f"m{n}", text=text))
    assert decision is not None
    return decision


def advance(assistant: Assistant, delta: timedelta) -> list[Decision]:
    """Move the clock, firing each due job at its own time."""
    target = assistant.clock.now() + delta
    fired = []
    while (due := assistant.store.next_due()) is not None and due <= target:
        assistant.clock.set(max(assistant.clock.now(), due))
        fired += [d for _c, d in assistant.tick()]
    assistant.clock.set(target)
    return fired + [d for _c, d in assistant.tick()]


def test_a_rate_limited_manager_line_schedules_no_gift(engine):
    """The third ask is rate-limited: "let me ask my manager" is only suggested, so no gift follows."""
    assistant = shop(engine, flows={"max_auto_per_minute": 2}, policy={"mode": "auto"})
    first = say(assistant, "能便宜点吗", 1)
    second = say(assistant, "再便宜一点呗", 2)
    assert [first.kind, second.kind] == ["auto_send", "auto_send"]
    third = say(assistant, "还能再少点吗，少点就买", 3)
    assert third.kind == "suggest" and third.replies == []
    assert third.suggestions[0].id == "bargain.manager"
    assert any("rate limit" in r for r in third.reasons)
    assert assistant.store.next_due() is None, "no follow-up job for a line that was never sent"
    state = assistant.store.load_state("c1")
    assert state["bargain_followup"] == "none" and state["bargain_round"] == 3
    fired = advance(assistant, timedelta(minutes=10))
    assert not [d for d in fired if d.replies], "the gift of a manager nobody mentioned never goes out"
    # once the manager really is asked, the follow-up comes as promised
    fourth = say(assistant, "到底能不能便宜", 4)
    assert fourth.kind == "auto_send" and [r.id for r in fourth.replies] == ["bargain.manager"]
    gifts = [d for d in advance(assistant, timedelta(minutes=5)) if d.replies]
    assert [r.id for d in gifts for r in d.replies] == ["bargain.gift_followup"]


def test_a_suggested_concession_is_not_recorded(engine):
    """A member price only suggested (mode suggest) is no concession the scripts may claim later."""
    assistant = shop(engine, policy={"mode": "suggest"})
    decision = say(assistant, "老顾客有优惠吗", 1)
    assert decision.kind == "suggest" and decision.suggestions[0].id == "bargain.returning"
    assert assistant.store.load_state("c1")["concessions"] == []


def test_intake_asks_only_when_its_question_goes_out(engine):
    """The intake question blocked (mode suggest): nothing is noted as asked, a person takes over."""
    assistant = shop(engine, policy={"mode": "suggest"})
    decision = say(assistant, "我的快递丢了", 1)
    assert decision.kind == "handoff" and decision.handoff.group == "aftersale"
    state = assistant.store.load_state("c1")
    assert state["intake"] == {} and state["pending_handoff"] is None and state["owner"] == "human"


def test_a_decision_is_validated():
    with pytest.raises(ValidationError):
        Decision(kind="bogus")
    line = Suggestion(id="a", text="亲～", score=1.0, intent="greeting", auto_send=True)
    sent = Decision(kind="auto_send", replies=[line]).replies[0]
    assert isinstance(sent, SentLine) and (sent.id, sent.text) == ("a", "亲～")
    with pytest.raises(ValidationError):  # decisions are not rewritten after they are built
        Decision(kind="none").kind = "auto_send"


def test_stored_names_before_the_vocabulary_change_still_load():
    """Saved decisions called the customer's words ``text``; saved states called the connector ``platform``."""
    from bot.state import ConversationState

    assert Decision.model_validate({"kind": "none", "text": "在吗"}).said == "在吗"
    state = ConversationState.model_validate({"conversation_id": "c", "customer_id": "c", "platform": "wecom"})
    assert state.connector == "wecom"
    assert Inbound(platform="generic", conversation_id="c", customer_id="c", message_id="1").connector == "generic"


def test_flows_are_registered_by_intent_and_job_kind():
    for intent in PRICE_INTENTS:
        assert len(message_flows(intent)) == 2, intent  # order-state answers first, then the ladder
    assert len(message_flows("farewell")) == 2 and len(message_flows("shipping_time")) == 1
    assert job_flow(FOLLOWUP_KIND) is not None and job_flow(CHASE_KIND) is not None
    assert job_flow("no_such_kind") is None


def test_suggest_runs_the_server_pipeline(config_path):
    """`kefu suggest` decides like the server: a lost parcel first asks for the order number."""
    result = CliRunner().invoke(main, ["suggest", "我的快递丢了", "--json", "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output.strip().splitlines()[-1])
    assert payload["decision"] == "auto_send" and payload["suggestions"][0]["id"] == "aftersale.ask_order"


@pytest.mark.skipif(not DEV.exists(), reason="the jddc dev set is not on this machine")
def test_eval_and_replay_decide_the_same_on_300_real_messages(config_path, engine, tmp_path):
    """The same real messages through `kefu eval` and through a replay, each a fresh conversation."""
    rows = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines()[:300] if line.strip()]
    data = tmp_path / "dev300.jsonl"
    data.write_text("".join(json.dumps({"text": r["text"], "intent": r["intent"]}, ensure_ascii=False) + "\n"
                            for r in rows), encoding="utf-8")
    out = tmp_path / "decisions.jsonl"
    result = CliRunner().invoke(main, ["eval", "--data", str(data), "--json", "--decisions", str(out),
                                       "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    evaluated = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    script = tmp_path / "fresh.yaml"
    events = [{"customer": f"c{i}", "text": r["text"]} for i, r in enumerate(rows)]
    at = shop_time(engine.config)  # the clock `kefu eval` answers on
    script.write_text(yaml.safe_dump({"clock": at.isoformat(), "events": events}, allow_unicode=True),
                      encoding="utf-8")
    start, online, parsed = load_script(script, engine.config)
    replayed = [line for line in Replay(engine, start, online).run(parsed) if line.trigger == "message"]
    assert len(evaluated) == len(replayed) == len(rows) > 250
    got = [(e["intent"], e["kind"], e["phrase_id"]) for e in evaluated]
    want = [(line.intent or "", line.kind, line.phrase_id) for line in replayed]
    assert got == want
    assert len({kind for _i, kind, _p in got}) >= 3, "the set exercises several kinds of decision"
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["auto_sent"] == sum(kind == "auto_send" for _i, kind, _p in got)
