"""Aggregation of per-object features into one row per ROI, as scikit-learn transformers.

How the data flow, and why
--------------------------
X is a DataFrame with one row per ROI: the numeric global features
(``n_objects``, ``topo_*``, ``hc_*``, ``dist_*``) and a column ``objects``
whose cell in row i is the DataFrame of ROI i's objects (one row per object,
``fg_*``/``rp_*``/``bg_*`` columns; empty for a ROI without objects);
:func:`objects_by_roi` builds that column from the gathered objects table.
The per-object features are carried inside X because they *are* the input
the transformer turns into features (ragged: a variable number of rows per
ROI), not side information about the samples. So:

- estimator parameters are settings only: ``clone`` copies nothing large and
  needs no special-casing;
- whatever slices X (a Pipeline, ``GridSearchCV``, ``cross_validate``,
  their scorers, calcsig's nested CV) slices each ROI's objects with it, so a
  fit only ever sees the objects of the ROIs it is given: codebooks,
  scalers and medians are fitted on training ROIs only;
- no global configuration is needed: scikit-learn's metadata routing was
  the alternative (the object table routed beside a numeric X), and was
  dropped because scikit-learn's scorers do not route metadata to
  ``predict``/``transform``, so ``GridSearchCV`` could not score such a
  pipeline, and imbalanced-learn's Pipeline does not route it through
  ``fit_resample``;
- the estimators pass scikit-learn's ``check_estimator``: an X without an
  ``objects`` column (a plain numeric array) is a table of ROIs without
  objects, and its global features are validated and passed through.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

ROI_ID = "roi_id"
OBJECTS = "objects"  # the column of X holding each ROI's object DataFrame
LOCAL_FAMILIES = ("fg_", "rp_", "bg_")


def objects_by_roi(objects: pd.DataFrame, roi_ids, families=LOCAL_FAMILIES) -> np.ndarray:
    """The ``objects`` column of X: element i is the DataFrame of the objects of ``roi_ids[i]``.

    Only the columns of the local feature families (name prefixes in
    `families`) are kept, as floats (non-numeric cells become NaN). A ROI
    without objects gets an empty DataFrame with the same columns.
    """
    if ROI_ID not in objects.columns:
        raise ValueError(f"objects table has no {ROI_ID!r} column")
    columns = [c for c in objects.columns if c.startswith(tuple(families))]
    values = objects[columns].apply(pd.to_numeric, errors="coerce").astype(float)
    groups = {str(rid): frame.reset_index(drop=True) for rid, frame in values.groupby(objects[ROI_ID].astype(str))}
    empty = pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    out = np.empty(len(roi_ids), dtype=object)
    for i, rid in enumerate(roi_ids):
        out[i] = groups.get(str(rid), empty)
    return out


def _check_objects(objects) -> np.ndarray:
    """The ``objects`` column as an object array of DataFrames sharing their columns."""
    columns = None
    for frame in objects:
        if not isinstance(frame, pd.DataFrame):
            raise TypeError("each entry of objects must be a DataFrame of one ROI's objects (see objects_by_roi)")
        if columns is None:
            columns = list(frame.columns)
        elif list(frame.columns) != columns:
            raise ValueError("the object DataFrames of different ROIs have different columns")
    return np.asarray(objects, dtype=object)


def _stack(objects: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(object feature matrix, owner ROI position of each row, column names) of per-ROI object frames."""
    columns = list(objects[0].columns) if len(objects) else []
    sizes = np.array([len(f) for f in objects], dtype=int)
    owner = np.repeat(np.arange(len(objects)), sizes)
    if sizes.sum() == 0:
        return np.empty((0, len(columns))), owner, columns
    values = np.vstack([f.to_numpy(dtype=float) for f in objects if len(f)])
    return values, owner, columns


def _family_columns(columns: list[str], families) -> list[tuple[str, list[int]]]:
    """(prefix, column positions) of each family in `families` that has columns."""
    out = []
    for prefix in families:
        cols = [i for i, c in enumerate(columns) if c.startswith(prefix)]
        if cols:
            out.append((prefix, cols))
    return out


def _split_objects(X) -> tuple[object, np.ndarray | None]:
    """(X without its ``objects`` column, that column as an array) of a ROI table; (X, None) without one."""
    if isinstance(X, pd.DataFrame) and OBJECTS in X.columns:
        return X.drop(columns=OBJECTS), _check_objects(X[OBJECTS].to_numpy(dtype=object))
    return X, None


class _ObjectAggregator(TransformerMixin, BaseEstimator):
    """Shared plumbing: validation of the global features and of the ``objects`` column, feature names out."""

    def _validate(self, X, reset: bool):
        X, objects = _split_objects(X)
        X = validate_data(self, X, reset=reset, dtype=np.float64, ensure_all_finite="allow-nan")
        return X, objects

    def _check_objects_match_fit(self, objects) -> None:
        if self.object_columns_ is not None and objects is None:
            raise ValueError(
                f"{type(self).__name__} was fitted with per-object features: X to transform needs its "
                f"{OBJECTS!r} column too"
            )
        if self.object_columns_ is None and objects is not None:
            raise ValueError(f"{type(self).__name__} was fitted without an {OBJECTS!r} column; X to transform has one")
        if objects is not None and len(objects) and list(objects[0].columns) != self.object_columns_:
            raise ValueError("the objects in X to transform have different columns than in fit")

    def get_feature_names_out(self, input_features=None):
        """Aggregated object features first, then the global features of X (its ``objects`` column aside)."""
        check_is_fitted(self, "object_columns_")
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            names = np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)
        if input_features is not None:
            input_features = np.asarray(input_features, dtype=object)
            if len(input_features) != self.n_features_in_ or (
                getattr(self, "feature_names_in_", None) is not None and not np.array_equal(input_features, names)
            ):
                raise ValueError("input_features do not match the features seen in fit")
            names = input_features
        return np.asarray([*self.aggregated_names_, *names], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # global features may be missing; a later step imputes
        return tags


class BagOfObjects(_ObjectAggregator):
    """K-means bag of objects per local feature family, followed by the global features of X.

    For each family (column prefix in `families`), the objects of the
    training ROIs are median-imputed, standardised and clustered into
    `n_clusters` clusters; a ROI is represented by the fraction of its
    objects in each cluster (all zeros for a ROI without objects). The global
    features of X follow unchanged (NaN kept; a later step imputes).

    Parameters
    ----------
    n_clusters : int
        K, clusters per family (published optimum 15). Reduced to the number
        of distinct training objects when there are fewer.
    families : tuple of str
        Column prefixes of the local feature families.
    n_init : int
        k-means restarts.
    random_state : int
        Seed of k-means.

    X carries each ROI's objects in its ``objects`` column (see the module
    docstring); without that column every ROI has no objects and only the
    global features come out.
    """

    def __init__(self, n_clusters=15, families=LOCAL_FAMILIES, n_init=3, random_state=0):
        self.n_clusters = n_clusters
        self.families = families
        self.n_init = n_init
        self.random_state = random_state

    def fit(self, X, y=None):
        X, objects = self._validate(X, reset=True)
        self.codebooks_ = []
        self.aggregated_names_ = []
        self.object_columns_ = None
        self.n_objects_fit_ = 0
        if objects is None:
            return self
        values, _, columns = _stack(objects)
        self.object_columns_ = columns
        self.n_objects_fit_ = len(values)
        for prefix, cols in _family_columns(columns, self.families):
            family = values[:, cols]
            medians = _nan_safe_median(family)
            family = _impute(family, medians)
            scaler = StandardScaler().fit(family) if len(family) else None
            z = scaler.transform(family) if scaler is not None else family
            k = int(min(self.n_clusters, len(np.unique(z, axis=0)) if len(z) else 0))
            km = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state).fit(z) if k > 0 else None
            self.codebooks_.append((prefix, cols, medians, scaler, km))
            self.aggregated_names_ += [f"bag_{prefix}k{j}" for j in range(k)]
        return self

    def transform(self, X):
        check_is_fitted(self, "codebooks_")
        X, objects = self._validate(X, reset=False)
        self._check_objects_match_fit(objects)
        blocks = []
        if objects is not None:
            values, owner, _ = _stack(objects)
            counts = np.bincount(owner, minlength=len(X)).astype(float)
            for _, cols, medians, scaler, km in self.codebooks_:
                if km is None:
                    continue
                hist = np.zeros((len(X), km.n_clusters))
                if len(values):
                    z = scaler.transform(_impute(values[:, cols], medians))
                    np.add.at(hist, (owner, km.predict(z)), 1.0)
                with np.errstate(invalid="ignore", divide="ignore"):
                    hist = np.where(counts[:, None] > 0, hist / counts[:, None], 0.0)
                blocks.append(hist)
        blocks.append(X)
        return np.hstack(blocks)


class MeanStd(_ObjectAggregator):
    """Mean and standard deviation of each local feature per ROI, followed by the global features of X.

    A ROI without objects gets NaN (imputed by a later, fold-fitted step).
    Nothing is learnt from the objects; fit records which object columns
    there are so that transform can check them.

    Parameters
    ----------
    families : tuple of str
        Column prefixes of the local feature families.
    """

    def __init__(self, families=LOCAL_FAMILIES):
        self.families = families

    def fit(self, X, y=None):
        X, objects = self._validate(X, reset=True)
        self.object_columns_ = None
        self.columns_ = []
        self.aggregated_names_ = []
        self.n_objects_fit_ = 0
        if objects is None:
            return self
        values, _, columns = _stack(objects)
        self.object_columns_ = columns
        self.n_objects_fit_ = len(values)
        self.columns_ = [c for _, cols in _family_columns(columns, self.families) for c in cols]
        local = [columns[c] for c in self.columns_]
        self.aggregated_names_ = [f"mean_{c}" for c in local] + [f"std_{c}" for c in local]
        return self

    def transform(self, X):
        check_is_fitted(self, "columns_")
        X, objects = self._validate(X, reset=False)
        self._check_objects_match_fit(objects)
        if objects is None:
            return X.copy()
        values, owner, _ = _stack(objects)
        values = values[:, self.columns_]
        n = len(X)
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
        return np.hstack([mean, np.sqrt(var), X])


def _nan_safe_median(values: np.ndarray) -> np.ndarray:
    if values.size == 0:
        return np.zeros(values.shape[1])
    med = np.zeros(values.shape[1])
    finite_cols = np.isfinite(values).any(axis=0)
    if finite_cols.any():
        part = values[:, finite_cols]
        med[finite_cols] = np.nanmedian(np.where(np.isfinite(part), part, np.nan), axis=0)
    return med


def _impute(values: np.ndarray, medians: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(values), values, medians[None, :])
