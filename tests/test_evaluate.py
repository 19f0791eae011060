"""Eval metrics: accuracy, macro-F1 over present intents, alt labels, auto-send precision."""

from __future__ import annotations

import json

import pytest

from bot.evaluate import (
    EvalDataError,
    Example,
    format_reliability,
    format_report,
    read_examples,
    reliability,
    score,
    score_both,
)

EXAMPLES = [
    Example("在吗", "greeting"),
    Example("包邮吗", "free_shipping"),
    Example("到哪了", "track_parcel", alt="logistics_stuck"),
    Example("嗯", "other"),
]


def test_strict_scores():
    predicted = ["greeting", "free_shipping", "logistics_stuck", "greeting"]
    report = score(EXAMPLES, predicted, [True, True, True, False])
    assert report["n"] == 4
    assert report["accuracy"] == 0.5
    # present intents: greeting (P .5 R 1 → .667), free_shipping 1, track_parcel 0, other 0
    assert report["macro_f1"] == pytest.approx((0.6667 + 1 + 0 + 0) / 4, abs=1e-4)
    assert report["per_intent"]["logistics_stuck"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report["auto_precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["auto_coverage"] == 0.75
    assert report["auto_sent"] == 3
    assert ["track_parcel", "logistics_stuck", 1] in report["confused"]


def test_accept_alt_counts_the_alternative():
    predicted = ["greeting", "free_shipping", "logistics_stuck", "greeting"]
    report = score(EXAMPLES, predicted, [True, True, True, False], accept_alt=True)
    assert report["accuracy"] == 0.75
    assert report["auto_precision"] == 1.0
    assert report["per_intent"]["logistics_stuck"]["support"] == 1
    assert "track_parcel" not in report["per_intent"]


def test_no_auto_send_has_no_precision():
    report = score(EXAMPLES, ["other"] * 4, [False] * 4)
    assert report["auto_precision"] is None and report["auto_coverage"] == 0.0
    assert "auto-send P   none" in format_report(report)


def test_read_examples(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "在吗", "intent": "greeting"}\n\n{"text": "到哪了", "intent": "track_parcel", "alt": "logistics_stuck"}\n', encoding="utf-8")
    assert read_examples(path) == [Example("在吗", "greeting"), Example("到哪了", "track_parcel", "logistics_stuck")]


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"text": "在吗"}\n', ':1: each line needs "text" and "intent" strings'),
        ('{"text": "在吗", "intent": "greeting"}\nnot json\n', ":2: not JSON"),
        ("", ": no examples"),
    ],
)
def test_read_examples_errors(tmp_path, content, message):
    path = tmp_path / "d.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EvalDataError) as info:
        read_examples(path)
    assert str(info.value).startswith(f"{path}{message}")


def test_report_is_json_serialisable():
    report = score(EXAMPLES, ["greeting"] * 4, [True] * 4)
    assert json.loads(json.dumps(report))["accuracy"] == 0.25


def test_both_readings_side_by_side():
    predicted = ["greeting", "free_shipping", "logistics_stuck", "greeting"]
    auto = [True, True, True, False]
    report = score_both(EXAMPLES, predicted, auto)
    # the top level is the chosen (strict) mode, unchanged
    assert report["accuracy"] == 0.5 and report["accept_alt"] is False
    assert report["strict"] == {"n": 4, "accuracy": 0.5, "macro_f1": report["macro_f1"],
                                "auto_precision": pytest.approx(2 / 3, abs=1e-4), "auto_coverage": 0.75, "auto_sent": 3}
    assert report["lenient"]["accuracy"] == 0.75 and report["lenient"]["auto_precision"] == 1.0
    lenient = score_both(EXAMPLES, predicted, auto, accept_alt=True)
    assert lenient["accuracy"] == 0.75 and lenient["strict"] == report["strict"]
    assert lenient["lenient"] == report["lenient"]


def test_report_prints_strict_then_lenient():
    predicted = ["greeting", "free_shipping", "logistics_stuck", "greeting"]
    text = format_report(score_both(EXAMPLES, predicted, [True, True, True, False], accept_alt=True))
    lines = text.splitlines()
    header = next(line for line in lines if "strict" in line and "lenient" in line)
    assert header.index("strict") < header.index("lenient")
    accuracy = next(line for line in lines if line.startswith("accuracy")).split()
    assert accuracy == ["accuracy", "0.500", "0.750"]
    auto = next(line for line in lines if line.startswith("auto-send P"))
    assert "0.667 of 3 (75.0%)" in auto and "1.000 of 3 (75.0%)" in auto
    assert "per intent (lenient" in text


def test_reliability_bins_count_mean_p_and_accuracy_and_ece_weighs_the_gaps():
    points = [(0.2, False), (0.3, True), (0.95, True), (0.97, False), (1.0, True), (0.999, True)]
    table = reliability(points, bins=(0.0, 0.5, 0.99, 1.0))
    low, mid, top = table["bins"]
    assert (low["n"], low["mean_p"], low["accuracy"]) == (2, 0.25, 0.5)
    assert (mid["n"], mid["mean_p"], mid["accuracy"]) == (2, 0.96, 0.5)
    assert (top["n"], top["accuracy"]) == (2, 1.0)  # the last bin includes p = 1.0
    gaps = [2 * abs(0.25 - 0.5), 2 * abs(0.96 - 0.5), 2 * abs(0.9995 - 1.0)]
    assert table["ece"] == pytest.approx(sum(gaps) / 6, abs=1e-4)
    assert table["gap"] == pytest.approx((2 * -0.25 + 2 * 0.46 + 2 * -0.0005) / 6, abs=1e-4)
    assert reliability([], bins=(0.0, 1.0)) == {"bins": [{"low": 0.0, "high": 1.0, "n": 0, "mean_p": None,
                                                          "accuracy": None}], "ece": 0.0, "gap": 0.0}


def test_the_reliability_table_prints_every_bin_and_the_ece():
    lines = format_reliability(reliability([(0.95, True), (0.5, False)]))
    assert lines[0].startswith("reliability")
    assert any(line.startswith("[0.40, 0.60)") and line.split()[2] == "1" for line in lines)
    assert any(line.startswith("[0.99, 1.00]") and line.split()[-1] == "-" for line in lines)
    assert lines[-1] == "ECE 0.275 (mean p − accuracy +0.225)"
