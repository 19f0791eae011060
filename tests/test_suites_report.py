"""The HTML reports in a real browser, and `kefu test --baseline` on a deliberately changed phrasebook."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap

import pytest
from click.testing import CliRunner

from bot.cli import main
from tests_support import launch_chromium, write_config

FAILING = """
cases:
  - name: 包邮
    turns:
      - {say: 包邮吗, expect: {intent: free_shipping, phrase: shipping.free}}
  - name: 议价第一次就找主管（错的期望）
    turns:
      - say: 能便宜点吗
        expect: {intent: price_bargain, phrase: bargain.manager}
"""


def open_page(path):
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            page.goto(path.as_uri())
            yield page
        finally:
            browser.close()


def test_test_report_opens_in_chromium_with_the_failing_case_and_the_confusion_matrix(engine, config_path, tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(FAILING, encoding="utf-8")
    report = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["test", str(suite), "--html", str(report), "--config", str(config_path)])
    assert result.exit_code == 1
    for page in open_page(report):
        failed = page.locator("article.case.failed")
        assert failed.count() == 1
        assert failed.get_attribute("data-case") == "议价第一次就找主管（错的期望）"
        assert "phrase: expected bargain.manager, got greeting.away, bargain.first" in failed.inner_text()
        matrix = page.locator("svg#confusion-matrix")
        assert matrix.is_visible() and matrix.bounding_box()["width"] > 50
        cells = page.locator("svg#confusion-matrix rect.cell")
        labels = json.loads(page.evaluate(
            "JSON.stringify([...new Set([...document.querySelectorAll('svg#confusion-matrix rect.cell')]"
            ".map(r => r.dataset.true))])"))
        assert cells.count() == len(labels) ** 2 and {"free_shipping", "price_bargain"} <= set(labels)
        hit = page.locator('svg#confusion-matrix rect.cell[data-true="price_bargain"][data-predicted="price_bargain"]')
        assert hit.get_attribute("data-count") == "1"
        coverage = page.locator("#unreached")
        assert "bargain.gift_followup" in coverage.inner_text()  # no test reached it
        assert page.locator("#cases tbody tr").count() == 2
        requests = page.evaluate("performance.getEntriesByType('resource').length")
        assert requests == 0  # nothing loaded from anywhere: one self-contained file


def test_eval_report_opens_in_chromium(engine, config_path, tmp_path):
    data = tmp_path / "set.jsonl"
    data.write_text('{"text": "包邮吗", "intent": "free_shipping"}\n{"text": "能开发票吗", "intent": "stock"}\n'
                    '{"text": "什么时候发货", "intent": "shipping_time"}\n', encoding="utf-8")
    report = tmp_path / "eval.html"
    result = CliRunner().invoke(main, ["eval", "--data", str(data), "--html", str(report), "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    for page in open_page(report):
        assert page.locator("svg#confusion-matrix").is_visible()
        wrong = page.locator('svg#confusion-matrix rect.cell[data-true="stock"][data-predicted="invoice"]')
        assert wrong.get_attribute("data-count") == "1"
        assert "能开发票吗" in page.locator("#errors").inner_text()
        assert page.locator("svg#confidence-histogram rect").count() == 20


# --- the diff between two versions ------------------------------------------------------------

SHOP_BOOK = """\
- id: shop.hours
  intent: shipping_time
  questions: [你们几点发货, 每天几点发快递]
  replies: [每天下午4点前的订单当天发出哦～]
- id: shop.pack
  intent: product_quality
  questions: [包装结实吗]
  replies: [我们用加厚纸箱加气泡膜打包，放心～]
"""

CASES = """\
cases:
  - name: 几点发货
    turns:
      - {say: 你们几点发货, expect: {phrase: shop.hours, contains: 5点}}
  - name: 包装
    turns:
      - {say: 包装结实吗, expect: {phrase: shop.pack}}
  - name: 包邮
    turns:
      - {say: 包邮吗, expect: {phrase: shipping.free}}
"""

EVAL = [("你们几点发货", "shipping_time"), ("包装结实吗", "product_quality"), ("包邮吗", "free_shipping"),
        ("能开发票吗", "invoice")]


@pytest.fixture
def shop(tmp_path, engine):
    """A shop folder with its own phrasebook, suite and evaluation set; the model is the session's."""
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "shop.yaml").write_text(SHOP_BOOK, encoding="utf-8")
    (folder / "cases.yaml").write_text(CASES, encoding="utf-8")
    (folder / "eval.jsonl").write_text("".join(json.dumps({"text": t, "intent": i}, ensure_ascii=False) + "\n"
                                               for t, i in EVAL), encoding="utf-8")
    config = write_config(folder, phrasebook={"paths": ["shop.yaml"]})
    model = engine.config.resolve(engine.config.intents.model_path)
    shutil.copy(model, folder / "intent-model.joblib")  # the same examples: no retraining
    return folder, config


def change_the_hours(folder):
    """The deliberate change: 4点 → 5点 in one reply. Nothing else."""
    book = folder / "shop.yaml"
    book.write_text(book.read_text(encoding="utf-8").replace("下午4点", "下午5点"), encoding="utf-8")


def check_diff(doc, baseline):
    diff = doc["diff"]
    assert diff["baseline"] == baseline
    assert [(c["change"], c["name"]) for c in diff["cases"]] == [("better", "几点发货")]
    case = diff["cases"][0]
    assert case["turn"] == "line 4: say 你们几点发货"
    assert case["before"].endswith("— 每天下午4点前的订单当天发出哦～") and case["after"].endswith("— 每天下午5点前的订单当天发出哦～")
    assert [(m["change"], m["text"]) for m in diff["messages"]] == [("different", "你们几点发货")]
    assert diff["messages"][0]["after"] == "shipping_time → shop.hours (auto_send) — 每天下午5点前的订单当天发出哦～"


def test_baseline_folder_names_exactly_the_changed_case_and_message(shop, tmp_path):
    folder, config = shop
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    change_the_hours(folder)
    args = ["test", str(folder / "cases.yaml"), "--data", str(folder / "eval.jsonl"), "--config", str(config)]
    result = CliRunner().invoke(main, [*args, "--baseline", str(old), "--json"])
    assert result.exit_code == 0, result.output
    check_diff(json.loads(result.output), str(old))
    text = CliRunner().invoke(main, [*args, "--baseline", str(old)]).output
    assert f"compared with {old}: 1 case(s) and 1 evaluation message(s) changed" in text
    assert "  better    case 几点发货 at line 4: say 你们几点发货" in text


def test_baseline_git_revision(shop):
    folder, config = shop
    git = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "shop.yaml", "cases.yaml", "eval.jsonl"], check=True)
    subprocess.run([*git, "commit", "-qm", "v1"], check=True)
    change_the_hours(folder)
    report = folder / "report.html"
    result = CliRunner().invoke(main, ["test", str(folder / "cases.yaml"), "--data", str(folder / "eval.jsonl"),
                                       "--baseline", "HEAD", "--json", "--html", str(report), "--config", str(config)])
    assert result.exit_code == 0, result.output
    check_diff(json.loads(result.output), "HEAD")
    page = report.read_text(encoding="utf-8")
    assert 'id="diff-cases"' in page and "几点发货" in page and "diff-better" in page
    assert (folder / "shop.yaml").read_text(encoding="utf-8").count("5点") == 1  # the working tree is untouched


def test_baseline_that_is_neither_folder_nor_revision(shop):
    folder, config = shop
    result = CliRunner().invoke(main, ["test", str(folder / "cases.yaml"), "--baseline", "no-such-ref",
                                       "--config", str(config)])
    assert result.exit_code == 1
    assert "error: baseline no-such-ref: --baseline no-such-ref: not a folder" in result.output


def test_a_worse_change_is_named_worse(shop, tmp_path):
    folder, config = shop
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    book = folder / "shop.yaml"
    book.write_text(textwrap.dedent(SHOP_BOOK).replace("questions: [包装结实吗]", "questions: [可以寄到国外吗]"),
                    encoding="utf-8")
    result = CliRunner().invoke(main, ["test", str(folder / "cases.yaml"), "--baseline", str(old), "--json",
                                       "--config", str(config)])
    assert result.exit_code == 1  # the 包装 case now fails
    doc = json.loads(result.output)
    assert [(c["change"], c["name"]) for c in doc["diff"]["cases"]] == [("worse", "包装")]
