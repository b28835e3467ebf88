"""The classifier pipeline: aggregation -> imputation -> SMOTE-ENN -> classifier.

An imbalanced-learn Pipeline, so the resampler runs on the training part of
whatever fit it is inside and never on data being predicted.
"""

from __future__ import annotations

import logging

import numpy as np
from imblearn.combine import SMOTEENN
from imblearn.ensemble import BalancedRandomForestClassifier
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from imblearn.under_sampling import EditedNearestNeighbours
from lightgbm import LGBMClassifier
from sklearn.base import BaseEstimator
from sklearn.impute import SimpleImputer

from .aggregation import BagOfObjects, MeanStd

log = logging.getLogger(__name__)

AGGREGATIONS = {"bag_of_objects": BagOfObjects, "mean_std": MeanStd}


class AdaptiveSMOTEENN(BaseEstimator):
    """SMOTE-ENN whose neighbour counts shrink to fit a tiny class, or that steps aside.

    SMOTE needs at least ``k_neighbors + 1`` minority samples; with fewer, k
    is reduced to ``n_minority - 1``. With a single class or a minority of one
    sample nothing can be synthesised and the data pass through unchanged. If
    the edited nearest-neighbours cleaning would leave a class with fewer than
    two samples, the SMOTE output is used without cleaning. Each decision is
    logged and kept in ``log_`` (a list of strings) for the run record.

    Parameters
    ----------
    k_neighbors : int
        SMOTE neighbours (imbalanced-learn default 5).
    enn_n_neighbors : int
        Edited-nearest-neighbours neighbours (default 3).
    random_state : int
    """

    def __init__(self, k_neighbors=5, enn_n_neighbors=3, random_state=0):
        self.k_neighbors = k_neighbors
        self.enn_n_neighbors = enn_n_neighbors
        self.random_state = random_state

    def fit(self, X, y):
        self.fit_resample(X, y)
        return self

    def _note(self, message: str) -> None:
        log.info("SMOTE-ENN: %s", message)
        self.log_.append(message)

    def fit_resample(self, X, y):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y)
        self.log_ = []
        self.applied_ = "none"
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            self._note(f"skipped: only one class in the training data ({len(y)} samples)")
            return X, y
        n_min = int(counts.min())
        if n_min < 2:
            self._note(f"skipped: minority class has {n_min} sample, SMOTE needs at least 2")
            return X, y
        if not np.isfinite(X).all():
            self._note("skipped: non-finite values reach the resampler (impute before it)")
            return X, y
        k = min(self.k_neighbors, n_min - 1)
        if k < self.k_neighbors:
            self._note(f"k_neighbors reduced from {self.k_neighbors} to {k}: minority class has {n_min} samples")
        smote = SMOTE(k_neighbors=k, random_state=self.random_state)
        n_enn = max(1, min(self.enn_n_neighbors, len(y) - 1))
        enn = EditedNearestNeighbours(n_neighbors=n_enn)
        combined = SMOTEENN(smote=smote, enn=enn, random_state=self.random_state)
        Xr, yr = combined.fit_resample(X, y)
        _, after = np.unique(yr, return_counts=True)
        if len(after) < len(classes) or after.min() < 2:
            self._note("ENN cleaning would empty a class: SMOTE output used without cleaning")
            Xr, yr = SMOTE(k_neighbors=k, random_state=self.random_state).fit_resample(X, y)
            self.applied_ = "smote"
        else:
            self.applied_ = "smote_enn"
        return Xr, yr


def make_lightgbm(seed: int = 0, n_jobs: int = 1, **params) -> LGBMClassifier:
    """LightGBM with the settings that make it reproducible and quiet."""
    base = dict(random_state=seed, n_jobs=n_jobs, verbose=-1, deterministic=True, force_col_wise=True)
    base.update(params)
    return LGBMClassifier(**base)


def build_pipeline(
    objects,
    aggregation: str = "bag_of_objects",
    *,
    n_clusters: int = 15,
    families=("fg_", "rp_", "bg_"),
    seed: int = 0,
    n_jobs: int = 1,
    smote_k_neighbors: int = 5,
    enn_n_neighbors: int = 3,
    resample: bool = True,
    lightgbm_params: dict | None = None,
) -> Pipeline:
    """aggregate -> impute -> resample -> classifier, with step names used in grids.

    Grid keys are ``aggregate__<param>`` (e.g. ``aggregate__n_clusters``) and
    ``classifier__<param>`` (LightGBM). `objects` is an ObjectTable (or the
    objects DataFrame).
    """
    if aggregation == "bag_of_objects":
        agg = BagOfObjects(objects=objects, n_clusters=n_clusters, families=tuple(families), random_state=seed)
    elif aggregation == "mean_std":
        agg = MeanStd(objects=objects, families=tuple(families))
    else:
        raise ValueError(f"unknown aggregation {aggregation!r}; expected one of {sorted(AGGREGATIONS)}")
    steps = [
        ("aggregate", agg),
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
    ]
    if resample:
        steps.append(("resample", AdaptiveSMOTEENN(smote_k_neighbors, enn_n_neighbors, random_state=seed)))
    steps.append(("classifier", make_lightgbm(seed, n_jobs, **(lightgbm_params or {}))))
    return Pipeline(steps)


def build_mask_forest(seed: int = 0, n_jobs: int = 1, n_estimators: int = 100) -> BalancedRandomForestClassifier:
    """The enrichment paper's baseline: imbalanced-learn's balanced random forest, its defaults otherwise."""
    return BalancedRandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=n_jobs)
