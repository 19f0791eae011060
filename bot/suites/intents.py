"""Per-message intent details for reports: confusion matrix, errors, confidence histogram.

`bot.evaluate.score` gives the headline figures; a customer-service lead also needs to see
*which* messages went wrong, which intents are mixed up with which, and whether the model's
confidence means anything (wrong answers should sit in the low bins). These functions are
pure, so `kefu eval`, `kefu eval --cross-validation` and `kefu test` share them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path


def confusion(gold: Sequence[str], predicted: Sequence[str]) -> dict:
    """``{"labels": [...], "matrix": [[count]]}``: rows are the true intent, columns the predicted one."""
    labels = sorted(set(gold) | set(predicted))
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, predicted):
        matrix[index[g]][index[p]] += 1
    return {"labels": labels, "matrix": matrix}


def histogram(scores: Sequence[float], correct: Sequence[bool], bins: int = 10) -> list[dict]:
    """Top-intent probability in ``bins`` equal bins, right and wrong answers counted apart."""
    rows = [{"low": round(i / bins, 3), "high": round((i + 1) / bins, 3), "right": 0, "wrong": 0}
            for i in range(bins)]
    for s, ok in zip(scores, correct):
        i = min(int(s * bins), bins - 1)
        rows[i]["right" if ok else "wrong"] += 1
    return rows


def error_rows(texts: Sequence[str], gold: Sequence[str], predicted: Sequence[str],
               scores: Sequence[float]) -> list[dict]:
    """Every wrong message: text, expected, predicted, score — most confident mistakes first."""
    rows = [{"text": t, "expected": g, "predicted": p, "score": round(float(s), 4)}
            for t, g, p, s in zip(texts, gold, predicted, scores) if g != p]
    return sorted(rows, key=lambda r: -r["score"])


def write_errors(path: Path, rows: list[dict]) -> None:
    """JSON lines, one wrong message each (opens in any editor, greps, loads into pandas)."""
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def details(texts: Sequence[str], gold: Sequence[str], predicted: Sequence[str], scores: Sequence[float]) -> dict:
    """Everything the HTML report and the errors file need, in one JSON-able dict."""
    correct = [g == p for g, p in zip(gold, predicted)]
    return {
        "confusion": confusion(gold, predicted),
        "histogram": histogram(scores, correct),
        "errors": error_rows(texts, gold, predicted, scores),
        "support": dict(Counter(gold)),
    }
