"""Aggregation of per-object features into one row per ROI, as scikit-learn transformers.

The model's X is a DataFrame with one row per ROI: a ``roi_id`` column and the
ROI-level (global) feature columns (``n_objects``, ``topo_*``, ``hc_*``,
``dist_*``, ``qc_*``). The per-object features live in a separate table that
the transformer holds as a constructor parameter (an :class:`ObjectTable`);
``fit`` looks up the objects of the ROIs it is given, so whatever it fits
(imputation medians, scalers, k-means codebooks) only ever sees the objects
of the training ROIs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

ROI_ID = "roi_id"
LOCAL_FAMILIES = ("fg_", "rp_", "bg_")


class ObjectTable:
    """Read-only per-object feature table, indexed by ROI for fast look-up.

    It is shared, not copied, by ``sklearn.base.clone`` (``__deepcopy__``
    returns the same instance): a grid search clones the transformer for
    every candidate and the table never changes.
    """

    def __init__(self, objects: pd.DataFrame):
        if ROI_ID not in objects.columns:
            raise ValueError(f"objects table has no {ROI_ID!r} column")
        objects = objects.reset_index(drop=True)
        self.roi_ids = objects[ROI_ID].astype(str).to_numpy()
        self.columns = [c for c in objects.columns if c.startswith(LOCAL_FAMILIES)]
        self.values = objects[self.columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        order = np.argsort(self.roi_ids, kind="stable")
        sorted_ids = self.roi_ids[order]
        uniq, starts = np.unique(sorted_ids, return_index=True)
        ends = np.append(starts[1:], len(sorted_ids))
        self._rows = {rid: order[s:e] for rid, s, e in zip(uniq, starts, ends)}

    def __deepcopy__(self, memo):
        return self

    def __len__(self) -> int:
        return len(self.roi_ids)

    def family_columns(self, prefix: str) -> list[int]:
        return [i for i, c in enumerate(self.columns) if c.startswith(prefix)]

    def rows_of(self, roi_ids) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of the objects of `roi_ids`, and the position (in `roi_ids`) of each row's ROI."""
        rows, owner = [], []
        for pos, rid in enumerate(roi_ids):
            r = self._rows.get(str(rid))
            if r is not None and len(r):
                rows.append(r)
                owner.append(np.full(len(r), pos))
        if not rows:
            return np.empty(0, dtype=int), np.empty(0, dtype=int)
        return np.concatenate(rows), np.concatenate(owner)


def as_object_table(objects) -> ObjectTable:
    return objects if isinstance(objects, ObjectTable) else ObjectTable(objects)


def _split_roi_frame(X) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(roi ids, global feature matrix, global column names) of a ROI-level DataFrame."""
    if not isinstance(X, pd.DataFrame) or ROI_ID not in X.columns:
        raise TypeError(f"X must be a DataFrame with a {ROI_ID!r} column (one row per ROI)")
    names = [c for c in X.columns if c != ROI_ID]
    glob = X[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float) if names else np.empty((len(X), 0))
    return X[ROI_ID].astype(str).to_numpy(), glob, names


class _ObjectAggregator(TransformerMixin, BaseEstimator):
    """Shared plumbing: which local families, and the global columns seen in fit."""

    def _check_globals(self, names: list[str]) -> None:
        if names != self.global_columns_:
            raise ValueError("X has different global columns in transform than in fit")

    def _families_present(self, table: ObjectTable) -> list[tuple[str, list[int]]]:
        fams = []
        for prefix in self.families:
            cols = table.family_columns(prefix)
            if cols:
                fams.append((prefix, cols))
        return fams

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "feature_names_")
        return np.asarray(self.feature_names_, dtype=object)


class BagOfObjects(_ObjectAggregator):
    """K-means bag of objects per local feature family, plus the global features.

    For each family (column prefix in `families`), the objects of the
    training ROIs are median-imputed, standardised and clustered into
    `n_clusters` clusters; a ROI is represented by the fraction of its objects
    in each cluster (all zeros for a ROI without objects). The global columns
    of X are appended unchanged (NaN kept; a later step imputes).

    Parameters
    ----------
    objects : ObjectTable or DataFrame
        One row per object with ``roi_id`` and ``fg_*``/``rp_*``/``bg_*`` columns.
    n_clusters : int
        K, clusters per family (published optimum 15). Reduced to the number
        of distinct training objects when there are fewer.
    families : tuple of str
        Column prefixes of the local feature families.
    n_init : int
        k-means restarts.
    random_state : int
        Seed of k-means.
    """

    def __init__(self, objects=None, n_clusters=15, families=LOCAL_FAMILIES, n_init=3, random_state=0):
        self.objects = objects
        self.n_clusters = n_clusters
        self.families = families
        self.n_init = n_init
        self.random_state = random_state

    def fit(self, X, y=None):
        table = as_object_table(self.objects)
        roi_ids, _, names = _split_roi_frame(X)
        self.global_columns_ = names
        rows, _ = table.rows_of(roi_ids)
        self.fitted_roi_ids_ = np.unique(roi_ids)
        self.codebooks_ = []
        feature_names = []
        for prefix, cols in self._families_present(table):
            values = table.values[np.ix_(rows, cols)]
            medians = _nan_safe_median(values)
            values = _impute(values, medians)
            scaler = StandardScaler().fit(values)
            z = scaler.transform(values)
            n_distinct = len(np.unique(z, axis=0)) if len(z) else 0
            k = int(min(self.n_clusters, n_distinct))
            km = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state).fit(z) if k > 0 else None
            self.codebooks_.append((prefix, cols, medians, scaler, km))
            feature_names += [f"bag_{prefix}k{j}" for j in range(k)]
        self.feature_names_ = feature_names + names
        return self

    def transform(self, X):
        check_is_fitted(self, "codebooks_")
        table = as_object_table(self.objects)
        roi_ids, glob, names = _split_roi_frame(X)
        self._check_globals(names)
        rows, owner = table.rows_of(roi_ids)
        counts = np.bincount(owner, minlength=len(roi_ids)).astype(float)
        blocks = []
        for _, cols, medians, scaler, km in self.codebooks_:
            if km is None:
                continue
            hist = np.zeros((len(roi_ids), km.n_clusters))
            if len(rows):
                z = scaler.transform(_impute(table.values[np.ix_(rows, cols)], medians))
                np.add.at(hist, (owner, km.predict(z)), 1.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                hist = np.where(counts[:, None] > 0, hist / counts[:, None], 0.0)
            blocks.append(hist)
        blocks.append(glob)
        return np.hstack(blocks)


class MeanStd(_ObjectAggregator):
    """Mean and standard deviation of each local feature per ROI, plus the global features.

    A ROI without objects gets NaN (imputed by a later, fold-fitted step).
    Nothing is learnt from the objects, but fit still records the global
    columns so that transform can check them.
    """

    def __init__(self, objects=None, families=LOCAL_FAMILIES):
        self.objects = objects
        self.families = families

    def fit(self, X, y=None):
        table = as_object_table(self.objects)
        roi_ids, _, names = _split_roi_frame(X)
        self.global_columns_ = names
        self.fitted_roi_ids_ = np.unique(roi_ids)
        self.columns_ = [c for _, cols in self._families_present(table) for c in cols]
        local = [table.columns[c] for c in self.columns_]
        self.feature_names_ = [f"mean_{c}" for c in local] + [f"std_{c}" for c in local] + names
        return self

    def transform(self, X):
        check_is_fitted(self, "columns_")
        table = as_object_table(self.objects)
        roi_ids, glob, names = _split_roi_frame(X)
        self._check_globals(names)
        rows, owner = table.rows_of(roi_ids)
        values = table.values[np.ix_(rows, self.columns_)]
        n = len(roi_ids)
        finite = np.isfinite(values)
        v0 = np.where(finite, values, 0.0)
        cnt = np.zeros((n, len(self.columns_)))
        s1 = np.zeros_like(cnt)
        s2 = np.zeros_like(cnt)
        np.add.at(cnt, owner, finite.astype(float))
        np.add.at(s1, owner, v0)
        np.add.at(s2, owner, v0 * v0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s1 / cnt
            var = np.maximum(s2 / cnt - mean * mean, 0.0)
        return np.hstack([mean, np.sqrt(var), glob])


def _nan_safe_median(values: np.ndarray) -> np.ndarray:
    if values.size == 0:
        return np.zeros(values.shape[1])
    with np.errstate(all="ignore"):
        finite_cols = np.isfinite(values).any(axis=0)
        med = np.zeros(values.shape[1])
        if finite_cols.any():
            med[finite_cols] = np.nanmedian(
                np.where(np.isfinite(values[:, finite_cols]), values[:, finite_cols], np.nan), axis=0
            )
    return med


def _impute(values: np.ndarray, medians: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(values), values, medians[None, :])
