"""Nested cross-validation: inner grouped grid search with a sensitivity-targeted threshold.

The outer folds come from the partition (``assignment.tsv``); this module
handles one outer training set at a time. Within it, 5 subject-grouped
stratified folds give out-of-fold probabilities for every grid candidate;
each candidate's decision threshold is the highest one whose out-of-fold
sensitivity reaches the target, and the candidate with the best
specificity there (then the best AUC, then the earliest in the grid) wins.
The winner is refitted on the whole outer training set and applied to the
held-out cases with that threshold. Nothing here ever sees the held-out
cases before the refit is finished.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid, StratifiedGroupKFold

from .metrics import roc_auc

log = logging.getLogger(__name__)


def inner_splits(y, groups, n_splits: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Subject-grouped stratified folds; fewer than `n_splits` when a class has too few subjects.

    Each fold needs at least one subject of each class on the validation
    side, so the number of folds is capped by the number of subjects
    carrying each label.
    """
    y = np.asarray(y).astype(int)
    groups = np.asarray(groups)
    per_class = [len(np.unique(groups[y == c])) for c in (0, 1)]
    k = min(n_splits, *per_class)
    if k < 2:
        raise ValueError(
            f"cannot cross-validate: {per_class[1]} subject(s) with actionable and {per_class[0]} with benign ROIs "
            "in this training set (need at least 2 of each)"
        )
    if k < n_splits:
        log.warning("inner CV uses %d folds instead of %d: too few subjects in a class (%s)", k, n_splits, per_class)
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(tr, va) for tr, va in cv.split(np.zeros(len(y)), y, groups)]


def choose_threshold(y, probability, target_sensitivity: float = 1.0) -> dict:
    """The highest threshold t (call positive when probability >= t) whose sensitivity reaches the target.

    Sensitivity only falls as t rises and specificity only rises, so the
    highest such t has the best specificity among those reaching the target.
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


def threshold_from_oof(oof: pd.DataFrame, target_sensitivity: float) -> dict:
    """Threshold chosen on out-of-fold predictions (`roi_id`, `label`, `probability`) of a training set.

    Kept as a separate, named step so that tests can check which ROIs the
    threshold is chosen on.
    """
    return choose_threshold(oof["label"].to_numpy(), oof["probability"].to_numpy(), target_sensitivity)


def _has_resampler_last(pipe) -> bool:
    return hasattr(pipe.steps[-1][1], "fit_resample")


def _fit_front(front, X, y):
    """Fit the steps before the classifier; return the training matrix and labels the classifier gets."""
    if _has_resampler_last(front):
        return front.fit_resample(X, y)
    return front.fit_transform(X, y), np.asarray(y)


def _transform_front(front, X):
    """Apply the fitted steps before the classifier to cases being predicted (resampler skipped)."""
    steps = front[:-1] if _has_resampler_last(front) else front
    return steps.transform(X) if len(steps.steps) else X


def _resampler_log(front) -> list[str]:
    step = front.steps[-1][1]
    return list(getattr(step, "log_", []))


def _predict_positive(clf, X) -> np.ndarray:
    proba = clf.predict_proba(X)
    classes = list(clf.classes_)
    if 1 not in classes:
        return np.zeros(len(X))
    return proba[:, classes.index(1)]


@dataclass
class SearchResult:
    best_params: dict
    threshold: float
    inner_sensitivity: float
    inner_specificity: float
    inner_auc: float
    candidates: list[dict] = field(default_factory=list)
    resampler_log: list[str] = field(default_factory=list)
    n_inner_folds: int = 0

    def as_dict(self) -> dict:
        return {
            "best_params": self.best_params,
            "threshold": self.threshold,
            "inner_sensitivity": self.inner_sensitivity,
            "inner_specificity": self.inner_specificity,
            "inner_auc": self.inner_auc,
            "n_inner_folds": self.n_inner_folds,
            "candidates": self.candidates,
            "resampler_log": self.resampler_log,
        }


def _split_params(params: dict) -> tuple[dict, dict]:
    front = {k: v for k, v in params.items() if not k.startswith("classifier__")}
    clf = {k[len("classifier__") :]: v for k, v in params.items() if k.startswith("classifier__")}
    return front, clf


def inner_search(
    estimator,
    X: pd.DataFrame,
    y,
    groups,
    grid: dict | list,
    *,
    inner_folds: int = 5,
    target_sensitivity: float = 1.0,
    seed: int = 0,
) -> SearchResult:
    """Grid search over pipeline parameters and the decision threshold by inner grouped CV.

    `estimator` is a Pipeline whose last step is named ``classifier``; grid
    keys are its ``step__param`` names. Candidates sharing the parameters of
    the steps before the classifier share their fitted front (aggregation,
    imputation, resampling) within an inner fold: the same fit a pipeline
    would do, done once.
    """
    X = X.reset_index(drop=True)
    y = np.asarray(y).astype(int)
    groups = np.asarray(groups)
    roi_ids = X["roi_id"].astype(str).to_numpy()
    candidates = list(ParameterGrid(grid)) if grid else [{}]
    splits = inner_splits(y, groups, inner_folds, seed)
    oof = np.full((len(candidates), len(y)), np.nan)
    resampler_log: list[str] = []
    fronts: dict[str, list[int]] = {}
    for i, cand in enumerate(candidates):
        fronts.setdefault(repr(sorted(_split_params(cand)[0].items())), []).append(i)
    for fold_no, (tr, va) in enumerate(splits, start=1):
        for members in fronts.values():
            front_params, _ = _split_params(candidates[members[0]])
            pipe = clone(estimator).set_params(**front_params)
            front = pipe[:-1]
            Xt, yt = _fit_front(front, X.iloc[tr], y[tr])
            resampler_log += [f"inner fold {fold_no}: {m}" for m in _resampler_log(front)]
            Xv = _transform_front(front, X.iloc[va])
            if len(np.unique(yt)) < 2:
                raise ValueError(f"inner fold {fold_no}: the classifier's training data has one class only")
            for i in members:
                clf = clone(pipe[-1]).set_params(**_split_params(candidates[i])[1])
                clf.fit(Xt, yt)
                oof[i, va] = _predict_positive(clf, Xv)
    rows = []
    for i, cand in enumerate(candidates):
        frame = pd.DataFrame({"roi_id": roi_ids, "label": y, "probability": oof[i]})
        thr = threshold_from_oof(frame, target_sensitivity)
        rows.append({"params": _plain(cand), **thr, "auc": roc_auc(y, oof[i])})
    order = sorted(
        range(len(rows)),
        key=lambda i: (-_nan_low(rows[i]["specificity"]), -_nan_low(rows[i]["auc"]), i),
    )
    best = rows[order[0]]
    return SearchResult(
        best_params=candidates[order[0]],
        threshold=best["threshold"],
        inner_sensitivity=best["sensitivity"],
        inner_specificity=best["specificity"],
        inner_auc=best["auc"],
        candidates=rows,
        resampler_log=resampler_log,
        n_inner_folds=len(splits),
    )


def _nan_low(v: float) -> float:
    return -np.inf if v is None or not np.isfinite(v) else v


def _plain(params: dict) -> dict:
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in params.items()}


@dataclass
class FoldResult:
    probability: np.ndarray
    predicted: np.ndarray
    search: SearchResult
    refit_resampler_log: list[str]

    def record(self) -> dict:
        return {
            **self.search.as_dict(),
            "best_params": _plain(self.search.best_params),
            "refit_resampler_log": self.refit_resampler_log,
        }


def fit_predict_fold(
    estimator,
    X_train: pd.DataFrame,
    y_train,
    groups_train,
    X_test: pd.DataFrame,
    grid,
    *,
    inner_folds: int = 5,
    target_sensitivity: float = 1.0,
    seed: int = 0,
) -> FoldResult:
    """Inner search on the training part, refit of the winner on all of it, one prediction of the test part."""
    overlap = set(X_train["roi_id"].astype(str)) & set(X_test["roi_id"].astype(str))
    if overlap:
        raise ValueError(f"{len(overlap)} ROI(s) on both sides of the fold, e.g. {sorted(overlap)[:3]}")
    search = inner_search(
        estimator,
        X_train,
        y_train,
        groups_train,
        grid,
        inner_folds=inner_folds,
        target_sensitivity=target_sensitivity,
        seed=seed,
    )
    model = clone(estimator).set_params(**search.best_params)
    model.fit(X_train.reset_index(drop=True), np.asarray(y_train).astype(int))
    refit_log = _resampler_log(model[:-1]) if len(model.steps) > 1 else []
    probability = _predict_positive(model, X_test.reset_index(drop=True))
    predicted = (probability >= search.threshold).astype(int)
    return FoldResult(probability, predicted, search, refit_log)
