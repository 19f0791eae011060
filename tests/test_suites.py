"""`kefu test` suites: loading with file:line errors, every expectation type, failing suites."""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.suites import DEFAULT_SUITE_DIR
from bot.suites.loader import SuiteError, load_suites
from bot.suites.runner import run_suites


def write(tmp_path, text: str, name: str = "suite.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def load(engine, path):
    return load_suites([path], intents=engine.classifier.intents, phrase_ids=[e.id for e in engine.phrasebook])


def run(engine, tmp_path, text):
    return run_suites(engine, load(engine, write(tmp_path, text)))


def problems_of(engine, tmp_path, text) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(SuiteError) as err:
        load(engine, path)
    return err.value.problems


# --- loading -----------------------------------------------------------------------------------

def test_unknown_expect_key_intent_and_phrase_are_errors_with_file_and_line(engine, tmp_path):
    problems = problems_of(engine, tmp_path, """
        cases:
          - name: a
            turns:
              - say: 能便宜点吗
                expect:
                  intnet: price_bargain
              - say: 包邮吗
                expect: {intent: free_shiping}
              - say: 包邮吗
                expect: {phrase: [shipping.free, shiping.free]}
              - advance: 3m
                expect: {fired: bargain.gift}
        """)
    path = tmp_path / "suite.yaml"
    assert f"{path}:6: unknown expect key 'intnet' (allowed: intent, phrase, kind, group, priority, contains, not_contains, fired)" in problems
    assert f"{path}:8: unknown intent 'free_shiping' (did you mean 'free_shipping'?)" in problems
    assert f"{path}:10: unknown phrase id 'shiping.free' (did you mean 'shipping.free'?)" in problems
    assert any(p.startswith(f"{path}:12: unknown phrase id 'bargain.gift'") for p in problems)
    assert len(problems) == 4


def test_bad_yaml_names_the_line(engine, tmp_path):
    problems = problems_of(engine, tmp_path, "cases:\n  - name: a\n    turns: [say: x\n")
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path / 'suite.yaml'}:")
    assert "invalid YAML" in problems[0]


def test_turn_shape_errors(engine, tmp_path):
    problems = problems_of(engine, tmp_path, """
        cases:
          - name: a
            turns:
              - {say: 在吗, advance: 1m}
              - {advance: 3 minutes}
              - {sya: 在吗}
              - {say: 在吗, expect: {kind: sent}}
          - name: a
            turns: [{say: 在吗}]
          - name: b
            colck: "2026-11-23T10:00:00"
            turns: [{say: 在吗}]
        """)
    path = tmp_path / "suite.yaml"
    assert f"{path}:4: a turn needs exactly one of say, advance, order, agents_online, presence, agent_reply, release, resolve (found say, advance)" in problems
    assert any(p.startswith(f"{path}:5: advance:") and "not a duration" in p for p in problems)
    assert any(p.startswith(f"{path}:6: unknown turn key 'sya'") for p in problems)
    assert f"{path}:7: unknown decision kind 'sent'" in problems
    assert f"{path}:11: unknown case key 'colck' (allowed: name, clock, agents_online, turns)" in problems
    # the duplicate name is only reported once the first case loads cleanly; here it did not
    assert len(problems) == 5


def test_duplicate_case_names_are_refused(engine, tmp_path):
    problems = problems_of(engine, tmp_path, """
        cases:
          - {name: same, turns: [{say: 在吗}]}
          - {name: same, turns: [{say: 你好}]}
        """)
    assert problems == [f"{tmp_path / 'suite.yaml'}:3: duplicate case name 'same' (first at line 2)"]


# --- every expectation type, passing and failing ------------------------------------------------

def test_each_expectation_passes_when_true(engine, tmp_path):
    results = run(engine, tmp_path, """
        cases:
          - name: all kinds of checks
            turns:
              - say: 能便宜点吗
                expect: {intent: price_bargain, phrase: bargain.first, kind: auto_send, contains: 价格, not_contains: '{'}
              - say: 再便宜一点呗
                expect: {intent: [price_bargain, promotion], phrase: [bargain.manager, bargain.first]}
              - {say: 还能再少点吗，少点就买, expect: {phrase: bargain.manager}}
              - advance: 2m
                expect: {fired: false}
              - advance: 1m
                expect: {fired: {phrase: bargain.gift_followup, after: 30s, before: 1m}}
              - say: 快递丢了
                expect: {kind: auto_send, phrase: aftersale.ask_order}
              - say: 订单号 3521469870123456
                expect: {kind: handoff, group: aftersale, priority: high}
        """)
    assert [r.passed for r in results] == [True], results[0].first_difference()
    assert results[0].checks == 15


@pytest.mark.parametrize("expect, message", [
    ("{intent: free_shipping}", "intent: expected free_shipping, got price_bargain"),
    ("{intent: [free_shipping, stock]}", "intent: expected one of [free_shipping, stock], got price_bargain"),
    ("{phrase: bargain.manager}", "phrase: expected bargain.manager, got greeting.away, bargain.first"),
    ("{kind: suggest}", "kind: expected suggest, got auto_send"),
    ("{kind: handoff, group: sales}", "kind: expected handoff, got auto_send"),
    ("{group: sales}", "group: expected sales, got no handoff"),
    ("{priority: urgent}", "priority: expected urgent, got no handoff"),
    ("{contains: 包邮}", "contains: expected '包邮' in '"),
    ("{not_contains: 统一}", "not_contains: '统一' must not appear, got '"),
])
def test_each_expectation_fails_with_expected_and_got(engine, tmp_path, expect, message):
    results = run(engine, tmp_path, f"""
        cases:
          - name: wrong
            turns:
              - say: 能便宜点吗
                expect: {expect}
        """)
    assert not results[0].passed
    difference = results[0].first_difference()
    assert difference.startswith("line 4 (say 能便宜点吗): " + message), difference
    # the decision and its reasons come with it
    assert "— bot: auto_send [price_bargain]" in difference and "reasons: ask #1: unified price" in difference


def test_fired_fails_outside_its_window_and_when_nothing_should_fire(engine, tmp_path):
    results = run(engine, tmp_path, """
        cases:
          - name: too early
            turns:
              - {say: 能便宜点吗}
              - {say: 再便宜点}
              - {say: 还能再少点吗}
              - advance: 5m
                expect: {fired: {phrase: bargain.gift_followup, after: 3m, before: 4m}}
          - name: nothing expected
            turns:
              - {say: 能便宜点吗}
              - {say: 再便宜点}
              - {say: 还能再少点吗}
              - advance: 5m
                expect: {fired: false}
          - name: not fired at all
            turns:
              - advance: 5m
                expect: {fired: pay.chase.plain}
        """)
    assert [r.passed for r in results] == [False, False, False]
    assert "fired: expected bargain.gift_followup between +3m00s and +4m00s, got bargain.gift_followup at +2m30s" in results[0].first_difference()
    assert "fired: expected no timer line, got bargain.gift_followup at +2m30s" in results[1].first_difference()
    assert "fired: expected pay.chase.plain, got no timer line" in results[2].first_difference()


def test_order_agent_and_release_events_run_for_the_case_customer(engine, tmp_path):
    results = run(engine, tmp_path, """
        cases:
          - name: events
            turns:
              - {say: 转人工, expect: {kind: handoff, phrase: handoff.no_agent}}
              - {agent_reply: 我来处理}
              - {say: 包邮吗, expect: {kind: suggest}}
              - {release: true, expect: {kind: none}}
              - {order: {order_id: o1, status: paid}, expect: {kind: none}}
              - {say: 拜拜, expect: {phrase: farewell.deal, kind: auto_send}}
        """)
    assert results[0].passed, results[0].first_difference()


# --- the command ---------------------------------------------------------------------------------

FAILING = """
    cases:
      - name: 包邮
        turns:
          - {say: 包邮吗, expect: {phrase: shipping.free}}
      - name: 议价第一次就找主管（错的期望）
        turns:
          - say: 能便宜点吗
            expect: {phrase: bargain.manager, kind: auto_send}
    """


def test_a_failing_suite_exits_1_and_names_the_first_difference(engine, config_path, tmp_path):
    path = write(tmp_path, FAILING)
    result = CliRunner().invoke(main, ["test", str(path), "--config", str(config_path)])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    row = next(line for line in lines if line.startswith("FAIL"))
    assert "suite.yaml:5" in row
    assert "phrase: expected bargain.manager, got greeting.away, bargain.first" in result.output
    assert any(line.startswith("PASS") and "包邮" in line for line in lines)
    assert lines[-1].startswith("1 passed, 1 failed — 2 cases, 3 checks in ")


def test_json_is_one_document_and_junit_parses_back(engine, config_path, tmp_path):
    path = write(tmp_path, FAILING)
    junit = tmp_path / "junit.xml"
    result = CliRunner().invoke(main, ["test", str(path), "--json", "--junit", str(junit), "--config", str(config_path)])
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert (doc["ok"], doc["passed"], doc["failed"]) == (False, 1, 1)
    bad = doc["cases"][1]
    assert bad["name"] == "议价第一次就找主管（错的期望）" and bad["passed"] is False
    assert bad["turns"][0]["problems"] == ["phrase: expected bargain.manager, got greeting.away, bargain.first"]
    assert bad["turns"][0]["lines"] == ["greeting.away", "bargain.first"]

    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites" and (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "1", "0")
    suite = root.find("testsuite")
    assert suite.get("name") == str(path) and suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["包邮", "议价第一次就找主管（错的期望）"]
    assert all(float(c.get("time")) >= 0 and c.get("classname") == "suite" for c in cases)
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure.get("type") == "ExpectationFailed"
    assert "phrase: expected bargain.manager" in failure.get("message")
    assert "✗ line 7: say 能便宜点吗" in failure.text


def test_suite_errors_exit_1_with_file_and_line(config_path, tmp_path):
    path = write(tmp_path, "cases:\n  - name: a\n    turns:\n      - {say: 在吗, expect: {phrase: nope.nope}}\n")
    result = CliRunner().invoke(main, ["test", str(path), "--config", str(config_path)])
    assert result.exit_code == 1
    assert f"{path}:4: unknown phrase id 'nope.nope'" in result.output
    assert "error: 1 problem(s) in the test suites" in result.output


# --- the default suite ---------------------------------------------------------------------------

def test_default_suite_passes(config_path):
    result = CliRunner().invoke(main, ["test", "--json", "--config", str(config_path)])
    doc = json.loads(result.output)
    failing = [(c["name"], c["first_difference"]) for c in doc["cases"] if not c["passed"]]
    assert failing == [] and result.exit_code == 0
    assert doc["passed"] >= 80


def test_default_suite_passes_without_a_config_file(engine, tmp_path, monkeypatch):
    """A new user runs `kefu test` in an empty folder: the defaults (no agents, 本店) pass too."""
    from bot.config import Config
    from bot.engine import Engine

    plain = Engine(Config(), engine.classifier, engine.phrasebook)
    results = run_suites(plain, load(plain, DEFAULT_SUITE_DIR))
    assert [(r.case.name, r.first_difference()) for r in results if not r.passed] == []


#: auto-send entries the default suite cannot show being sent on their own, and why
NEVER_SENT_ALONE = {
    "farewell.bye": "the farewell flow answers every goodbye with farewell.deal / farewell.no_deal",
    "bargain.company": "the bargaining flow answers bulk_discount with bargain.bulk or the sales handoff",
    "bargain.future": "the bargaining flow answers returning_discount with bargain.returning",
    "handoff.robot": "human_request always hands off: the customer gets a wait line (handoff.no_agent…)",
    "handoff.wait": "only when agents of the group are online but full; the default suite runs without agents",
    "handoff.notice": "sent when a configured agent is assigned at once; the default suite runs without agents",
    "handoff.back": "no flow sends it yet",
    "handoff.after_hours": "a hand-off outside working hours; the default suite runs within them",
}


def test_default_suite_covers_every_auto_send_phrase_and_every_flow(engine):
    cases = load(engine, DEFAULT_SUITE_DIR)
    expected = set()
    for case in cases:
        for turn in case.turns:
            if turn.expect:
                expected |= set(turn.expect.phrase or ())
                expected |= set(turn.expect.fired.phrases if turn.expect.fired else ())
    auto = {e.id for e in engine.phrasebook if e.auto_send}
    assert sorted(auto - expected - set(NEVER_SENT_ALONE)) == []
    assert sorted(set(NEVER_SENT_ALONE) & expected) == []  # an exception that is covered is no exception
    # every scripted flow has its lines expected: ladder, gift, bulk handoff, chase, farewell, away, intake
    flows = {"bargain.manager", "bargain.gift_followup", "bargain.after_concession", "bargain.bulk_handoff",
             "pay.chase.consulted", "pay.chase.plain", "farewell.deal", "farewell.no_deal", "greeting.away",
             "aftersale.ask_order", "aftersale.ask_photos", "handoff.no_agent", "handoff.queued"}
    assert flows <= expected
