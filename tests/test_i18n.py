"""The CLI speaks Chinese when asked (--lang zh, KEFU_LANG or a zh locale) and English otherwise;
every message the code marks for translation has one in the catalogue."""

from __future__ import annotations

import glob

import pytest
from babel.messages.extract import extract_from_file
from click.testing import CliRunner

from bot import i18n
from bot.cli import main
from tests_support import REPO


@pytest.fixture(autouse=True)
def english_after():
    yield
    i18n.set_language("en")


def marked_messages() -> set[str]:
    found = set()
    for path in sorted(glob.glob(str(REPO / "bot" / "**" / "*.py"), recursive=True)):
        if "from bot.i18n import" not in open(path, encoding="utf-8").read() and not path.endswith("i18n.py"):
            continue
        for _line, message, _comments, _context in extract_from_file("python", path, keywords={"_": None, "N_": None}):
            found.add(message)
    return found | set(i18n.fragments())


def test_every_marked_message_has_a_chinese_translation_with_the_same_placeholders():
    import string

    catalogue = i18n.read_catalogue("zh")
    missing = sorted(marked_messages() - set(catalogue))
    assert missing == [], f"add these to bot/locale/zh/LC_MESSAGES/kefu.po: {missing}"
    fields = lambda text: sorted(f for _, f, _, _ in string.Formatter().parse(text) if f)  # noqa: E731
    for msgid, msgstr in catalogue.items():
        assert fields(msgid) == fields(msgstr), msgid


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LC_ALL": "zh_TW.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"KEFU_LANG": "en", "LANG": "zh_CN.UTF-8"}, "en"),
        ({"KEFU_LANG": "zh"}, "zh"),
        ({}, "en"),
    ],
)
def test_the_language_follows_kefu_lang_then_the_locale(environ, expected):
    assert i18n.detect_language(environ) == expected


def test_an_unknown_language_falls_back_to_english():
    assert i18n.set_language("fr") == "en"
    assert i18n._("error: {message}") == "error: {message}"


def test_chinese_is_translated_and_english_is_left_alone():
    i18n.set_language("zh")
    assert i18n._("no connectors configured") == "没有配置任何平台接入"
    assert i18n._("a message the catalogue does not know") == "a message the catalogue does not know"
    line = "shop/x.yaml:3: invalid YAML: a quote or bracket is opened and never closed (parser: found unexpected end of stream)"
    assert i18n.localise(line) == ("shop/x.yaml:3: YAML 格式错误: 引号或括号没有闭合 (parser: found unexpected end of stream)")
    i18n.set_language("en")
    assert i18n.localise(line) == line


def test_lint_speaks_the_language_asked_for(config_path):
    english = CliRunner().invoke(main, ["--lang", "en", "lint", "--config", str(config_path)])
    chinese = CliRunner().invoke(main, ["--lang", "zh", "lint", "--config", str(config_path)])
    assert english.exit_code == chinese.exit_code == 0
    assert english.output.startswith("ok: ") and "phrasebook entries" in english.output
    assert chinese.output.startswith("检查通过：话术 ")


def test_kefu_lang_in_the_environment_switches_the_cli(config_path):
    result = CliRunner().invoke(main, ["lint", "--config", str(config_path)], env={"KEFU_LANG": "zh"})
    assert result.output.startswith("检查通过")


def test_kefu_test_reports_in_chinese_when_asked(config_path, tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text("cases:\n  - name: 包邮\n    turns:\n      - {say: 包邮吗, expect: {intent: free_shipping}}\n"
                     "  - name: 故意失败\n    turns:\n      - {say: 包邮吗, expect: {intent: invoice}}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["--lang", "zh", "test", str(suite), "--config", str(config_path)])
    assert result.exit_code == 1
    assert "通过" in result.output and "失败" in result.output
    assert "1 个通过，1 个失败 — 共 2 个用例" in result.output
    assert "每个失败用例的第一处不同：" in result.output
