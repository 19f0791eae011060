"""`kefu eval --cross-validation`: how well the shop's own examples teach the classifier.

Without a labelled test file a shop can still ask "which of my intents are learnt badly,
and which are mixed up?": split the training examples into N stratified folds (seeded, so
two runs agree), train on N−1 and predict the held-out one, N times. Every example is
predicted exactly once by a model that never saw it. The held-out predictions are scored
with the same `bot.evaluate.score` as `kefu eval` (auto-send here means the classifier alone
would allow it: a confident intent at or above ``auto_intent_min``; there is no phrasebook).
"""

from __future__ import annotations

from collections.abc import Callable

from bot.errors import UserError
from bot.evaluate import Example, score
from bot.suites.intents import details
from intents.classifier import IntentClassifier
from intents.dataset import TrainingSet


class CrossValidationError(UserError, ValueError):
    """The examples cannot be split as asked (e.g. an intent has fewer examples than folds)."""


def cross_validate(
    data: TrainingSet,
    *,
    folds: int = 5,
    seed: int = 13,
    min_confidence: float = 0.2,
    min_margin: float = 0.0,
    auto_intent_min: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """The `kefu eval` report over held-out predictions, plus confusion, histogram and errors."""
    texts, labels = data.pairs()
    if folds < 2:
        raise CrossValidationError("--folds must be at least 2")
    small = sorted(intent for intent, lines in data.examples.items() if len(lines) < folds)
    if small:
        raise CrossValidationError(
            f"intents with fewer examples than --folds {folds}: {', '.join(small)} (add examples or use fewer folds)"
        )
    predicted: list[str] = [""] * len(texts)
    scores: list[float] = [0.0] * len(texts)
    auto: list[bool] = [False] * len(texts)
    from sklearn.model_selection import StratifiedKFold  # training-time only: not on the serve path

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (train_idx, test_idx) in enumerate(splitter.split(texts, labels), 1):
        part = TrainingSet()
        for i in train_idx:
            part.examples.setdefault(labels[i], []).append(texts[i])
        clf = IntentClassifier(min_confidence=min_confidence, min_margin=min_margin).fit(part)
        for i, result in zip(test_idx, clf.predict_many([texts[i] for i in test_idx])):
            predicted[i], scores[i] = result.intent, result.score
            auto[i] = result.confident and result.score >= auto_intent_min
        if progress is not None:
            progress(fold, folds)
    examples = [Example(t, g) for t, g in zip(texts, labels)]
    report = score(examples, predicted, auto)
    report["cross_validation"] = {"folds": folds, "seed": seed}
    report["details"] = details(texts, labels, predicted, scores)
    return report
