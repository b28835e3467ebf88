"""Classification metrics, stratified subject bootstrap CIs, calibration and decision curves.

Binary convention: label 1 = actionable (positive), 0 = benign. Metrics that
are undefined on a sample (e.g. sensitivity without positives, AUC with one
class) are NaN, never an arbitrary number.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

BINARY_METRICS = ("accuracy", "sensitivity", "specificity", "f1", "ppv", "npv", "roc_auc", "pr_auc")


def _ratio(a: float, b: float) -> float:
    return float(a) / float(b) if b else float("nan")


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic (ties count one half)."""
    y = np.asarray(y).astype(bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def pr_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision (step-wise area under the precision-recall curve), ties grouped."""
    y = np.asarray(y).astype(bool)
    n1 = int(y.sum())
    if n1 == 0:
        return float("nan")
    order = np.argsort(-np.asarray(score, dtype=float), kind="mergesort")
    s = np.asarray(score, dtype=float)[order]
    tp = np.cumsum(y[order])
    fp = np.cumsum(~y[order])
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # end of each tie group
    tp, fp = tp[last], fp[last]
    precision = tp / (tp + fp)
    recall_steps = np.diff(np.r_[0, tp]) / n1
    return float(np.sum(recall_steps * precision))


def confusion(y: np.ndarray, pred: np.ndarray) -> dict:
    y = np.asarray(y).astype(bool)
    pred = np.asarray(pred).astype(bool)
    return {
        "tp": int(np.sum(y & pred)),
        "fp": int(np.sum(~y & pred)),
        "tn": int(np.sum(~y & ~pred)),
        "fn": int(np.sum(y & ~pred)),
    }


def binary_metrics(y, probability, predicted) -> dict[str, float]:
    """Point values of the eight binary metrics in BINARY_METRICS."""
    c = confusion(y, predicted)
    tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
    sens = _ratio(tp, tp + fn)
    ppv = _ratio(tp, tp + fp)
    return {
        "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
        "sensitivity": sens,
        "specificity": _ratio(tn, tn + fp),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "ppv": ppv,
        "npv": _ratio(tn, tn + fn),
        "roc_auc": roc_auc(y, probability),
        "pr_auc": pr_auc(y, probability),
    }


def bootstrap_weights(y, groups, n_boot=1000, seed=0) -> np.ndarray:
    """Case multiplicities (n_boot, n_cases) of a stratified bootstrap over subjects.

    Subjects are drawn with replacement within two strata (subjects with at
    least one positive case, subjects without), keeping the number of
    subjects in each stratum, and every case of a drawn subject comes along
    as often as the subject was drawn: cases of one subject are never
    treated as independent.
    """
    y = np.asarray(y).astype(bool)
    subjects, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    positive = np.zeros(len(subjects), dtype=bool)
    np.logical_or.at(positive, inverse, y)
    rng = np.random.default_rng(seed)
    draws = np.zeros((n_boot, len(subjects)))
    for stratum in (np.flatnonzero(positive), np.flatnonzero(~positive)):
        if len(stratum):
            draws[:, stratum] = rng.multinomial(len(stratum), np.full(len(stratum), 1.0 / len(stratum)), size=n_boot)
    return draws[:, inverse]


def bootstrap(statistic, y, probability, predicted, groups, n_boot=1000, seed=0) -> np.ndarray:
    """Values of `statistic(y, probability, predicted)` on `n_boot` stratified subject resamples.

    The statistic returns a float or a 1-D array; the result has shape
    (n_boot,) or (n_boot, k).
    """
    y, probability, predicted = np.asarray(y), np.asarray(probability, dtype=float), np.asarray(predicted)
    weights = bootstrap_weights(y, groups, n_boot, seed).astype(int)
    out = []
    for w in weights:
        idx = np.repeat(np.arange(len(y)), w)
        out.append(statistic(y[idx], probability[idx], predicted[idx]))
    return np.asarray(out, dtype=float)


def weighted_binary_metrics(weights: np.ndarray, y, probability, predicted) -> np.ndarray:
    """The BINARY_METRICS (columns) for each row of case weights (n_sets, n_cases), vectorised.

    A case of weight w counts as w copies of itself, so a bootstrap resample
    is one row of multiplicities; weights of all ones give the plain metrics.
    AUCs use tie groups of the probability (ties count one half for ROC AUC).
    """
    W = np.atleast_2d(np.asarray(weights, dtype=float))
    y = np.asarray(y).astype(bool)
    p = np.asarray(probability, dtype=float)
    yhat = np.asarray(predicted).astype(bool)
    tp = W @ (y & yhat)
    fp = W @ (~y & yhat)
    tn = W @ (~y & ~yhat)
    fn = W @ (y & ~yhat)
    levels, grp = np.unique(p, return_inverse=True)
    pos_g = np.zeros((W.shape[0], len(levels)))
    neg_g = np.zeros_like(pos_g)
    np.add.at(pos_g.T, grp[y], W[:, y].T)
    np.add.at(neg_g.T, grp[~y], W[:, ~y].T)
    n_pos, n_neg = pos_g.sum(axis=1), neg_g.sum(axis=1)
    neg_below = np.cumsum(neg_g, axis=1) - neg_g
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (pos_g * (neg_below + 0.5 * neg_g)).sum(axis=1) / (n_pos * n_neg)
        tp_cum = np.cumsum(pos_g[:, ::-1], axis=1)
        fp_cum = np.cumsum(neg_g[:, ::-1], axis=1)
        precision = np.where(tp_cum + fp_cum > 0, tp_cum / (tp_cum + fp_cum), 0.0)
        ap = (pos_g[:, ::-1] * precision).sum(axis=1) / n_pos
        cols = [
            (tp + tn) / (tp + tn + fp + fn),
            tp / (tp + fn),
            tn / (tn + fp),
            2 * tp / (2 * tp + fp + fn),
            tp / (tp + fp),
            tn / (tn + fn),
            auc,
            ap,
        ]
    out = np.column_stack(cols)
    out[~np.isfinite(out)] = np.nan
    return out


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per column, ignoring resamples where the statistic is undefined."""
    alpha = (1.0 - level) / 2.0
    samples = np.asarray(samples, dtype=float)
    cols = samples.reshape(len(samples), -1)
    cols = np.where(np.isfinite(cols), cols, np.nan)
    lo = np.full(cols.shape[1], np.nan)
    hi = np.full(cols.shape[1], np.nan)
    defined = np.isfinite(cols).any(axis=0)
    if len(cols) and defined.any():
        lo[defined], hi[defined] = np.nanquantile(cols[:, defined], [alpha, 1.0 - alpha], axis=0)
    return (lo, hi) if samples.ndim > 1 else (lo[0], hi[0])


def metrics_with_ci(y, probability, predicted, groups, n_boot=1000, level=0.95, seed=0) -> dict[str, dict]:
    """Each binary metric as {value, ci_low, ci_high} (stratified subject bootstrap, percentile CI)."""
    point = binary_metrics(y, probability, predicted)
    if n_boot > 0 and len(np.asarray(y)):
        samples = weighted_binary_metrics(bootstrap_weights(y, groups, n_boot, seed), y, probability, predicted)
        lo, hi = percentile_ci(samples, level)
    else:
        lo = hi = np.full(len(BINARY_METRICS), np.nan)
    return {
        m: {"value": finite_or_none(point[m]), "ci_low": finite_or_none(lo[i]), "ci_high": finite_or_none(hi[i])}
        for i, m in enumerate(BINARY_METRICS)
    }


def finite_or_none(v) -> float | None:
    """A float, or None when it is NaN or infinite (JSON has no NaN)."""
    v = float(v)
    return v if np.isfinite(v) else None


THRESHOLD_TABLE_STEPS = tuple(np.round(np.arange(0.1, 0.91, 0.1), 2))
DECISION_CURVE_STEPS = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2))


def threshold_table(y, probability, thresholds=THRESHOLD_TABLE_STEPS) -> list[dict]:
    """Sensitivity, specificity and PPV when calling positive at probability >= t."""
    y = np.asarray(y)
    p = np.asarray(probability, dtype=float)
    rows = []
    for t in thresholds:
        m = binary_metrics(y, p, p >= t)
        rows.append({"threshold": float(t), **{k: finite_or_none(m[k]) for k in ("sensitivity", "specificity", "ppv")}})
    return rows


def benign_biopsies_avoided(y, predicted) -> dict:
    """Fraction of benign cases called benign (spared a biopsy), with the sensitivity it comes at."""
    c = confusion(y, predicted)
    return {
        "fraction": finite_or_none(_ratio(c["tn"], c["tn"] + c["fp"])),
        "benign_spared": c["tn"],
        "benign_total": c["tn"] + c["fp"],
        "at_sensitivity": finite_or_none(_ratio(c["tp"], c["tp"] + c["fn"])),
    }


def brier_score(y, probability) -> float:
    y = np.asarray(y, dtype=float)
    p = np.asarray(probability, dtype=float)
    return float(np.mean((p - y) ** 2)) if len(y) else float("nan")


def reliability_curve(y, probability, n_bins: int = 10) -> list[dict]:
    """Observed positive fraction against mean predicted probability in equal-width bins (empty bins omitted)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(probability, dtype=float)
    bins = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            rows.append(
                {
                    "bin_low": b / n_bins,
                    "bin_high": (b + 1) / n_bins,
                    "n": int(sel.sum()),
                    "mean_predicted": float(p[sel].mean()),
                    "observed_fraction": float(y[sel].mean()),
                }
            )
    return rows


def net_benefit(y, probability, thresholds=DECISION_CURVE_STEPS) -> list[dict]:
    """Decision curve: net benefit of the model, of treating all and of treating none.

    Net benefit at threshold probability t is TP/n - FP/n * t / (1 - t).
    """
    y = np.asarray(y).astype(bool)
    p = np.asarray(probability, dtype=float)
    n = len(y)
    prevalence = y.mean() if n else float("nan")
    rows = []
    for t in thresholds:
        w = t / (1.0 - t)
        c = confusion(y, p >= t)
        rows.append(
            {
                "threshold": float(t),
                "model": float(c["tp"] / n - c["fp"] / n * w) if n else None,
                "treat_all": float(prevalence - (1 - prevalence) * w) if n else None,
                "treat_none": 0.0,
            }
        )
    return rows


def multiclass_metrics(y_true, y_pred, labels=None) -> dict:
    """Macro and per-class precision, recall and F1, and the confusion matrix (rows = truth)."""
    y_true = np.asarray(y_true).astype(str)
    y_pred = np.asarray(y_pred).astype(str)
    labels = list(labels) if labels is not None else sorted(set(y_true) | set(y_pred))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=np.nan)
    per_class = {
        lab: {
            "precision": finite_or_none(p[i]),
            "recall": finite_or_none(r[i]),
            "f1": finite_or_none(f[i]),
            "support": int(s[i]),
        }
        for i, lab in enumerate(labels)
    }
    with np.errstate(all="ignore"):
        macro = {
            k: finite_or_none(np.nanmean(v)) if np.isfinite(v).any() else None
            for k, v in (("precision", p), ("recall", r), ("f1", f))
        }
    return {
        "labels": labels,
        "macro": macro,
        "per_class": per_class,
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "accuracy": finite_or_none(np.mean(y_true == y_pred)) if len(y_true) else None,
    }


def full_report(y, probability, predicted, groups, *, n_boot=1000, level=0.95, seed=0, calibration_bins=10) -> dict:
    """Everything the evaluate stage reports for one set of binary predictions."""
    y = np.asarray(y).astype(int)
    return {
        "n": int(len(y)),
        "n_positive": int(y.sum()),
        "n_subjects": int(len(np.unique(groups))),
        "metrics": metrics_with_ci(y, probability, predicted, groups, n_boot=n_boot, level=level, seed=seed),
        "confusion": confusion(y, predicted),
        "threshold_table": threshold_table(y, probability),
        "benign_biopsies_avoided": benign_biopsies_avoided(y, predicted),
        "brier": finite_or_none(brier_score(y, probability)),
        "reliability": reliability_curve(y, probability, calibration_bins),
        "net_benefit": net_benefit(y, probability),
    }


MULTICLASS_SCORES = ("precision", "recall", "f1")


def weighted_multiclass_scores(weights: np.ndarray, y_true, y_pred, labels) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 (each (n_sets, n_classes)) and accuracy (n_sets,) per row of case weights.

    The weighted confusion matrix of each row is one matrix product, so a
    bootstrap costs no more than its weights. A score whose denominator is
    zero is NaN (as ``zero_division=np.nan`` in scikit-learn), and macro
    averages leave NaN classes out, as :func:`multiclass_metrics` does.
    """
    W = np.atleast_2d(np.asarray(weights, dtype=float))
    labels = list(labels)
    index = {c: i for i, c in enumerate(labels)}
    t = np.array([index.get(c, -1) for c in np.asarray(y_true).astype(str)])
    p = np.array([index.get(c, -1) for c in np.asarray(y_pred).astype(str)])
    k = len(labels)
    known = (t >= 0) & (p >= 0)
    pairs = np.zeros((len(t), k * k))
    pairs[np.flatnonzero(known), (t * k + p)[known]] = 1.0
    cm = (W @ pairs).reshape(len(W), k, k)  # rows = truth, columns = prediction
    tp = np.diagonal(cm, axis1=1, axis2=2)
    true_n, pred_n = cm.sum(axis=2), cm.sum(axis=1)
    total = cm.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "precision": tp / pred_n,
            "recall": tp / true_n,
            "f1": 2 * tp / (true_n + pred_n),
            "accuracy": tp.sum(axis=1) / total,
        }
    for v in out.values():
        v[~np.isfinite(v)] = np.nan
    return out


def multiclass_metrics_with_ci(y_true, y_pred, groups, strata, labels=None, n_boot=1000, level=0.95, seed=0) -> dict:
    """Macro and per-class precision, recall, F1 and accuracy as {value, ci_low, ci_high}, with the confusion matrix.

    Point values are :func:`multiclass_metrics` (scikit-learn); CIs are
    percentile intervals of the stratified subject bootstrap of
    :func:`bootstrap_weights`, stratified by `strata` (the binary label), so
    a subject's cases are resampled together. ``confusion`` rows are the true
    classes and columns the predicted ones, both in the order of ``labels``.
    """
    y_true = np.asarray(y_true).astype(str)
    y_pred = np.asarray(y_pred).astype(str)
    point = multiclass_metrics(y_true, y_pred, labels)
    labels = point["labels"]
    k = len(labels)
    if n_boot > 0 and len(y_true):
        boot = weighted_multiclass_scores(bootstrap_weights(strata, groups, n_boot, seed), y_true, y_pred, labels)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN resample is NaN, and the CI skips it
            macro = {s: np.nanmean(boot[s], axis=1) for s in MULTICLASS_SCORES}
        ci = {f"macro_{s}": percentile_ci(macro[s], level) for s in MULTICLASS_SCORES}
        ci["accuracy"] = percentile_ci(boot["accuracy"], level)
        per = {s: percentile_ci(boot[s], level) for s in MULTICLASS_SCORES}
    else:
        ci = {key: (np.nan, np.nan) for key in ("accuracy", *(f"macro_{s}" for s in MULTICLASS_SCORES))}
        per = {s: (np.full(k, np.nan), np.full(k, np.nan)) for s in MULTICLASS_SCORES}

    def entry(value, lo, hi):
        return {
            "value": None if value is None else finite_or_none(value),
            "ci_low": finite_or_none(lo),
            "ci_high": finite_or_none(hi),
        }

    return {
        "labels": labels,
        "n": int(len(y_true)),
        "n_subjects": int(len(np.unique(np.asarray(groups).astype(str)))),
        "macro": {s: entry(point["macro"][s], *ci[f"macro_{s}"]) for s in MULTICLASS_SCORES},
        "accuracy": entry(point["accuracy"], *ci["accuracy"]),
        "per_class": {
            c: {
                **{s: entry(point["per_class"][c][s], per[s][0][j], per[s][1][j]) for s in MULTICLASS_SCORES},
                "support": point["per_class"][c]["support"],
            }
            for j, c in enumerate(labels)
        },
        "confusion": point["confusion"],
        "confusion_axes": "rows: true class, columns: predicted class, in the order of labels",
    }
