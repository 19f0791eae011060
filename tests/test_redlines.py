"""Red lines: detected in any spelling, fail `kefu lint`, and are never auto-sent."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.config import PolicySettings, Shop
from bot.models import Suggestion
from bot.policy import decide
from intents.classifier import IntentResult
from phrasebook.lint import lint_phrasebook
from phrasebook.redlines import find_red_lines
from phrasebook.schema import Phrasebook, PhraseEntry
from tests_support import write_config


@pytest.mark.parametrize(
    "text, rule",
    [
        ("亲，加我微信，便宜20", "off_platform"),
        ("可以加個VX聊", "off_platform"),
        ("我的QQ号是12345", "off_platform"),
        ("直接支付宝转账给我就行", "off_platform"),
        ("转账到我银行卡，不走平台", "off_platform"),
        ("我们可以私下交易", "off_platform"),
        ("全网最低价，放心买", "banned_word"),
        ("国家级品质", "banned_word"),
    ],
)
def test_detected(text, rule):
    assert rule in {hit.rule for hit in find_red_lines(text, "taobao")}


@pytest.mark.parametrize(
    "text",
    ["亲，我们第一时间为您发货", "付款请在淘宝下单后用支付宝付款哦", "可以开发票的，下单时填写抬头", "最好当面签收验货"],
)
def test_ordinary_service_lines_are_clean(text):
    assert find_red_lines(text, "tmall") == []


@pytest.mark.parametrize("text", ["抱歉，我们不开发票", "这个发票开不了哦", "不能开票的亲", "小店不提供发票"])
def test_invoice_refusal_only_on_tmall(text):
    assert [h.rule for h in find_red_lines(text, "tmall")] == ["invoice_refusal"]
    assert find_red_lines(text, "taobao") == []


def test_shop_banned_words():
    assert [h.found for h in find_red_lines("本店秒杀价", "jd", ["秒杀"])] == ["秒杀"]


BAD = PhraseEntry(
    id="bad.wechat", intent="price_bargain", questions=("能便宜点吗",),
    replies=("亲，价格是统一的", "加我微信{phone}给您便宜"), source="mine.yaml:1",
)


def test_lint_renders_then_checks():
    problems = lint_phrasebook(Phrasebook([BAD]), Shop().placeholders(), "taobao")
    assert problems == ["mine.yaml:1: bad.wechat: reply 2: red line off_platform: '加我微信'"]


def test_lint_command_fails_on_a_red_line(tmp_path):
    book = tmp_path / "mine.yaml"
    book.write_text(
        "- id: my.invoice\n  intent: invoice\n  questions: [能开发票吗]\n  replies: [不好意思，我们不开发票]\n",
        encoding="utf-8",
    )
    config = write_config(tmp_path, shop={"platform": "tmall"}, phrasebook={"paths": [str(book)]})
    result = CliRunner().invoke(main, ["lint", "--config", str(config)])
    assert result.exit_code == 1
    assert f"{book}:1: my.invoice: reply 1: red line invoice_refusal: '不开发票'" in result.output


def test_policy_never_auto_sends_a_red_line():
    result = IntentResult("price_bargain", 0.99, [("price_bargain", 0.99)], True)
    bad = Suggestion(id="bad.wechat", text="加我微信给您便宜", score=0.99, intent="price_bargain", auto_send=True)
    kind, reasons, _ = decide(PolicySettings(mode="auto"), result, [bad])
    assert kind == "suggest"
    assert reasons == ["red line off_platform: '加我微信'"]


def test_engine_blocks_a_red_line_reply_from_a_shop_phrasebook(tmp_path, engine, session_dir):
    from bot.config import load_config
    from bot.engine import Engine

    book = tmp_path / "mine.yaml"
    book.write_text(
        "- id: my.cheap\n  intent: price_bargain\n  questions: [能便宜点吗, 便宜点]\n  replies: [加我微信便宜十块]\n",
        encoding="utf-8",
    )
    config = load_config(write_config(
        tmp_path,
        phrasebook={"paths": [str(book)], "include_default": False},
        policy={"mode": "auto"},
        intents={"model_path": str(session_dir / "intent-model.joblib")},  # the session's model
    ))
    decision = Engine.from_config(config).suggest("能便宜点吗")
    assert decision.suggestions[0].id == "my.cheap"
    assert decision.kind == "suggest"
    assert any(r.startswith("red line off_platform") for r in decision.reasons)
