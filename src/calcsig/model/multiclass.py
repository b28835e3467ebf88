"""Nested cross-validation of a multi-class model over the ROI's fine class.

The same shape as :mod:`.nested_cv`, for fine classes (e.g. benign /
high_risk / dcis / invasive) instead of the binary label: within one outer
training set, subject-grouped folds stratified on the fine class give
out-of-fold class probabilities for every grid candidate; the candidate with
the best macro-F1 of its out-of-fold argmax predictions wins (then the lower
log-loss, then the earliest in the grid). There is no threshold step: the
prediction is the most probable class. The winner is refitted on the whole
outer training set and predicts the held-out cases once.

Fine classes with fewer than `min_class_subjects` subjects in the training
set cannot be cross-validated and are left out of the fit (recorded); with
fewer than two classes left, the fold is skipped with a reason instead of
failing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import f1_score, log_loss
from sklearn.model_selection import ParameterGrid, StratifiedGroupKFold

from .fitting import (
    CaseSet,
    fit_front,
    plain_params,
    split_params,
    transform_front,
)

log = logging.getLogger(__name__)

MIN_CLASS_SUBJECTS = 2


class TooFewClasses(ValueError):
    """The training set has fewer than two fine classes that can be cross-validated."""


def fine_class_splits(classes, groups, n_splits: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Subject-grouped folds stratified on the fine class; fewer folds when a class has few subjects.

    The number of folds is capped by the smallest number of subjects carrying
    a class, so that every class can land on the validation side of a fold.
    """
    classes = np.asarray(classes).astype(str)
    groups = np.asarray(groups)
    per_class = {str(c): len(np.unique(groups[classes == c])) for c in np.unique(classes)}
    k = min(n_splits, *per_class.values())
    if len(per_class) < 2 or k < 2:
        raise TooFewClasses(f"cannot cross-validate fine classes with subjects per class {per_class}")
    if k < n_splits:
        log.warning(
            "fine-class inner CV uses %d folds instead of %d: too few subjects in a class (%s)", k, n_splits, per_class
        )
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(cv.split(np.zeros(len(classes)), classes, groups))


def trainable_classes(classes, groups, min_class_subjects: int = MIN_CLASS_SUBJECTS) -> tuple[list[str], dict]:
    """(classes with at least `min_class_subjects` subjects, {left-out class: subjects}); missing classes ignored."""
    classes = pd.Series(np.asarray(classes, dtype=object))
    known = classes.notna() & (classes.astype(str) != "")
    per_class = pd.Series(np.asarray(groups)[known.to_numpy()]).groupby(classes[known].astype(str).to_numpy()).nunique()
    keep = sorted(c for c, n in per_class.items() if n >= min_class_subjects)
    return keep, {c: int(n) for c, n in per_class.items() if n < min_class_subjects}


def binary_of_classes(classes, labels) -> dict[str, int]:
    """Fine class -> binary label (0 benign, 1 actionable): the majority label of the class's training ROIs.

    Ties go to actionable, the cautious side. A class whose ROIs carry both
    labels is logged.
    """
    df = pd.DataFrame({"c": np.asarray(classes).astype(str), "y": np.asarray(labels).astype(int)})
    out = {}
    for c, g in df.groupby("c", sort=True):
        frac = g["y"].mean()
        if 0 < frac < 1:
            log.warning("fine class %r has both binary labels (%.0f%% actionable)", c, 100 * frac)
        out[c] = int(frac >= 0.5)
    return out


def _macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(f1_score(truth, predicted, average="macro", zero_division=0))


@dataclass
class MulticlassSearch:
    best_params: dict
    classes: list[str]
    inner_macro_f1: float
    inner_log_loss: float
    candidates: list[dict] = field(default_factory=list)
    n_inner_folds: int = 0

    def as_dict(self) -> dict:
        return {
            "best_params": plain_params(self.best_params),
            "classes": self.classes,
            "selection": "macro_f1",
            "inner_macro_f1": self.inner_macro_f1,
            "inner_log_loss": self.inner_log_loss,
            "n_inner_folds": self.n_inner_folds,
            "candidates": self.candidates,
        }


def _in_order(proba: np.ndarray, seen, classes: list[str]) -> np.ndarray:
    """Class probabilities (columns in the order `seen`) rearranged to `classes` (0 for a class never seen)."""
    out = np.zeros((proba.shape[0], len(classes)))
    for j, c in enumerate(seen):
        out[:, classes.index(str(c))] = proba[:, j]
    return out


def inner_search_multiclass(
    estimator, cases: CaseSet, grid, *, inner_folds: int = 5, seed: int = 0
) -> MulticlassSearch:
    """Grid search by inner grouped CV stratified on the fine class (``cases.y``), scored by out-of-fold macro-F1.

    `estimator` is a Pipeline whose last step is named ``classifier``;
    candidates sharing the steps before it share their fitted front within an
    inner fold, as in :func:`calcsig.model.nested_cv.inner_search`.
    """
    classes = np.asarray(cases.y).astype(str)
    cases = cases.with_labels(classes)
    labels = sorted(set(classes))
    truth = np.array([labels.index(c) for c in classes])
    candidates = list(ParameterGrid(grid)) if grid else [{}]
    splits = fine_class_splits(classes, cases.groups, inner_folds, seed)
    oof = np.full((len(candidates), len(classes), len(labels)), np.nan)
    fronts: dict[str, list[int]] = {}
    for i, cand in enumerate(candidates):
        fronts.setdefault(repr(sorted(split_params(cand)[0].items())), []).append(i)
    for tr, va in splits:
        for members in fronts.values():
            pipe = clone(estimator).set_params(**split_params(candidates[members[0]])[0])
            Xt, yt = fit_front(pipe, cases.take(tr))
            Xv = transform_front(pipe, cases.take(va))
            for i in members:
                clf = clone(pipe[-1]).set_params(**split_params(candidates[i])[1])
                clf.fit(Xt, yt)
                oof[i][va] = _in_order(clf.predict_proba(Xv), clf.classes_, labels)
    rows = []
    for i, cand in enumerate(candidates):
        p = np.clip(oof[i], 1e-15, 1.0)
        rows.append(
            {
                "params": plain_params(cand),
                "macro_f1": _macro_f1(truth, oof[i].argmax(axis=1)),
                "log_loss": float(log_loss(truth, p / p.sum(axis=1, keepdims=True), labels=range(len(labels)))),
            }
        )
    best = min(range(len(rows)), key=lambda i: (-rows[i]["macro_f1"], rows[i]["log_loss"], i))
    return MulticlassSearch(
        best_params=candidates[best],
        classes=labels,
        inner_macro_f1=rows[best]["macro_f1"],
        inner_log_loss=rows[best]["log_loss"],
        candidates=rows,
        n_inner_folds=len(splits),
    )


@dataclass
class MulticlassFold:
    """Held-out predictions of one fold: class probabilities (rows sum to 1) in the order of `classes`."""

    classes: list[str]
    class_probability: np.ndarray
    predicted_class: np.ndarray
    probability: np.ndarray
    predicted: np.ndarray
    record: dict


def fit_predict_fold_multiclass(
    estimator,
    train: CaseSet,
    classes_train,
    test: CaseSet,
    grid,
    *,
    inner_folds: int = 5,
    seed: int = 0,
    min_class_subjects: int = MIN_CLASS_SUBJECTS,
) -> MulticlassFold:
    """Inner search and refit on the training cases (target: `classes_train`), one prediction of the test cases.

    ``train.y`` is the binary label. Besides the fine class, the binary view
    every model reports: probability of actionable = the summed probability
    of the classes whose training ROIs are mostly actionable, predicted = 1
    when the most probable class is one of them. Raises
    :class:`TooFewClasses` when fewer than two fine classes have
    `min_class_subjects` subject groups in the training set.
    """
    overlap = set(map(str, train.ids)) & set(map(str, test.ids))
    if overlap:
        raise ValueError(f"{len(overlap)} ROI(s) on both sides of the fold, e.g. {sorted(overlap)[:3]}")
    classes_train = pd.Series(np.asarray(classes_train, dtype=object))
    keep, left_out = trainable_classes(classes_train, train.groups, min_class_subjects)
    if len(keep) < 2:
        raise TooFewClasses(
            f"{len(keep)} fine class(es) with at least {min_class_subjects} subjects in the training set "
            f"({keep}; too few: {left_out}); a multi-class model needs 2"
        )
    use = classes_train.astype(str).isin(keep).to_numpy() & classes_train.notna().to_numpy()
    if left_out:
        log.warning("fine classes left out of the fit (subjects below %d): %s", min_class_subjects, left_out)
    rows = np.flatnonzero(use)
    cf = classes_train[use].astype(str).to_numpy()
    fit_cases = train.take(rows).with_labels(cf)
    to_binary = binary_of_classes(cf, np.asarray(train.y)[rows])
    search = inner_search_multiclass(estimator, fit_cases, grid, inner_folds=inner_folds, seed=seed)
    model = clone(estimator).set_params(**search.best_params).fit(fit_cases.X, fit_cases.y)
    labels = search.classes
    proba = _in_order(model.predict_proba(test.X), model.classes_, labels)
    predicted_class = np.asarray(labels, dtype=object)[proba.argmax(axis=1)]
    actionable = np.array([to_binary[c] for c in labels], dtype=bool)
    record = {
        **search.as_dict(),
        "binary_of_class": to_binary,
        "classes_left_out": left_out,
        "n_train_fit": int(use.sum()),
        "n_train_left_out": int((~use).sum()),
    }
    return MulticlassFold(
        classes=labels,
        class_probability=proba,
        predicted_class=predicted_class,
        probability=np.clip(proba[:, actionable].sum(axis=1), 0.0, 1.0),
        predicted=actionable[proba.argmax(axis=1)].astype(int),
        record=record,
    )
