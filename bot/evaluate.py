"""`kefu eval`: how well the engine reads a labelled set of real customer messages.

Besides accuracy and macro-F1 it measures what matters for an auto-replier: of the messages
the policy would send on its own, how many had the right intent (``auto_precision``), and how
many it would send at all (``auto_coverage``).

Every report carries both readings side by side: ``strict`` (the label only) and ``lenient``
(the annotator's second plausible label, ``alt``, also counts). Lenient figures alone flatter
the bot — a reply sent for the alt intent is often still the wrong answer — so the terminal
report prints strict first and the chosen mode only decides which figures the top-level keys hold.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import DataFileError

if TYPE_CHECKING:
    from bot.engine import Engine
    from bot.models import Decision


class EvalDataError(DataFileError, ValueError):
    """The labelled file is unusable; the message names file:line."""

    exit_code = 1


class UnknownLabelError(EvalDataError):
    """A gold label this shop has no intent for: measuring against it would be meaningless.

    `kefu eval` exits 2 on it (the contract), not 1, so scripts can tell a labelling mistake
    from an unreadable file.
    """

    exit_code = 2


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    alt: str | None = None
    #: Earlier customer messages of the same conversation (``"context": [...]`` in the file),
    #: answered first; without them the message opens a fresh conversation.
    context: tuple[str, ...] = ()


def read_examples(path: Path | str, intents: Collection[str] | None = None) -> list[Example]:
    """Read JSON lines ``{"text", "intent", "alt"?, "context"?}``; blank lines are skipped.

    With ``intents``, a label (or alt label) outside it raises :class:`UnknownLabelError`
    naming the line and the label.
    """
    examples = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvalDataError(f"{path}:{number}: not JSON: {exc.msg}") from exc
            if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not isinstance(
                row.get("intent"), str
            ):
                raise EvalDataError(f'{path}:{number}: each line needs "text" and "intent" strings')
            alt = row.get("alt")
            if intents is not None:
                for label in (row["intent"], alt if isinstance(alt, str) else None):
                    if label is not None and label not in intents:
                        raise UnknownLabelError(
                            f"{path}:{number}: unknown intent label {label!r}"
                            " (not a default intent nor one of intents.custom in config.yaml)"
                        )
            context = row.get("context", [])
            if not isinstance(context, list) or not all(isinstance(c, str) for c in context):
                raise EvalDataError(f'{path}:{number}: "context" is a list of earlier customer messages (strings)')
            examples.append(Example(row["text"], row["intent"], alt if isinstance(alt, str) else None, tuple(context)))
    if not examples:
        raise EvalDataError(f"{path}: no examples")
    return examples


def score(
    examples: list[Example], predicted: list[str], auto_sent: list[bool], accept_alt: bool = False
) -> dict:
    """Metrics for predictions against labels (pure function: what the tests pin down).

    With ``accept_alt`` a prediction equal to the example's ``alt`` counts as correct; for the
    per-intent figures the gold label then becomes that alt, so precision and recall agree with
    accuracy.
    """
    gold = [
        p if accept_alt and e.alt is not None and p == e.alt else e.intent
        for e, p in zip(examples, predicted)
    ]
    n = len(examples)
    correct = [g == p for g, p in zip(gold, predicted)]
    labels = sorted(set(gold) | set(predicted))
    # imported here: `kefu serve` imports this module through the CLI and never scores a set
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(
        gold, predicted, labels=labels, zero_division=0
    )
    per_intent = {
        label: {
            "precision": round(float(p), 4),
            "recall": round(float(r), 4),
            "f1": round(float(f), 4),
            "support": int(s),
        }
        for label, p, r, f, s in zip(labels, precision, recall, f1, support)
    }
    # macro-F1 over the intents the data holds: an intent absent from the gold labels has no
    # recall to speak of, and counting it would reward never predicting rare intents.
    present = [label for label in labels if per_intent[label]["support"] > 0]
    macro_f1 = sum(per_intent[label]["f1"] for label in present) / len(present)
    confused = Counter((g, p) for g, p in zip(gold, predicted) if g != p)
    n_auto = sum(auto_sent)
    auto_right = sum(1 for ok, auto in zip(correct, auto_sent) if ok and auto)
    return {
        "n": n,
        "accuracy": round(sum(correct) / n, 4),
        "macro_f1": round(macro_f1, 4),
        "per_intent": per_intent,
        "confused": [[g, p, c] for (g, p), c in confused.most_common(10)],
        "auto_precision": round(auto_right / n_auto, 4) if n_auto else None,
        "auto_coverage": round(n_auto / n, 4),
        "auto_sent": n_auto,
        "accept_alt": accept_alt,
    }


#: The figures each of the ``strict`` / ``lenient`` objects holds.
HEADLINE = ("n", "accuracy", "macro_f1", "auto_precision", "auto_coverage", "auto_sent")


def score_both(
    examples: list[Example], predicted: list[str], auto_sent: list[bool], accept_alt: bool = False
) -> dict:
    """`score` for the chosen mode, plus ``strict`` and ``lenient`` headline objects.

    The top-level keys stay those of the chosen mode (``accept_alt``), so existing readers of
    the JSON keep working; the two objects always hold both readings of the same predictions.
    """
    strict = score(examples, predicted, auto_sent, accept_alt=False)
    lenient = score(examples, predicted, auto_sent, accept_alt=True)
    report = dict(lenient if accept_alt else strict)
    report["strict"] = {key: strict[key] for key in HEADLINE}
    report["lenient"] = {key: lenient[key] for key in HEADLINE}
    return report


#: Probability bins of the reliability table: fine near 1, where the auto-send threshold lives.
RELIABILITY_BINS = (0.0, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99, 1.0)


def reliability(points: list[tuple[float, bool]], bins: tuple[float, ...] = RELIABILITY_BINS) -> dict:
    """Does p ≈ 0.9 mean nine in ten right? ``points`` are (probability, right) pairs.

    Each bin holds the points with ``low <= p < high`` (the last bin includes 1.0) with their
    count, mean probability and accuracy; ``ece`` (expected calibration error) is the
    count-weighted mean gap between the two, ``gap`` the signed one (positive: over-confident).
    """
    rows, ece, gap = [], 0.0, 0.0
    for i, (low, high) in enumerate(zip(bins, bins[1:])):
        last = i == len(bins) - 2
        inside = [(p, ok) for p, ok in points if low <= p < high or (last and p == high)]
        row: dict = {"low": low, "high": high, "n": len(inside), "mean_p": None, "accuracy": None}
        if inside:
            mean_p = sum(p for p, _ in inside) / len(inside)
            accuracy = sum(ok for _, ok in inside) / len(inside)
            row.update(mean_p=round(mean_p, 4), accuracy=round(accuracy, 4))
            ece += len(inside) * abs(mean_p - accuracy)
            gap += len(inside) * (mean_p - accuracy)
        rows.append(row)
    n = len(points) or 1
    return {"bins": rows, "ece": round(ece / n, 4), "gap": round(gap / n, 4)}


def calibration_points(examples: list[Example], decisions: list[Decision]) -> list[tuple[float, bool]]:
    """(probability of the top intent, is it the label) per message, as the policy reads it.

    The top intent of the decision's ranking, not the decision's intent: below
    ``min_confidence`` the decision says `other`, but the probability is the top intent's.
    """
    points = []
    for example, decision in zip(examples, decisions):
        top, p = decision.intents[0] if decision.intents else (decision.intent, decision.intent_score)
        points.append((float(p), top == example.intent))
    return points


def run_examples(engine: Engine, examples: list[Example]) -> list[Decision]:
    """Every example's decision as the server makes it (`bot.pipeline.offline`): one fresh
    conversation per message, after its context when the file gives one."""
    from bot.pipeline.offline import fresh_decisions

    contexts = [e.context for e in examples] if any(e.context for e in examples) else None
    return fresh_decisions(engine, [e.text for e in examples], contexts)


def decision_row(decision: Decision) -> dict:
    """What a message's decision comes to: its intent, kind, the line shown, what goes out.

    ``phrase_id`` is the last line sent (an away greeting comes before the answer), else the
    best suggestion — the same rule as a `kefu replay` line.
    """
    shown = decision.replies[-1] if decision.replies else (decision.suggestions[0] if decision.suggestions else None)
    return {"intent": decision.intent, "kind": decision.kind, "phrase_id": shown.id if shown else None,
            "replies": [r.id for r in decision.replies],
            "handoff": decision.handoff.group if decision.handoff else None}


def write_decisions(path: Path, examples: list[Example], decisions: list[Decision]) -> None:
    """``kefu eval --decisions``: one JSON line per message, in the file's order."""
    with open(path, "w", encoding="utf-8") as f:
        for example, decision in zip(examples, decisions):
            row = {"text": example.text, "expected": example.intent, **decision_row(decision)}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def evaluate(engine: Engine, examples: list[Example], accept_alt: bool = False,
             decisions: list[Decision] | None = None) -> dict:
    """Run every example through the server's pipeline, as an away-mode auto-replier sees it.

    The report adds ``reliability`` (strict: right = the label) of the intent probability.
    """
    decisions = decisions if decisions is not None else run_examples(engine, examples)
    predicted = [d.intent for d in decisions]
    auto_sent = [d.kind == "auto_send" for d in decisions]
    report = score_both(examples, predicted, auto_sent, accept_alt)
    report["reliability"] = reliability(calibration_points(examples, decisions))
    return report


def _auto(row: dict | None) -> str:
    if row is None:
        return "-"
    if not row["auto_sent"]:
        return "none"
    return f"{row['auto_precision']:.3f} of {row['auto_sent']} ({row['auto_coverage']:.1%})"


def _figure(row: dict | None, key: str) -> str:
    return "-" if row is None else f"{row[key]:.3f}"


def format_report(report: dict) -> str:
    """A readable report for the terminal: strict and lenient headline figures side by side.

    The per-intent table and the confusions below them are for the chosen mode. A bare `score`
    report (one mode only) shows ``-`` in the other column.
    """
    mode = "lenient (alt labels accepted)" if report["accept_alt"] else "strict"
    strict = report.get("strict", None if report["accept_alt"] else report)
    lenient = report.get("lenient", report if report["accept_alt"] else None)
    lines = [
        f"examples      {report['n']}",
        f"{'':<14}{'strict':<22}lenient (+alt)",
        f"{'accuracy':<14}{_figure(strict, 'accuracy'):<22}{_figure(lenient, 'accuracy')}",
        f"{'macro-F1':<14}{_figure(strict, 'macro_f1'):<22}{_figure(lenient, 'macro_f1')}",
        f"{'auto-send P':<14}{_auto(strict):<22}{_auto(lenient)}",
        "",
        f"per intent ({mode}):",
        f"{'intent':<20}{'prec':>7}{'recall':>8}{'f1':>7}{'support':>9}",
    ]
    for label, row in sorted(report["per_intent"].items(), key=lambda kv: -kv[1]["support"]):
        lines.append(
            f"{label:<20}{row['precision']:>7.3f}{row['recall']:>8.3f}{row['f1']:>7.3f}{row['support']:>9}"
        )
    if report["confused"]:
        lines += ["", "most confused (gold → predicted):"]
        lines += [f"  {g} → {p}: {c}" for g, p, c in report["confused"]]
    if "reliability" in report:
        lines += ["", *format_reliability(report["reliability"])]
    return "\n".join(lines)


def format_reliability(table: dict) -> list[str]:
    """The reliability table as text lines (strict: right = the label)."""
    lines = ["reliability of the intent probability (strict):", f"{'p bin':<14}{'n':>5}{'mean p':>8}{'acc':>7}"]
    for row in table["bins"]:
        shown = f"[{row['low']:.2f}, {row['high']:.2f}{']' if row['high'] >= 1 else ')'}"
        if row["n"]:
            lines.append(f"{shown:<14}{row['n']:>5}{row['mean_p']:>8.3f}{row['accuracy']:>7.3f}")
        else:
            lines.append(f"{shown:<14}{0:>5}{'-':>8}{'-':>7}")
    lines.append(f"ECE {table['ece']:.3f} (mean p − accuracy {table['gap']:+.3f})")
    return lines
