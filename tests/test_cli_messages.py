"""The command line explains itself: honest figures, plain YAML errors, every problem in one pass,
one line per foreseeable error (a traceback only with --debug), progress and reasons on training.
Each message is checked in English and, where it is translated, in Chinese."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from bot import i18n
from bot.cli import main
from bot.cli.core import _describe
from bot.config import ConfigError, PolicySettings
from bot.models import Decision, Suggestion
from bot.policy import auto_send_blockers, below
from intents.classifier import IntentResult
from tests_support import write_config


@pytest.fixture(autouse=True)
def english_after():
    yield
    i18n.set_language("en")


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env)


@pytest.mark.parametrize(
    ("value", "threshold", "shown"),
    [(0.4952, 0.5, "0.495"), (0.3, 0.5, "0.30"), (0.49999, 0.5, "0.49999"), (0.1, 0.2, "0.10"), (0.19999999, 0.2, "0.199999")],
)
def test_a_figure_below_a_threshold_is_never_shown_equal_to_it(value, threshold, shown):
    assert below(value, threshold) == shown
    assert float(below(value, threshold)) < threshold


def test_the_auto_send_reason_reads_true_after_rounding():
    result = IntentResult(intent="free_shipping", score=0.9, ranking=[("free_shipping", 0.9)], confident=True)
    line = Suggestion(id="ship.free", text="包邮的亲", score=0.4952, intent="free_shipping", auto_send=True)
    reasons = auto_send_blockers(PolicySettings(), result, [line])
    assert "score 0.495 < auto_send_min 0.5" in reasons


def test_an_unsure_line_never_shows_the_best_guess_score_as_its_own():
    decision = Decision(text="can you ship today", intent="other", intent_score=0.13,
                        intents=[("promotion", 0.13), ("thanks", 0.09)], kind="suggest", reasons=["intent unsure"])
    shown = _describe(decision).splitlines()[0]
    assert shown.startswith("intent    other (unsure: best guess promotion 0.13 is too low)")
    i18n.set_language("zh")
    assert _describe(decision).splitlines()[0].startswith("意图      other（没有把握：最接近的 promotion 只有 0.13")


BROKEN = """- id: shop.one
  intent: greeting
  questions: [在吗]
  replies: ["您好
"""
REDLINE = """- id: shop.two
  intent: payment_howto
  questions: [怎么付款]
  replies: [加我微信转账更便宜]
"""
BAD_FIELD = """- id: shop.three
  intent: greeting
  questions: [你好]
  replies: [你好]
  colour: red
"""


def shop(tmp_path, files: dict[str, str]):
    folder = tmp_path / "book"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return write_config(tmp_path, phrasebook={"paths": [str(folder)]}), folder


def test_a_yaml_mistake_is_told_in_plain_words_then_the_parser_detail(tmp_path):
    config, folder = shop(tmp_path, {"a.yaml": BROKEN})
    result = run("lint", "--config", str(config))
    assert result.exit_code == 1
    line = next(x for x in result.output.splitlines() if x.startswith(str(folder / "a.yaml")))
    assert line.startswith(f"{folder / 'a.yaml'}:")
    assert "invalid YAML: a quote or bracket is opened and never closed (parser: " in line
    chinese = run("--lang", "zh", "lint", "--config", str(config))
    assert "YAML 格式错误: 引号或括号没有闭合 (parser: " in chinese.output


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("a:\n\tb: 1\n", "a tab or a special character starts a value"),
        ("a: b: c\n", "a ':' where none belongs"),
        ("a: [1, 2\n", "a [ … ] list is not closed"),
        ("a:\n  b: 1\n c: 2\n", "indented differently"),
    ],
)
def test_config_yaml_mistakes_are_plain_too(tmp_path, text, plain):
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    from bot.config import load_config

    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value).startswith(f"{path}:")
    assert plain in str(raised.value) and "(parser: " in str(raised.value)


def test_lint_reports_every_kind_of_problem_in_one_pass(tmp_path):
    config, folder = shop(tmp_path, {"a.yaml": BAD_FIELD, "b.yaml": REDLINE})
    result = run("lint", "--config", str(config))
    assert result.exit_code == 1
    assert f"{folder / 'a.yaml'}:5: colour (shop.three): unknown field" in result.output
    assert "shop.two" in result.output and "off_platform" in result.output  # the red line, same run


def test_a_foreseeable_error_is_one_line_and_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("policy: {mode: loud}\n", encoding="utf-8")
    plain = run("train", "--config", str(bad))
    assert plain.exit_code == 1
    assert plain.output.count("\n") == 1 and plain.output.startswith(f"error: {bad}:1: policy.mode:")
    debug = run("--debug", "train", "--config", str(bad))
    assert isinstance(debug.exception, ConfigError)
    zh = run("--lang", "zh", "train", "--config", str(bad))
    assert zh.output.startswith("错误：")
    linted = run("lint", "--config", str(bad))  # lint lists config problems like any other: file:line
    assert linted.exit_code == 1
    assert linted.output.splitlines() == [f"{bad}:1: policy.mode: Input should be 'auto', 'away' or 'suggest'",
                                          "1 problem(s)"]


def test_a_file_system_error_names_the_path(tmp_path, config_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    result = run("train", "--config", str(config_path), "--output", str(blocker / "model.joblib"))
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith(f"error: {blocker}")
    assert "Traceback" not in result.output


def test_train_shows_progress_and_a_closing_line_and_a_retrain_says_why(tmp_path, config_path):
    out = tmp_path / "m.joblib"
    trained = CliRunner().invoke(main, ["train", "--config", str(config_path), "--output", str(out)])
    assert trained.exit_code == 0, trained.output
    assert "intent model trained in " in trained.output and "trained on " in trained.output
    raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    raw["intents"]["model_path"] = str(tmp_path / "missing" / "model.joblib")
    fresh = tmp_path / "fresh.yaml"
    fresh.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    zh = CliRunner().invoke(main, ["--lang", "zh", "suggest", "包邮吗", "--json", "--config", str(fresh)])
    assert "重新训练意图模型：还没有保存的模型" in zh.output
    again = CliRunner().invoke(main, ["suggest", "包邮吗", "--json", "--config", str(fresh)])
    assert "retraining" not in again.output  # the model is saved now: no retrain, no message


def test_a_replay_into_an_existing_store_says_what_it_did(tmp_path, config_path):
    script = tmp_path / "s.yaml"
    script.write_text('clock: "2026-11-23T10:00:00+08:00"\nevents:\n  - {customer: c1, text: 包邮吗}\n',
                      encoding="utf-8")
    store = tmp_path / "replay.sqlite"
    first = run("replay", str(script), "--store", str(store), "--config", str(config_path))
    assert first.exit_code == 0 and "existing store" not in first.output
    second = run("replay", str(script), "--store", str(store), "--config", str(config_path))
    # the same message ids are already in the store: skipped, never answered twice — and said so
    assert "replayed into the existing store" in second.output and "it held 1 decisions, this run added 0" in second.output
    assert "skipped" in second.output
    other = tmp_path / "t.yaml"
    other.write_text('clock: "2026-11-23T11:00:00+08:00"\nevents:\n  - {customer: c2, text: 在吗, message_id: second-run-1}\n', encoding="utf-8")
    zh = run("--lang", "zh", "replay", str(other), "--store", str(store), "--config", str(config_path))
    assert "已回放到现有的存储" in zh.output and "原有 1 条决定，本次新增 1 条" in zh.output


def test_an_unsupported_store_url_is_one_line(tmp_path, config_path):
    script = tmp_path / "s.yaml"
    script.write_text('clock: "2026-11-23T10:00:00+08:00"\nevents: []\n', encoding="utf-8")
    result = run("replay", str(script), "--store", "postgresql://x:1/0", "--config", str(config_path))
    assert result.exit_code == 1
    assert result.output.startswith("error: --store: unsupported store URL")
    # a Redis store nobody serves: one line naming it, no traceback
    result = run("replay", str(script), "--store", "redis://127.0.0.1:1/0", "--config", str(config_path))
    assert result.exit_code == 1
    assert result.output.startswith("error: redis store redis://127.0.0.1:1/0: cannot open")
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_a_list_of_problems_ends_with_a_sentence_not_a_dangling_colon(tmp_path):
    config, folder = shop(tmp_path, {"a.yaml": BAD_FIELD})
    result = run("suggest", "包邮吗", "--config", str(config))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0].startswith(f"{folder / 'a.yaml'}:5:")
    assert lines[-1] == "error: 1 problem(s) in the phrasebook (listed above); `kefu lint` checks everything"
    zh = run("--lang", "zh", "suggest", "包邮吗", "--config", str(config))
    assert zh.output.strip().splitlines()[-1] == "错误：话术库有 1 处问题（见上方）；`kefu lint` 可以一次检查全部"
