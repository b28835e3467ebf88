"""Inner cross-validation folds that the model stage and the audit both compute, the same way.

The outer folds are written by the partition (assignment.tsv, ``outer_fold``);
the inner folds are made on the fly, inside each outer fold's training part.
For the audit to check them, both sides call `inner_folds` on the same cases
with the same number of folds and seed.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..errors import CalcsigError

log = logging.getLogger(__name__)


class InnerFoldError(CalcsigError, ValueError):
    """The cases cannot be cross-validated (fewer than two groups in a class, or a single class)."""


def inner_folds(
    cases: pd.DataFrame, n_folds: int, seed: int, *, stratify: str = "label", group: str = "group_id"
) -> pd.Series:
    """Inner fold number (1..k) of every case: group-disjoint folds stratified on one column.

    Contract (the model stage and the audit rely on it):
    - cases: one row per case (ROI) of one outer fold's training part, that is
      the ROI rows of assignment.tsv with split train or dev and outer_fold
      other than the held-out fold (for the final model: every train and dev
      ROI). Columns `group` (default ``group_id`` from assignment.tsv) and
      `stratify` (default ``label``: 1 for actionable, 0 for benign; the
      multi-class model passes its fine-class column). Other columns are ignored.
    - n_folds: the configured number of inner folds (model.inner_folds); seed:
      the model seed (model.seed, which the workflow sets to the top-level seed).
    - k = min(n_folds, smallest number of distinct groups holding a class): each
      fold can then hold every class on its validation side. Fewer than n_folds
      is logged as a warning; k < 2, or a single class, raises InnerFoldError.
    - Folds are scikit-learn's StratifiedGroupKFold(n_splits=k, shuffle=True,
      random_state=seed), numbered 1..k in the order it yields them. Every row of
      a group is in the same fold. Which fold a row gets depends only on the
      (group, class) values of all rows, k and seed: not on the row order or the
      index, so callers that select the same cases get the same folds.
    Returns a Series named ``inner_fold`` aligned with cases.index (int 1..k).
    Use `fold_splits` for the (train positions, validation positions) pairs.
    """
    if group not in cases.columns or stratify not in cases.columns:
        raise InnerFoldError(
            f"inner_folds needs columns {group!r} and {stratify!r}; the cases have {', '.join(map(str, cases.columns))}"
        )
    classes = cases[stratify].astype(str).to_numpy()
    groups = cases[group].astype(str).to_numpy()
    per_class = {c: len(np.unique(groups[classes == c])) for c in np.unique(classes)}
    k = min([int(n_folds), *per_class.values()])
    if len(per_class) < 2 or k < 2:
        raise InnerFoldError(
            f"cannot make inner folds: groups per {stratify} value {per_class} (need two values with 2+ groups each)"
        )
    if k < n_folds:
        log.warning("inner CV uses %d folds instead of %d: too few groups in a class (%s)", k, n_folds, per_class)
    # imported here: the partition itself runs without scikit-learn (envs/corpus.yaml)
    from sklearn.model_selection import StratifiedGroupKFold

    folds = np.zeros(len(cases), dtype=int)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=int(seed))
    for number, (_, validation) in enumerate(splitter.split(np.zeros(len(cases)), classes, groups), start=1):
        folds[validation] = number
    return pd.Series(folds, index=cases.index, name="inner_fold")


def fold_splits(folds) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train positions, validation positions) per fold 1..k, as scikit-learn splitters yield them."""
    numbers = np.asarray(folds, dtype=int)
    return [(np.flatnonzero(numbers != k), np.flatnonzero(numbers == k)) for k in range(1, int(numbers.max()) + 1)]
