"""Operating points: decision thresholds chosen on a training set's out-of-fold predictions.

Two operating points are chosen on the same inner out-of-fold predictions
and applied, unchanged, to the held-out cases:

- ``target``: the highest threshold whose out-of-fold sensitivity reaches
  ``target_sensitivity`` (published: 1.0). At 1.0 this is the lowest
  probability any actionable training ROI got, and in practice it calls
  nearly every benign case positive;
- ``margin``: the highest threshold whose out-of-fold sensitivity reaches
  ``margin_sensitivity``, a configured target below 1 (default 0.95): a
  margin of sensitivity is given up for specificity, and both points are
  reported side by side.

A rule on a lower confidence bound of the out-of-fold sensitivity was
considered and not taken: an outer training set of the default run holds 34
actionable subjects, and a one-sided 95% Clopper-Pearson bound on them is
0.916 when every case is found and 0.868 when one is missed, so a bound
reaching 0.9 demands the exact threshold at 1.0 again and gains nothing.

A case is called positive when its probability is at least the threshold.
"""

from __future__ import annotations

import math

import numpy as np

OPERATING_POINTS = ("target", "margin")


def choose_threshold(y, probability, target_sensitivity: float = 1.0) -> dict:
    """The highest threshold t (positive when probability >= t) whose sensitivity reaches the target.

    Sensitivity only falls as t rises and specificity only rises, so the
    highest such t has the best specificity among those reaching the target.
    Returns threshold, sensitivity and specificity on the given cases.
    """
    y = np.asarray(y).astype(bool)
    p = np.asarray(probability, dtype=float)
    pos = np.sort(p[y])[::-1]
    if len(pos) == 0:
        raise ValueError("no positive case to set a sensitivity-targeted threshold on")
    need = max(1, math.ceil(target_sensitivity * len(pos) - 1e-9))
    t = float(pos[need - 1])
    called = p >= t
    neg = ~y
    return {
        "threshold": t,
        "sensitivity": float(np.mean(called[y])),
        "specificity": float(np.mean(~called[neg])) if neg.any() else float("nan"),
    }


def rule(point: str, target_sensitivity: float, margin_sensitivity: float) -> str:
    """How an operating point's threshold is chosen, in words (for models.json and search.json)."""
    if point == "target":
        return (
            f"highest threshold whose inner out-of-fold sensitivity reaches {target_sensitivity:g} "
            "(the exact target), chosen on the training cases of each fold"
        )
    if point == "margin":
        return (
            f"highest threshold whose inner out-of-fold sensitivity reaches {margin_sensitivity:g} "
            f"(a configured target below {target_sensitivity:g}: sensitivity traded for specificity), "
            "chosen on the training cases of each fold"
        )
    raise ValueError(f"unknown operating point {point!r}; expected one of {OPERATING_POINTS}")


def choose_operating_points(y, probability, target_sensitivity: float, margin_sensitivity: float) -> dict:
    """{"target": ..., "margin": ...}, each :func:`choose_threshold` on the same out-of-fold predictions."""
    if margin_sensitivity > target_sensitivity:
        raise ValueError(
            f"model.margin_sensitivity ({margin_sensitivity}) is above model.target_sensitivity "
            f"({target_sensitivity}); the margin point must give up sensitivity, not add it"
        )
    return {
        "target": choose_threshold(y, probability, target_sensitivity),
        "margin": choose_threshold(y, probability, margin_sensitivity),
    }
