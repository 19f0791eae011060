"""Calibrated probabilities: ``softmax(scores / T)`` and the one temperature T that fits held-out scores.

Temperature scaling keeps the ranking and the argmax of the SVM's scores and only makes ``p``
mean what it says (`intents.classifier`'s docstring has the figures); one parameter, so a few
hundred held-out lines fix it well.
"""

from __future__ import annotations

import numpy as np


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax, scipy.special.softmax's formula without its per-call array-API dispatch."""
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def two_columns(scores: np.ndarray) -> np.ndarray:
    """Scores as (rows, intents); with two intents sklearn gives one column d: softmax([0, d])."""
    return scores if scores.ndim == 2 else np.column_stack([np.zeros_like(scores), scores])


def fit_temperature(scores: np.ndarray, gold: np.ndarray) -> float:
    """The T in ``softmax(scores / T)`` with the least mean log loss of the gold classes.

    One parameter, so a few hundred held-out lines fix it well; T > 1 softens an over-confident
    model, T < 1 sharpens an under-confident one. Bounded to [0.05, 20].
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    rows = np.arange(len(gold))

    def loss(log_t: float) -> float:
        return float(-log_softmax(scores / np.exp(log_t), axis=1)[rows, gold].mean())

    best = minimize_scalar(loss, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(best.x))
