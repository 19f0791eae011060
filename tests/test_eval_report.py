"""`kefu eval --cross-validation`, the errors file, the confidence histogram and the HTML report."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.suites.crossval import CrossValidationError, cross_validate
from bot.suites.intents import confusion, histogram
from intents.dataset import TrainingSet, load_training_set

INTENTS = ("free_shipping", "price_bargain", "invoice", "track_parcel")


@pytest.fixture(scope="module")
def small() -> TrainingSet:
    """Four intents × 15 of the default examples: big enough to learn, small enough to train fast."""
    full = load_training_set()
    data = TrainingSet()
    for intent in INTENTS:
        data.examples[intent] = full.examples[intent][:15]
        for text in data.examples[intent]:
            data.sources[text] = full.sources[text]
    return data


def test_cross_validation_predicts_every_example_once_with_a_model_that_never_saw_it(small):
    folds_done = []
    report = cross_validate(small, folds=3, seed=7, progress=lambda done, total: folds_done.append((done, total)))
    assert folds_done == [(1, 3), (2, 3), (3, 3)]
    assert report["n"] == 60 and report["cross_validation"] == {"folds": 3, "seed": 7}
    assert {k: v["support"] for k, v in report["per_intent"].items() if v["support"]} == dict.fromkeys(INTENTS, 15)
    d = report["details"]
    assert sum(map(sum, d["confusion"]["matrix"])) == 60
    assert sum(r["right"] + r["wrong"] for r in d["histogram"]) == 60
    wrong = 60 - sum(d["confusion"]["matrix"][i][i] for i in range(len(d["confusion"]["labels"])))
    assert len(d["errors"]) == wrong
    assert all(set(e) == {"text", "expected", "predicted", "score"} and e["expected"] != e["predicted"]
               for e in d["errors"])
    assert 0.6 < report["accuracy"] <= 1.0  # held-out, so not a memorised 1.0 by construction of the test


def test_cross_validation_is_seeded(small):
    a = cross_validate(small, folds=3, seed=1)
    b = cross_validate(small, folds=3, seed=1)
    assert a["details"]["errors"] == b["details"]["errors"] and a["per_intent"] == b["per_intent"]


def test_too_few_examples_for_the_folds_is_a_clear_error(small):
    tiny = TrainingSet({"stock": ["有货吗", "还有吗"], "invoice": ["开发票", "要发票", "有发票吗"]})
    with pytest.raises(CrossValidationError, match="fewer examples than --folds 3: stock"):
        cross_validate(tiny, folds=3)


def test_confusion_and_histogram_are_plain_counts():
    c = confusion(["a", "a", "b"], ["a", "b", "b"])
    assert c == {"labels": ["a", "b"], "matrix": [[1, 1], [0, 1]]}
    rows = histogram([0.05, 0.95, 1.0, 0.5], [True, False, True, True], bins=4)
    assert [(r["right"], r["wrong"]) for r in rows] == [(1, 0), (0, 0), (1, 0), (1, 1)]


def test_eval_cross_validation_command_writes_errors_and_html(small, config_path, tmp_path, monkeypatch):
    monkeypatch.setattr("bot.suites.eval_report.load_shop_training_set", lambda config: small)
    errors, html = tmp_path / "errors.jsonl", tmp_path / "report.html"
    result = CliRunner().invoke(main, ["eval", "--cross-validation", "--folds", "3", "--json", "--errors", str(errors),
                                       "--html", str(html), "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["n"] == 60 and doc["cross_validation"]["folds"] == 3 and "per_intent" in doc
    rows = [json.loads(line) for line in errors.read_text(encoding="utf-8").splitlines()]
    assert all(r["expected"] != r["predicted"] for r in rows)
    assert len(rows) == round(60 * (1 - doc["accuracy"]))
    page = html.read_text(encoding="utf-8")
    assert '<svg id="confusion-matrix"' in page and '<svg id="confidence-histogram"' in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # self-contained


def test_eval_text_output_has_the_histogram(small, config_path, monkeypatch):
    monkeypatch.setattr("bot.suites.eval_report.load_shop_training_set", lambda config: small)
    result = CliRunner().invoke(main, ["eval", "--cross-validation", "--folds", "3", "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    assert "confidence     right  wrong" in result.output and "0.9–1.0" in result.output


def test_eval_needs_data_or_cross_validation(config_path):
    result = CliRunner().invoke(main, ["eval", "--config", str(config_path)])
    assert result.exit_code == 2 and "give --data FILE.jsonl, or --cross-validation" in result.output


def test_eval_on_a_file_writes_the_errors_file(engine, config_path, tmp_path):
    data = tmp_path / "set.jsonl"
    data.write_text('{"text": "包邮吗", "intent": "free_shipping"}\n{"text": "能开发票吗", "intent": "stock"}\n',
                    encoding="utf-8")
    errors = tmp_path / "errors.jsonl"
    result = CliRunner().invoke(main, ["eval", "--data", str(data), "--errors", str(errors), "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in errors.read_text(encoding="utf-8").splitlines()]
    assert [(r["text"], r["expected"], r["predicted"]) for r in rows] == [("能开发票吗", "stock", "invoice")]
    assert 0.5 < rows[0]["score"] <= 1
