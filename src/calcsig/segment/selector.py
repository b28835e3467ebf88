"""Trainable false-positive reduction for HDoG candidates.

Stands in for HDoGReg's CNN regression model, which cannot be shipped: a
gradient-boosted tree classifier over the per-candidate features of
`calcsig.segment.candidates`. Trained on candidates matched to pixel-level
truth (positives = candidates matching a truth object under the evaluation's
matching rule), or with weak labels from cluster circles: candidates inside an
annotated calcification circle are (noisy) positives, candidates on normal
films negatives, and candidates on abnormal films outside every circle are
left out (their status is unknown).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils.validation import check_is_fitted

from calcsig.segment.candidates import FEATURE_NAMES, detect_candidates
from calcsig.segment.evaluate import candidate_pairs


class CandidateSelector(ClassifierMixin, BaseEstimator):
    """Scores HDoG candidates as calcification (1) or false positive (0).

    Parameters
    ----------
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization :
        passed to sklearn's HistGradientBoostingClassifier.
    class_weight : "balanced" (default; candidates are mostly false positives) or None.
    random_state : int, fixes the booster's randomness (results are deterministic).
    """

    def __init__(
        self,
        max_iter: int = 200,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 20,
        l2_regularization: float = 0.0,
        class_weight: str | None = "balanced",
        random_state: int = 0,
    ):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.class_weight = class_weight
        self.random_state = random_state

    def fit(self, X, y):
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y).astype(int)
        if X.ndim != 2 or X.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"expected features with {len(FEATURE_NAMES)} columns ({', '.join(FEATURE_NAMES)})")
        if np.unique(y).size < 2:
            raise ValueError(
                "selector training needs both positive and negative candidates; "
                f"got {int((y == 1).sum())} positive and {int((y == 0).sum())} negative"
            )
        self.model_ = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            class_weight=self.class_weight,
            early_stopping=False,
            random_state=self.random_state,
        )
        self.model_.fit(X, y)
        self.classes_ = self.model_.classes_
        self.feature_names_ = FEATURE_NAMES
        self.n_positive_ = int((y == 1).sum())
        self.n_negative_ = int((y == 0).sum())
        return self

    def predict_proba(self, X):
        check_is_fitted(self, "model_")
        X = np.asarray(X, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
        if X.shape[0] == 0:
            return np.zeros((0, 2))
        return self.model_.predict_proba(X)

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)] if len(X) else np.zeros(0, int)

    def score_candidates(self, X) -> np.ndarray:
        """Probability of being a calcification, one per candidate."""
        return self.predict_proba(X)[:, 1]


def labels_from_truth(
    pred_labels: np.ndarray,
    truth_labels: np.ndarray,
    pixel_spacing_mm: float,
    distance_mm: float = 0.35,
    iou_min: float = 0.3,
) -> np.ndarray:
    """1 for candidates matching any truth object (centroid within distance_mm or IoU >= iou_min), else 0."""
    n = int(pred_labels.max())
    y = np.zeros(n, dtype=int)
    for a, _, _, _ in candidate_pairs(pred_labels, truth_labels, pixel_spacing_mm, distance_mm, iou_min):
        y[a - 1] = 1
    return y


def labels_from_circles(centroid_yx_px: np.ndarray, circles_px, normal: bool) -> np.ndarray:
    """Weak labels: 1 inside any circle (x, y, radius px), 0 everywhere on a normal film,
    -1 (unknown, not used for training) outside the circles of an abnormal film."""
    centroid_yx_px = np.asarray(centroid_yx_px, dtype=np.float64).reshape(-1, 2)
    if normal:
        return np.zeros(len(centroid_yx_px), dtype=int)
    y = np.full(len(centroid_yx_px), -1, dtype=int)
    for cx, cy, r in np.asarray(circles_px if circles_px is not None else [], dtype=np.float64).reshape(-1, 3):
        inside = np.hypot(centroid_yx_px[:, 1] - cx, centroid_yx_px[:, 0] - cy) <= r
        y[inside] = 1
    return y


def training_set(samples, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels pooled over training images.

    samples : iterable of dicts with `image` (2-D array), `pixel_spacing_mm`, and
        either `truth` (label image, pixel-level truth), or `circles` ((x, y, r)
        px rows) and/or `normal` (bool) for weak labels.
    params : the `segment` config section.
    """
    from calcsig.segment.stage import segment_params

    p = segment_params(params)
    xs, ys = [], []
    for sample in samples:
        spacing = float(sample["pixel_spacing_mm"])
        cand = detect_candidates(sample["image"], spacing, p, with_features=True)
        if sample.get("truth") is not None:
            y = labels_from_truth(
                cand.labels, np.asarray(sample["truth"]), spacing, p["match_distance_mm"], p["match_iou"]
            )
        else:
            y = labels_from_circles(cand.centroid_yx_px, sample.get("circles"), bool(sample.get("normal", False)))
        known = y >= 0
        xs.append(cand.features[known])
        ys.append(y[known])
    if not xs:
        raise ValueError("no training images given")
    return np.concatenate(xs), np.concatenate(ys)


def train_selector(samples, params: dict) -> CandidateSelector:
    """Fit a CandidateSelector (hyper-parameters from `params`) on `samples` (see `training_set`)."""
    from calcsig.segment.stage import segment_params

    p = segment_params(params)
    X, y = training_set(samples, p)
    selector = CandidateSelector(
        max_iter=p["selector_max_iter"],
        learning_rate=p["selector_learning_rate"],
        max_leaf_nodes=p["selector_max_leaf_nodes"],
        min_samples_leaf=p["selector_min_samples_leaf"],
        random_state=0 if p["selector_random_state"] is None else p["selector_random_state"],
    )
    return selector.fit(X, y)
