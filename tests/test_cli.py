"""The CLI contracts: suggest --json, eval --json, lint exit codes, train, chat."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from tests_support import write_config

SUGGEST_KEYS = {"intent", "intent_score", "intents", "slots", "suggestions", "decision"}


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


@pytest.mark.usefixtures("engine")  # trains the session model once
def test_suggest_json_contract(config_path):
    result = run("suggest", "亲，包邮吗？", "--json", "--config", str(config_path))
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert set(payload) == SUGGEST_KEYS
    assert payload["intent"] == "free_shipping"
    assert 0 < payload["intent_score"] <= 1
    assert payload["intents"][0] == ["free_shipping", payload["intent_score"]]
    assert all(len(row) == 2 for row in payload["intents"])
    assert payload["suggestions"], "a reply for a shipping-fee question"
    first = payload["suggestions"][0]
    assert set(first) == {"id", "text", "score", "intent"}
    assert first["intent"] == "free_shipping"
    assert "{" not in first["text"]
    assert payload["decision"] in {"auto_send", "suggest", "handoff", "hold"}


@pytest.mark.usefixtures("engine")
def test_suggest_slots_and_handoff(config_path):
    result = run("suggest", "订单123456789012345678显示签收了但我没收到，手机13800138000", "--json", "--config", str(config_path))
    payload = json.loads(result.output)
    assert payload["slots"]["order_id"] == "123456789012345678"
    assert payload["slots"]["phone"] == "13800138000"
    assert payload["intent"] == "lost_parcel"
    assert payload["decision"] == "handoff"


@pytest.mark.usefixtures("engine")
def test_suggest_readable(config_path):
    result = run("suggest", "什么时候发货", "--config", str(config_path))
    assert result.exit_code == 0
    assert result.output.startswith("intent    shipping_time")
    assert "decision  " in result.output


@pytest.mark.usefixtures("engine")
def test_chat_reads_lines(config_path):
    result = run("chat", "--config", str(config_path), input="在吗\n\n谢谢\n")
    assert result.exit_code == 0
    assert "> 在吗" in result.output and "> 谢谢" in result.output
    assert "intent greeting" in result.output and "intent thanks" in result.output
    assert "greeting.away" in result.output, "the real assistant: the away greeting once, first"
    assert result.output.count("greeting.away") == 1


@pytest.mark.usefixtures("engine")
def test_eval_json_contract(config_path, tmp_path):
    data = tmp_path / "labelled.jsonl"
    rows = [
        {"text": "能开发票吗", "intent": "invoice"},
        {"text": "包邮吗", "intent": "free_shipping"},
        {"text": "我的快递到哪了", "intent": "track_parcel", "alt": "logistics_stuck"},
        {"text": "嗯", "intent": "other"},
    ]
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    result = run("eval", "--data", str(data), "--json", "--accept-alt", "--config", str(config_path))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {"accuracy", "macro_f1", "n", "per_intent", "auto_precision", "auto_coverage"} <= set(report)
    assert report["n"] == 4
    assert report["accuracy"] == 1.0
    assert report["per_intent"]["invoice"]["support"] == 1
    for mode in ("strict", "lenient"):
        assert {"accuracy", "macro_f1", "auto_precision", "auto_coverage"} <= set(report[mode])
    assert report["lenient"]["accuracy"] == report["accuracy"]
    table = report["reliability"]  # strict: the top intent's probability against the label
    assert sum(row["n"] for row in table["bins"]) == 4 and 0 <= table["ece"] <= 1
    text = run("eval", "--data", str(data), "--config", str(config_path)).output
    assert "reliability of the intent probability" in text and "ECE" in text
    assert text.startswith("examples      4") and "macro-F1" in text
    assert "strict" in text and "lenient" in text and "auto-send P" in text


def test_eval_bad_data_is_one_line_error(config_path, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text("not json\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["eval", "--data", str(data), "--config", str(config_path)])
    assert result.exit_code == 1
    assert f"error: {data}:1: not JSON" in result.output


def test_lint_ok_on_shipped_files(config_path):
    result = run("lint", "--config", str(config_path))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ")


def test_lint_lists_every_problem_with_file_and_line(tmp_path):
    book = tmp_path / "mine.yaml"
    book.write_text(
        "- id: my.one\n  intent: greeting\n  questions: [在吗]\n  replies: ['{nope}']\n"
        "- id: my.one\n  intent: greting\n  replies: [hi]\n",
        encoding="utf-8",
    )
    extra = tmp_path / "train.yaml"
    extra.write_text("greting:\n  - 在吗\n", encoding="utf-8")
    config = write_config(tmp_path, phrasebook={"paths": [str(book)]}, intents={"data_paths": [str(extra)]})
    result = CliRunner().invoke(main, ["lint", "--config", str(config)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert f"{book}:4: my.one: unknown placeholder {{nope}}" in lines
    assert f"{book}:6: my.one: unknown intent 'greting'" in lines
    assert f"{extra}:1: unknown intent 'greting'" in lines
    assert lines[-1] == "3 problem(s)"


def test_bad_config_is_one_line_error(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("shop:\n  platfrom: tmall\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["train", "--config", str(config)])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {config}:2: shop.platfrom: unknown setting"
    linted = CliRunner().invoke(main, ["lint", "--config", str(config)])  # lint lists it as a problem
    assert linted.exit_code == 1
    assert linted.output.strip().splitlines() == [f"{config}:2: shop.platfrom: unknown setting", "1 problem(s)"]


def test_train_writes_the_model(tmp_path):
    config = write_config(tmp_path)
    out = tmp_path / "custom.joblib"
    result = run("train", "--config", str(config), "--output", str(out))
    assert result.exit_code == 0, result.output
    assert out.exists()
    assert "trained on" in result.output and f"saved to {out}" in result.output


@pytest.mark.usefixtures("engine")
def test_console_script_end_to_end(config_path):
    """The installed `kefu` entry point, in a real process."""
    exe = Path(sys.executable).with_name("kefu")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "bot.cli"]
    out = subprocess.run(
        [*cmd, "suggest", "能便宜点吗", "--json", "--config", str(config_path)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["intent"] == "price_bargain"
    assert payload["suggestions"][0]["id"].startswith("bargain.")
