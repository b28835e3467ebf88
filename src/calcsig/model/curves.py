"""ROC curves on a fixed false-positive-rate grid with a cluster-bootstrap band, and PR curves.

The ROC of a set of predictions is the polyline through its vertices, one
per distinct probability (highest first), from (0, 0) to (1, 1); tied
probabilities give a diagonal segment, as the Mann-Whitney AUC counts ties
one half. For plotting and for a pointwise band it is read off at 101
false-positive rates 0, 0.01, ..., 1: at each rate, the highest true-positive
rate reached without exceeding it, interpolated along the segment that
crosses it. The band is the pointwise percentile interval of that curve over
resamples of whole clusters (subjects), the same stratified cluster bootstrap
as every other interval of the evaluation.
"""

from __future__ import annotations

import numpy as np

from .metrics import bootstrap_weights, percentile_ci

FPR_GRID = np.linspace(0.0, 1.0, 101)
DECIMALS = 6  # curves are for plotting: six decimals keep models.json readable


def _vertices(weights: np.ndarray, y, score) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr), each (n_sets, n_levels + 1), of the ROC for each row of case weights."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(score, dtype=float)
    W = np.atleast_2d(np.asarray(weights, dtype=float))
    levels, group = np.unique(-s, return_inverse=True)  # highest probability first
    pos = np.zeros((W.shape[0], len(levels)))
    neg = np.zeros_like(pos)
    np.add.at(pos.T, group[y], W[:, y].T)
    np.add.at(neg.T, group[~y], W[:, ~y].T)
    tp = np.hstack([np.zeros((W.shape[0], 1)), np.cumsum(pos, axis=1)])
    fp = np.hstack([np.zeros((W.shape[0], 1)), np.cumsum(neg, axis=1)])
    with np.errstate(invalid="ignore", divide="ignore"):
        return fp / fp[:, -1:], tp / tp[:, -1:]


def tpr_at(fpr: np.ndarray, tpr: np.ndarray, grid=FPR_GRID) -> np.ndarray:
    """True-positive rate of the ROC polyline through (fpr, tpr) vertices at each false-positive rate of `grid`."""
    fpr = np.asarray(fpr, dtype=float)
    tpr = np.asarray(tpr, dtype=float)
    if not (np.isfinite(fpr).all() and np.isfinite(tpr).all()):
        return np.full(len(grid), np.nan)
    k = np.searchsorted(fpr, grid, side="right") - 1  # last vertex at or left of each grid point
    nxt = np.minimum(k + 1, len(fpr) - 1)
    span = fpr[nxt] - fpr[k]
    with np.errstate(invalid="ignore", divide="ignore"):
        step = np.where(span > 0, (grid - fpr[k]) / span, 0.0)
    return tpr[k] + step * (tpr[nxt] - tpr[k])


def roc_on_grid(y, score) -> dict:
    """{"fpr": the 101-point grid, "tpr": the ROC read off at it} (no band)."""
    fpr, tpr = _vertices(np.ones(len(np.asarray(y))), y, score)
    return {"fpr": _rounded(FPR_GRID), "tpr": _rounded(tpr_at(fpr[0], tpr[0]))}


def roc_with_band(y, score, clusters, *, n_boot=1000, level=0.95, seed=0) -> dict:
    """ROC on the grid with a pointwise cluster-bootstrap band: fpr, tpr, tpr_ci_low, tpr_ci_high."""
    out = roc_on_grid(y, score)
    if n_boot > 0 and len(np.asarray(y)):
        fpr, tpr = _vertices(bootstrap_weights(y, clusters, n_boot, seed), y, score)
        curves = np.vstack([tpr_at(f, t) for f, t in zip(fpr, tpr)])
        lo, hi = percentile_ci(curves, level)
    else:
        lo = hi = np.full(len(FPR_GRID), np.nan)
    out["tpr_ci_low"] = _rounded(lo)
    out["tpr_ci_high"] = _rounded(hi)
    return out


def pr_curve(y, score) -> dict:
    """Precision-recall curve of the pooled predictions: one point per distinct probability, highest first.

    {"recall", "precision", "threshold"}: calling positive at probability >=
    threshold gives that recall and precision. Empty lists without a positive case.
    """
    y = np.asarray(y).astype(bool)
    s = np.asarray(score, dtype=float)
    if not y.any():
        return {"recall": [], "precision": [], "threshold": []}
    levels, group = np.unique(-s, return_inverse=True)
    tp = np.cumsum(np.bincount(group[y], minlength=len(levels)))
    fp = np.cumsum(np.bincount(group[~y], minlength=len(levels)))
    return {
        "recall": _rounded(tp / y.sum()),
        "precision": _rounded(tp / (tp + fp)),
        "threshold": _rounded(0.0 - levels),
    }


def _rounded(values) -> list:
    return [None if not np.isfinite(v) else round(float(v), DECIMALS) for v in np.asarray(values, dtype=float)]
