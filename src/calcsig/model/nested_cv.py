"""Nested cross-validation: inner grouped grid search with sensitivity-targeted operating points.

The outer folds come from the partition (``assignment.tsv``); this module
handles one outer training set at a time. Within it, grouped stratified
folds (groups: the partition's ``group_id``, else the subject) give
out-of-fold probabilities for every grid candidate; each candidate gets the
two operating points of :mod:`calcsig.model.thresholds` on its out-of-fold
predictions, and the candidate with the best specificity at the exact
target (then the best AUC, then the earliest in the grid) wins. The winner
is refitted on the whole outer training set and applied to the held-out
cases with both thresholds. Nothing here ever sees the held-out cases before
the refit is finished.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid, StratifiedGroupKFold

from .fitting import (
    CaseSet,
    fit_front,
    plain_params,
    positive_probability,
    resampler_log,
    split_params,
    transform_front,
)
from .metrics import roc_auc
from .thresholds import choose_operating_points

log = logging.getLogger(__name__)


def inner_splits(y, groups, n_splits: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Group-respecting stratified folds; fewer than `n_splits` when a class has too few groups.

    Each fold needs at least one group of each class on the validation
    side, so the number of folds is capped by the number of groups carrying
    each label.
    """
    y = np.asarray(y).astype(int)
    groups = np.asarray(groups)
    per_class = [len(np.unique(groups[y == c])) for c in (0, 1)]
    k = min(n_splits, *per_class)
    if k < 2:
        raise ValueError(
            f"cannot cross-validate: {per_class[1]} subject group(s) with actionable and {per_class[0]} with "
            "benign ROIs in this training set (need at least 2 of each)"
        )
    if k < n_splits:
        log.warning("inner CV uses %d folds instead of %d: too few subjects in a class (%s)", k, n_splits, per_class)
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(tr, va) for tr, va in cv.split(np.zeros(len(y)), y, groups)]


def threshold_from_oof(oof: pd.DataFrame, target_sensitivity: float, margin_sensitivity: float) -> dict:
    """Both operating points chosen on out-of-fold predictions (`roi_id`, `label`, `probability`) of a training set.

    Kept as a separate, named step so that tests can check which ROIs the
    thresholds are chosen on.
    """
    return choose_operating_points(
        oof["label"].to_numpy(), oof["probability"].to_numpy(), target_sensitivity, margin_sensitivity
    )


@dataclass
class SearchResult:
    best_params: dict
    operating_points: dict  # {"target"|"margin": {threshold, sensitivity, specificity}} on inner out-of-fold
    inner_auc: float
    candidates: list[dict] = field(default_factory=list)
    resampler_log: list[str] = field(default_factory=list)
    n_inner_folds: int = 0

    @property
    def threshold(self) -> float:
        return self.operating_points["target"]["threshold"]

    def as_dict(self) -> dict:
        target = self.operating_points["target"]
        return {
            "best_params": plain_params(self.best_params),
            "threshold": target["threshold"],
            "inner_sensitivity": target["sensitivity"],
            "inner_specificity": target["specificity"],
            "operating_points": self.operating_points,
            "inner_auc": self.inner_auc,
            "n_inner_folds": self.n_inner_folds,
            "candidates": self.candidates,
            "resampler_log": self.resampler_log,
        }


def _front_groups(candidates: list[dict]) -> list[list[int]]:
    """Candidates that share their front parameters, as lists of candidate positions."""
    fronts: dict[str, list[int]] = {}
    for i, cand in enumerate(candidates):
        fronts.setdefault(repr(sorted(split_params(cand)[0].items())), []).append(i)
    return list(fronts.values())


def inner_search(
    estimator,
    cases: CaseSet,
    grid: dict | list,
    *,
    inner_folds: int = 5,
    target_sensitivity: float = 1.0,
    margin_sensitivity: float = 0.95,
    seed: int = 0,
) -> SearchResult:
    """Grid search over pipeline parameters and the operating points by inner grouped CV.

    `estimator` is a Pipeline whose last step is named ``classifier``; grid
    keys are its ``step__param`` names. Candidates sharing the parameters of
    the steps before the classifier share their fitted front (aggregation,
    imputation, resampling) within an inner fold: the same fit a pipeline
    would do, done once.
    """
    y = np.asarray(cases.y).astype(int)
    candidates = list(ParameterGrid(grid)) if grid else [{}]
    splits = inner_splits(y, cases.groups, inner_folds, seed)
    oof = np.full((len(candidates), len(y)), np.nan)
    notes: list[str] = []
    for fold_no, (tr, va) in enumerate(splits, start=1):
        for members in _front_groups(candidates):
            pipe = clone(estimator).set_params(**split_params(candidates[members[0]])[0])
            Xt, yt = fit_front(pipe, cases.take(tr))
            notes += [f"inner fold {fold_no}: {m}" for m in resampler_log(pipe)]
            if len(np.unique(yt)) < 2:
                raise ValueError(f"inner fold {fold_no}: the classifier's training data has one class only")
            Xv = transform_front(pipe, cases.take(va))
            for i in members:
                clf = clone(pipe[-1]).set_params(**split_params(candidates[i])[1])
                clf.fit(Xt, yt)
                oof[i, va] = positive_probability(clf, Xv)
    rows = []
    for i, cand in enumerate(candidates):
        frame = pd.DataFrame({"roi_id": cases.ids, "label": y, "probability": oof[i]})
        points = threshold_from_oof(frame, target_sensitivity, margin_sensitivity)
        rows.append({"params": plain_params(cand), **points["target"], "margin": points["margin"]})
        rows[-1]["auc"] = roc_auc(y, oof[i])
    order = sorted(range(len(rows)), key=lambda i: (-_nan_low(rows[i]["specificity"]), -_nan_low(rows[i]["auc"]), i))
    best = rows[order[0]]
    return SearchResult(
        best_params=candidates[order[0]],
        operating_points={
            "target": {k: best[k] for k in ("threshold", "sensitivity", "specificity")},
            "margin": best["margin"],
        },
        inner_auc=best["auc"],
        candidates=rows,
        resampler_log=notes,
        n_inner_folds=len(splits),
    )


def _nan_low(v: float) -> float:
    return -np.inf if v is None or not np.isfinite(v) else v


@dataclass
class FoldResult:
    """Held-out probabilities and both operating points' calls of one fold."""

    probability: np.ndarray
    predicted: np.ndarray
    predicted_margin: np.ndarray
    search: SearchResult
    refit_resampler_log: list[str]
    feature_importance: dict | None = None

    def record(self) -> dict:
        record = {**self.search.as_dict(), "refit_resampler_log": self.refit_resampler_log}
        if self.feature_importance is not None:
            record["feature_importance"] = self.feature_importance
        return record


def feature_importance(model) -> dict | None:
    """Total split gain of each feature in a fitted pipeline's LightGBM classifier, largest first.

    The names are those the classifier saw (the aggregation step's output); None
    for a model without a LightGBM classifier or whose names cannot be matched.
    """
    steps = getattr(model, "named_steps", {})
    booster = getattr(steps.get("classifier"), "booster_", None)
    if booster is None or "aggregate" not in steps:
        return None
    gains = booster.feature_importance(importance_type="gain")
    names = steps["aggregate"].get_feature_names_out()
    if len(names) != len(gains):
        return None
    order = sorted(range(len(gains)), key=lambda i: (-gains[i], str(names[i])))
    return {"kind": "gain", "values": {str(names[i]): round(float(gains[i]), 6) for i in order}}


def fit_predict_fold(
    estimator,
    train: CaseSet,
    test: CaseSet,
    grid,
    *,
    inner_folds: int = 5,
    target_sensitivity: float = 1.0,
    margin_sensitivity: float = 0.95,
    seed: int = 0,
) -> FoldResult:
    """Inner search on the training cases, refit of the winner on all of them, one prediction of the test cases."""
    overlap = set(map(str, train.ids)) & set(map(str, test.ids))
    if overlap:
        raise ValueError(f"{len(overlap)} ROI(s) on both sides of the fold, e.g. {sorted(overlap)[:3]}")
    search = inner_search(
        estimator,
        train,
        grid,
        inner_folds=inner_folds,
        target_sensitivity=target_sensitivity,
        margin_sensitivity=margin_sensitivity,
        seed=seed,
    )
    model = clone(estimator).set_params(**search.best_params).fit(train.X, np.asarray(train.y).astype(int))
    probability = positive_probability(model, test.X)
    points = search.operating_points
    return FoldResult(
        probability=probability,
        predicted=(probability >= points["target"]["threshold"]).astype(int),
        predicted_margin=(probability >= points["margin"]["threshold"]).astype(int),
        search=search,
        refit_resampler_log=resampler_log(model),
        feature_importance=feature_importance(model),
    )
