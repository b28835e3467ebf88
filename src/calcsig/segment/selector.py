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

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils.validation import check_is_fitted

from calcsig.errors import CalcsigError, ConfigError
from calcsig.paths import atomic_path
from calcsig.segment.candidates import FEATURE_NAMES, detect_candidates
from calcsig.segment.evaluate import candidate_pairs
from calcsig.segment.params import CANDIDATE_KEYS, SELECTOR_KEYS, segment_params
from calcsig.segment.store import SELECTOR_FEATURE_COLUMNS, read_candidates, read_segmentation
from calcsig.segment.truth import image_splits, truth_kinds
from calcsig.tables import read_table
from calcsig.truthlabels import read_truth_labels


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


def candidate_labels(sample: dict, params: dict | None = None) -> np.ndarray:
    """Training labels of one image's candidates: 1, 0, or -1 (unknown, left out).

    sample : `labels` (candidate label image), `centroid_yx_px` ((n, 2)),
        `pixel_spacing_mm`, and either `truth` (a label image: pixel-level
        truth, matched under `match_distance_mm` / `match_iou`), or `circles`
        ((x, y, radius) px rows) and/or `normal` (bool) for weak labels.
    """
    p = segment_params(params, ("match_distance_mm", "match_iou"))
    if sample.get("truth") is not None:
        return labels_from_truth(
            sample["labels"],
            np.asarray(sample["truth"]),
            float(sample["pixel_spacing_mm"]),
            p["match_distance_mm"],
            p["match_iou"],
        )
    return labels_from_circles(sample["centroid_yx_px"], sample.get("circles"), bool(sample.get("normal", False)))


def training_set(samples, params: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels pooled over training images' candidates.

    samples : iterable of dicts with `features` ((n, len(FEATURE_NAMES))), the
        keys of `candidate_labels`, or instead `image` (2-D array) from which the
        candidates are detected here (with the `segment` keys of `params`).
    """
    xs, ys = [], []
    for sample in samples:
        if "features" not in sample:
            cand = detect_candidates(sample["image"], float(sample["pixel_spacing_mm"]), _candidate_params(params))
            sample = {**sample, "labels": cand.labels, "centroid_yx_px": cand.centroid_yx_px, "features": cand.features}
        y = candidate_labels(sample, params)
        known = y >= 0
        xs.append(np.asarray(sample["features"], dtype=np.float64)[known])
        ys.append(y[known])
    if not xs:
        raise ValueError("no training images given")
    return np.concatenate(xs), np.concatenate(ys)


def _candidate_params(params: dict | None) -> dict:
    return {k: v for k, v in (params or {}).items() if k in CANDIDATE_KEYS}


def build_selector(params: dict | None = None) -> CandidateSelector:
    """An unfitted CandidateSelector with the hyper-parameters of the `segment` section."""
    p = segment_params(params, SELECTOR_KEYS)
    return CandidateSelector(
        max_iter=p["selector_max_iter"],
        learning_rate=p["selector_learning_rate"],
        max_leaf_nodes=p["selector_max_leaf_nodes"],
        min_samples_leaf=p["selector_min_samples_leaf"],
        random_state=0 if p["selector_random_state"] is None else p["selector_random_state"],
    )


def train_selector(samples, params: dict | None = None) -> CandidateSelector:
    """Fit a CandidateSelector (hyper-parameters from `params`) on `samples` (see `training_set`)."""
    X, y = training_set(samples, params)
    return build_selector({k: v for k, v in (params or {}).items() if k in SELECTOR_KEYS}).fit(X, y)


def load_selector(path: str | Path) -> CandidateSelector:
    """A selector saved by `train_selector_files`."""
    selector = joblib.load(path)
    if not isinstance(selector, CandidateSelector):
        raise ConfigError(f"{path}: not a calcsig CandidateSelector (got {type(selector).__name__})")
    return selector


def score_candidates(table: pd.DataFrame, selector: CandidateSelector) -> np.ndarray:
    """The selector's probability that each candidate of a stored candidate table is a calcification."""
    if not len(table):
        return np.zeros(0)
    return selector.score_candidates(table[SELECTOR_FEATURE_COLUMNS].to_numpy(dtype=np.float64))


def rejected_object_ids(table: pd.DataFrame, selector: CandidateSelector | None, threshold: float | None) -> np.ndarray:
    """Object IDs of the candidates below the selector's operating point (none without a selector)."""
    if selector is None or threshold is None or not len(table):
        return np.zeros(0, dtype=np.int64)
    return table.loc[score_candidates(table, selector) < threshold, "object_id"].to_numpy(dtype=np.int64)


def train_selector_files(
    segment_files,
    params: dict | None,
    out_model: str | Path,
    truth_paths=None,
    circles=None,
    normal=None,
) -> CandidateSelector:
    """Train the candidate selector on stored candidates of training images; save it (joblib).

    segment_files : per image the (npz, tsv) written by `calcsig.segment.store.segment_image_file`.
    truth_paths : per image a label-image path (pixel truth) or None.
    circles : per image a list of (x, y, radius) px calcification circles (weak labels) or None.
    normal : per image True for a normal film (all its candidates are negatives).
    params : `segment` keys of `SELECTOR_KEYS`.
    An image with neither truth, circles nor `normal` contributes nothing.
    """
    n = len(segment_files)
    truth_paths = list(truth_paths) if truth_paths is not None else [None] * n
    circles = list(circles) if circles is not None else [None] * n
    normal = list(normal) if normal is not None else [False] * n

    def samples():
        for (npz, tsv), truth, circ, norm in zip(segment_files, truth_paths, circles, normal):
            if truth is None and not circ and not norm:
                continue
            seg, table = read_segmentation(npz), read_candidates(tsv)
            yield {
                "labels": seg["labels"],
                "pixel_spacing_mm": seg["pixel_spacing_mm"],
                "centroid_yx_px": table[["centroid_y_px", "centroid_x_px"]].to_numpy(dtype=np.float64),
                "features": table[SELECTOR_FEATURE_COLUMNS].to_numpy(dtype=np.float64),
                "truth": read_truth_labels(truth) if truth else None,
                "circles": circ,
                "normal": bool(norm),
            }

    p = segment_params(params, SELECTOR_KEYS)
    X, y = training_set(samples(), p)
    selector = build_selector(p).fit(X, y)
    with atomic_path(out_model) as tmp:
        joblib.dump(selector, tmp)
    return selector


def train_selector_on_split(
    images_tsv, rois_tsv, assignment_tsv, segment_dir, params: dict, out_model, split: str = "train", segmented=None
) -> int:
    """Train the selector on the stored candidates of the images of `split` that carry truth.

    Truth is per-calcification masks (`truth_mask_path`), else calcification
    circles (weak labels), else, for films of a source with circle truth and no
    ROI, "normal" (every candidate a negative). segment_dir holds each image's
    `{image_id}.npz` / `.tsv`; `segmented` lists the images that have them (all
    when None; an image the quality gate skipped has none). Returns the number of
    training images; raises CalcsigError naming the split when none carries truth.
    """
    images = read_table(images_tsv, "images")
    rois = read_table(rois_tsv, "rois")
    splits = image_splits(assignment_tsv)
    images = images[images["has_pixels"].astype(bool) & images["image_id"].map(splits).eq(split)]
    if segmented is not None:
        images = images[images["image_id"].isin(set(segmented))]
    kinds = truth_kinds(images, rois)
    used = kinds.index[kinds["truth_path"].notna() | kinds["circles"].notna() | kinds["normal"]]
    if used.empty:
        raise CalcsigError(
            f"{images_tsv}: no {split}-split image carries calcification truth (truth_mask_path, "
            "calcification circles or normal films), so the candidate selector cannot be trained; "
            "set segment.use_selector: false for plain HDoG output"
        )
    segment_dir = Path(segment_dir)
    ids = images.loc[used, "image_id"].astype(str)
    train_selector_files(
        [(segment_dir / f"{i}.npz", segment_dir / f"{i}.tsv") for i in ids],
        params,
        out_model,
        truth_paths=list(kinds.loc[used, "truth_path"]),
        circles=list(kinds.loc[used, "circles"]),
        normal=list(kinds.loc[used, "normal"]),
    )
    return len(used)
