"""`kefu lint`: clashes, near-duplicate replies, platform limits, few examples, empty shop values, --json."""

from __future__ import annotations

import json

from click.testing import CliRunner

from bot.cli import main
from tests_support import write_config

CLASHING = """\
- id: my.postage
  intent: return_exchange
  questions: [退货要运费吗]
  replies: [退货运费由买家承担，有运费险的可以理赔哦]
- id: my.shipping
  intent: free_shipping
  questions: [退货运费吗]
  replies: [满99包邮，不满收10元运费]
"""


def lint(tmp_path, book_text: str, *args: str, **sections):
    book = tmp_path / "mine.yaml"
    book.write_text(book_text, encoding="utf-8")
    phrasebook = {"paths": [str(book)], "include_default": False}
    config = write_config(tmp_path, phrasebook=phrasebook, **sections)
    return book, CliRunner().invoke(main, ["lint", *args, "--config", str(config)])


def test_questions_of_two_intents_that_clash_are_a_warning_with_file_and_line(tmp_path):
    book, result = lint(tmp_path, CLASHING)
    assert result.exit_code == 0, result.output  # warnings do not fail
    lines = result.output.splitlines()
    assert lines[0].startswith("ok: 2 phrasebook entries")
    clash = [line for line in lines if "warning: my.postage (return_exchange)" in line]
    assert len(clash) == 1 and clash[0].startswith(f"{book}:1: warning: ")
    assert "matches my.shipping (free_shipping) question '退货运费吗'" in clash[0]
    assert "≥ auto_send_min 0.5" in clash[0] and f"(at {book}:5)" in clash[0]
    assert lines[-1] == "1 warning(s)"


def test_clash_threshold_follows_auto_send_min(tmp_path):
    # with a strict auto-send threshold the same pair can no longer go out alone: no clash
    _, result = lint(tmp_path, CLASHING, policy={"auto_send_min": 0.9})
    assert "my.postage" not in result.output and result.exit_code == 0


def test_near_duplicate_replies(tmp_path):
    book, result = lint(tmp_path, """\
- id: my.a
  intent: stock
  questions: [有货吗]
  replies: [亲，现货充足，今天下单今天发哦～]
- id: my.b
  intent: shipping_time
  questions: [什么时候发]
  replies: [亲，现货充足，今天下单今天发哦～～, 一般48小时内发出]
""")
    assert f"{book}:1: warning: my.a reply 1 is 100% the same as my.b reply 1 (at {book}:5)" in result.output.splitlines()


#: what a wecom_kf connector must name (as ${VAR} references: the config is checked at load)
KF_REQUIRED = ("token", "encoding_aes_key", "corp_id", "secret", "cursor_path")


def test_platform_length_limits_of_configured_connectors_are_errors(tmp_path):
    long_reply = "您好" * 400  # 800 characters, 2400 bytes in UTF-8
    book, result = lint(tmp_path, f"- id: my.long\n  intent: stock\n  questions: [有货吗]\n  replies: [{long_reply}]\n",
                        connectors={"kf": {"type": "wecom_kf", **{k: "${KF_SETTING}" for k in KF_REQUIRED}},
                                    "tg": {"type": "telegram", "bot_token": "${TG}", "secret_token": "${TG_S}"}})
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"{book}:1: my.long reply 1 is 2400 bytes; wecom_kf accepts 2048" in lines
    assert not any("telegram" in line for line in lines)  # 800 characters fit Telegram's 4096
    assert lines[-1] == "1 problem(s)"


def test_few_examples_and_empty_placeholders(tmp_path):
    book, result = lint(tmp_path, "- id: my.call\n  intent: stock\n  questions: [有货吗]\n  replies: ['请致电{phone}']\n",
                        "--min-examples", "200", shop={"phone": ""})
    assert result.exit_code == 0
    assert f"{book}:1: warning: my.call reply 1 uses {{phone}}, which the shop profile leaves empty (set it in config.yaml shop:)" in result.output
    few = [line for line in result.output.splitlines() if "training examples (fewer than 200)" in line]
    assert few and all(": warning: intent " in line and ".yaml:" in line for line in few)


def test_lint_json_is_one_document(tmp_path):
    book, result = lint(tmp_path, CLASHING, "--json",
                        connectors={"kf": {"type": "wecom_kf", **{k: "${KF_SETTING}" for k in KF_REQUIRED}}})
    doc = json.loads(result.output)
    assert (doc["ok"], doc["errors"], doc["entries"]) == (True, 0, 2)
    assert doc["warnings"] == len(doc["problems"]) >= 1
    clash = next(p for p in doc["problems"] if p["code"] == "clash")
    assert clash == {**clash, "file": str(book), "line": 1, "severity": "warning"}


def test_lint_json_reports_load_errors_with_file_and_line(tmp_path):
    book, result = lint(tmp_path, "- id: my.one\n  intent: greting\n  questions: [在吗]\n  replies: [hi]\n", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["ok"] is False and doc["entries"] is None
    assert {"file": str(book), "line": 2, "severity": "error", "code": "phrasebook",
            "message": "my.one: unknown intent 'greting'"} in doc["problems"]


def test_no_clash_when_the_other_entry_never_goes_out_alone(tmp_path):
    # my.shipping marked auto_send: false is only ever suggested to an agent: nothing to warn of
    agent_only = CLASHING.replace("  replies: [满99包邮，不满收10元运费]\n",
                                  "  replies: [满99包邮，不满收10元运费]\n  auto_send: false\n")
    assert agent_only != CLASHING
    _, result = lint(tmp_path, agent_only)
    assert result.exit_code == 0, result.output
    assert "warning: my.postage (return_exchange)" not in result.output
    # the other way round still clashes: my.postage may go out alone on a free-shipping question
    assert "warning: my.shipping (free_shipping) question '退货运费吗' matches my.postage" in result.output
    assert result.output.splitlines()[-1] == "1 warning(s)"
