"""Trainable false-positive reduction for HDoG candidates.

Stands in for HDoGReg's CNN regression model, which cannot be shipped: a
gradient-boosted tree classifier over the per-candidate features of
`calcsig.segment.candidates`. Trained on candidates matched to pixel-level
truth (positives = candidates matching a truth object under the evaluation's
matching rule), or with weak labels from cluster circles: the strongest
candidates (by DoG response) inside an annotated calcification circle are
(noisy) positives, candidates on normal films negatives, and the other
candidates of abnormal films are left out (their status is unknown). Normal
films with inserted lesions (`calcsig.segment.inserted`) add exact labels.

Selectors exist per scope (the train split; with selector_scope outer_fold one
per outer fold and one on train+dev), each with its operating point
(`calcsig.segment.operating_point`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from calcsig.errors import CalcsigError, ConfigError
from calcsig.parallel import ordered_map
from calcsig.paths import atomic_path
from calcsig.segment.candidates import FEATURE_NAMES, detect_candidates
from calcsig.segment.evaluate import candidate_pairs
from calcsig.segment.operating_point import choose_operating_point, fit_with_out_of_fold_scores, subject_folds
from calcsig.segment.params import (
    CANDIDATE_KEYS,
    OPERATING_POINT_KEYS,
    SELECTOR_KEYS,
    TRAINING_KEYS,
    segment_params,
)
from calcsig.segment.store import SELECTOR_FEATURE_COLUMNS, read_candidates, read_segmentation
from calcsig.segment.truth import truth_kinds
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
        # one OpenMP thread: the booster's parallel sums would otherwise differ in the last bits
        # with the cores of the machine, and with them the selector and the masks
        with threadpool_limits(1, user_api="openmp"):
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


def labels_from_circles(
    centroid_yx_px: np.ndarray, circles_px, normal: bool, strength=None, positives_per_circle: int = 0
) -> np.ndarray:
    """Weak labels: 1 inside a circle (x, y, radius px), 0 everywhere on a normal film,
    -1 (unknown, not used for training) elsewhere on an abnormal film.

    strength, positives_per_circle : when both are given (> 0), only the
    `positives_per_circle` candidates of highest `strength` (e.g. DoG response)
    inside each circle are positives; the circle's other candidates are unknown.
    """
    centroid_yx_px = np.asarray(centroid_yx_px, dtype=np.float64).reshape(-1, 2)
    if normal:
        return np.zeros(len(centroid_yx_px), dtype=int)
    y = np.full(len(centroid_yx_px), -1, dtype=int)
    for cx, cy, r in np.asarray(circles_px if circles_px is not None else [], dtype=np.float64).reshape(-1, 3):
        inside = np.flatnonzero(np.hypot(centroid_yx_px[:, 1] - cx, centroid_yx_px[:, 0] - cy) <= r)
        if strength is not None and positives_per_circle > 0:
            # strongest first; ties by candidate order, so the labels are deterministic
            order = np.lexsort((inside, -np.asarray(strength, dtype=np.float64)[inside]))
            inside = inside[order[:positives_per_circle]]
        y[inside] = 1
    return y


def candidate_labels(sample: dict, params: dict | None = None) -> np.ndarray:
    """Training labels of one image's candidates: 1, 0, or -1 (unknown, left out).

    sample : `labels` (candidate label image), `centroid_yx_px` ((n, 2)),
        `pixel_spacing_mm`, and either `truth` (a label image: pixel-level
        truth, matched under `match_distance_mm` / `match_iou`), or `circles`
        ((x, y, radius) px rows) and/or `normal` (bool) for weak labels, with
        `strength` ((n,), e.g. DoG response) ranking the candidates inside a
        circle (`weak_positives_per_circle`).
    """
    p = segment_params(params, ("match_distance_mm", "match_iou", "weak_positives_per_circle"))
    if sample.get("truth") is not None:
        return labels_from_truth(
            sample["labels"],
            np.asarray(sample["truth"]),
            float(sample["pixel_spacing_mm"]),
            p["match_distance_mm"],
            p["match_iou"],
        )
    return labels_from_circles(
        sample["centroid_yx_px"],
        sample.get("circles"),
        bool(sample.get("normal", False)),
        sample.get("strength"),
        p["weak_positives_per_circle"],
    )


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
            sample = {
                **sample,
                "labels": cand.labels,
                "centroid_yx_px": cand.centroid_yx_px,
                "features": cand.features,
                "strength": cand.hdog.dog_response,
            }
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


@dataclass
class TrainingImage:
    """One training image's stored candidates with their labels and the truth to score them against.

    features : (n, len(FEATURE_NAMES)); y : (n,) 1, 0 or -1 (unknown, not trained on);
    centroids_mm : (n, 2) as (x, y) mm; circles_mm : (k, 3) (x, y, radius) mm or None;
    normal : a normal film; truth_pairs : pixel truth's eligible (candidate, truth, distance,
    IoU) pairs (`candidate_pairs`) or None; n_truth : truth objects; breast_area_cm2;
    inserted : a normal film with inserted lesions, trained on but never scored for the
    operating point (which is chosen on real truth only).
    """

    image_id: str
    subject_id: str
    features: np.ndarray
    y: np.ndarray
    centroids_mm: np.ndarray
    circles_mm: np.ndarray | None = None
    normal: bool = False
    truth_pairs: list | None = None
    n_truth: int = 0
    breast_area_cm2: float = 0.0
    inserted: bool = False

    @property
    def has_positive(self) -> bool:
        """Whether the image carries real calcification truth (what the folds spread evenly)."""
        if self.inserted:
            return False
        return bool(self.n_truth) or (self.circles_mm is not None and len(self.circles_mm) > 0)


def load_training_image(
    npz,
    tsv,
    image_id: str,
    subject_id: str,
    truth=None,
    circles=None,
    normal: bool = False,
    params=None,
    inserted: bool = False,
) -> TrainingImage:
    """A training image from its stored candidates (`segment_image_file`) and its truth.

    truth : pixel truth, a label image or the path of one (matched under
    `match_distance_mm` / `match_iou`); circles : (x, y, radius) px calcification
    circles (weak labels, `weak_positives_per_circle`); normal : a normal film;
    inserted : a normal film with inserted lesions (`truth` is what was inserted).
    """
    p = segment_params(params, ("match_distance_mm", "match_iou", "weak_positives_per_circle"))
    seg, table = read_segmentation(npz), read_candidates(tsv)
    spacing = seg["pixel_spacing_mm"]
    centroid_yx = table[["centroid_y_px", "centroid_x_px"]].to_numpy(dtype=np.float64)
    if isinstance(truth, (str, Path)):
        truth = read_truth_labels(truth)
    sample = {
        "labels": seg["labels"],
        "pixel_spacing_mm": spacing,
        "centroid_yx_px": centroid_yx,
        "truth": truth,
        "circles": circles,
        "normal": bool(normal),
        "strength": table["dog_response"].to_numpy(dtype=np.float64),
    }
    pairs = None
    if truth is not None and not inserted:
        pairs = candidate_pairs(seg["labels"], truth, spacing, p["match_distance_mm"], p["match_iou"])
    return TrainingImage(
        image_id=str(image_id),
        subject_id=str(subject_id),
        features=table[SELECTOR_FEATURE_COLUMNS].to_numpy(dtype=np.float64),
        y=candidate_labels(sample, p),
        centroids_mm=centroid_yx[:, ::-1] * spacing,
        circles_mm=np.asarray(circles, dtype=np.float64).reshape(-1, 3) * spacing if circles else None,
        normal=bool(normal),
        truth_pairs=pairs,
        n_truth=int(truth.max()) if truth is not None and truth.size else 0,
        breast_area_cm2=float(seg["breast"].sum()) * spacing**2 / 100.0,
        inserted=inserted,
    )


def load_training_images(images, kinds, segment_dir, params: dict, workers: int = 1) -> list:
    """`load_training_image` for each row of `images` (images.tsv rows) with its `truth_kinds` row, reading
    each image's stored candidates from `segment_dir` ({image_id}.npz / .tsv); workers : processes
    reading them (the result does not depend on it)."""
    segment_dir = Path(segment_dir)

    def load(i):
        return load_training_image(
            segment_dir / f"{images.at[i, 'image_id']}.npz",
            segment_dir / f"{images.at[i, 'image_id']}.tsv",
            images.at[i, "image_id"],
            images.at[i, "subject_id"],
            kinds.at[i, "truth_path"],
            kinds.at[i, "circles"],
            bool(kinds.at[i, "normal"]),
            params,
        )

    return ordered_map(load, images.index, workers)


def fit_selector(images: list[TrainingImage], params: dict | None = None) -> CandidateSelector:
    """A CandidateSelector (hyper-parameters of `params`) fitted on the known-label candidates of `images`."""
    X = np.concatenate([im.features[im.y >= 0] for im in images] + [np.zeros((0, len(FEATURE_NAMES)))])
    y = np.concatenate([im.y[im.y >= 0] for im in images] + [np.zeros(0, int)])
    if np.unique(y).size < 2:
        raise CalcsigError(
            f"the selector's {len(images)} training images hold {int((y == 1).sum())} positive and "
            f"{int((y == 0).sum())} negative candidates; it needs both (calcification truth with candidates "
            "on it, and normal films or candidates outside the truth); set segment.use_selector: false "
            "for plain HDoG output"
        )
    return build_selector(params).fit(X, y)


def train_with_operating_point(
    images: list[TrainingImage], params: dict | None = None, seed: int = 0, workers: int = 1
):
    """The selector fitted on all `images` and its operating point (see `calcsig.segment.operating_point`).

    With `selector_threshold` set, that fixed value is the operating point; otherwise
    it is chosen on out-of-fold scores over `selector_cv_folds` subject-grouped folds.
    workers : processes fitting the final selector and the folds' selectors side by side.
    Returns (selector, operating point dict).
    """
    p = segment_params(params, TRAINING_KEYS)
    selector_params = {k: p[k] for k in SELECTOR_KEYS}

    def fit(part):
        return fit_selector(part, selector_params)

    if p["selector_threshold"] is not None:
        return fit(images), {
            "threshold": float(p["selector_threshold"]),
            "rule": "fixed by segment.selector_threshold",
            "chosen_on": "configuration",
        }
    folds = subject_folds(
        [im.subject_id for im in images], [im.has_positive for im in images], p["selector_cv_folds"], seed
    )
    selector, scores = fit_with_out_of_fold_scores(images, folds, fit, workers)
    chosen = choose_operating_point(images, scores, {k: p[k] for k in OPERATING_POINT_KEYS})
    chosen["n_folds"] = int(len(np.unique(folds)))
    return selector, chosen


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
    p = segment_params(params, SELECTOR_KEYS)
    images = [
        load_training_image(npz, tsv, str(npz), str(npz), truth, circ, norm, p)
        for (npz, tsv), truth, circ, norm in zip(segment_files, truth_paths, circles, normal)
        if truth is not None or circ or norm
    ]
    if not images:
        raise ValueError("no training images given")
    selector = fit_selector(images, p)
    with atomic_path(out_model) as tmp:
        joblib.dump(selector, tmp)
    return selector


def training_image_ids(assignment_tsv, scope: str) -> list[str]:
    """The images a selector of `scope` is trained on (image rows of assignment.tsv).

    scope : `train` (the train split: the selector the segmentation evaluation uses
    and, with selector_scope split, every ROI's); `outer{k}` (train and dev images
    outside outer fold k); `outer_eval` (all train and dev images).
    """
    assignment = pd.read_csv(assignment_tsv, sep="\t", dtype=str, keep_default_na=False)
    images = assignment[assignment["level"] == "image"]
    if scope == "train":
        chosen = images["split"] == "train"
    elif scope == "outer_eval":
        chosen = images["split"].isin(["train", "dev"])
    elif scope.startswith("outer") and scope[5:].isdigit():
        chosen = images["split"].isin(["train", "dev"]) & (images["outer_fold"] != scope[5:])
    else:
        raise ConfigError(f"selector scope must be train, outer<k> or outer_eval, got {scope!r}")
    return sorted(images.loc[chosen, "image_id"])


def train_selector_for_scope(
    images_tsv,
    rois_tsv,
    assignment_tsv,
    segment_dir,
    params: dict,
    out_model,
    out_operating_point,
    scope: str = "train",
    inserted: dict | None = None,
    segmented=None,
    workers: int = 1,
) -> dict:
    """Train the selector of `scope` (see `training_image_ids`) on the stored candidates of its
    images that carry truth, choose its operating point, and write both.

    Truth is per-calcification masks (`truth_mask_path`), else calcification
    circles (weak labels), else, for films of a source with circle truth and no
    ROI, "normal" (every candidate a negative). segment_dir holds each image's
    `{image_id}.npz` / `.tsv`. inserted : image_id -> (npz, tsv) of normal films with
    inserted lesions (`calcsig.segment.inserted.insert_lesions_file`); those of the
    scope's images are trained on too when `selector_inserted_lesions` is on.
    out_operating_point (JSON): `threshold`, `rule`, the target, `chosen_on`, `reached`,
    `out_of_fold`, `n_images` (those trained on: at most `selector_max_training_images`, see
    `bounded_training_sample`), `n_images_with_truth`, `n_inserted_images`, `n_subjects`, `scope`.
    segmented : the images that have stored candidates (all when None; the quality gate may skip some).
    workers : processes loading the images and fitting the selectors (the outputs do not depend on it).
    Raises CalcsigError naming the scope when no image carries truth.
    """
    images = read_table(images_tsv, "images")
    rois = read_table(rois_tsv, "rois")
    wanted = set(training_image_ids(assignment_tsv, scope))
    if segmented is not None:
        wanted &= set(segmented)
    images = images[images["has_pixels"].astype(bool) & images["image_id"].astype(str).isin(wanted)]
    kinds = truth_kinds(images, rois)
    with_truth = kinds.index[kinds["truth_path"].notna() | kinds["circles"].notna() | kinds["normal"]]
    p = segment_params(params, ("selector_random_state", "selector_inserted_lesions", "selector_max_training_images"))
    seed = p["selector_random_state"] or 0
    used = bounded_training_sample(images.loc[with_truth, "subject_id"], p["selector_max_training_images"], seed)
    if used.empty and not with_truth.empty:
        raise ConfigError(
            f"segment.selector_max_training_images is {p['selector_max_training_images']}, but every subject of "
            f"selector scope {scope} has more images with truth than that; raise it"
        )
    if used.empty:
        raise CalcsigError(
            f"{images_tsv}: no image of selector scope {scope} carries calcification truth (truth_mask_path, "
            "calcification circles or normal films), so the candidate selector cannot be trained; "
            "set segment.use_selector: false for plain HDoG output"
        )
    training = load_training_images(images.loc[used], kinds.loc[used], segment_dir, params, workers)
    real = len(training)
    if inserted and p["selector_inserted_lesions"]:
        training += _inserted_training_images(inserted, images.loc[used], params)
    selector, chosen = train_with_operating_point(training, params, seed, workers)
    chosen.setdefault("chosen_on", _scope_scores(scope))
    chosen.update(
        scope=scope,
        n_images=real,
        n_images_with_truth=len(with_truth),
        n_inserted_images=len(training) - real,
        n_subjects=len({im.subject_id for im in training}),
        n_positive_candidates=selector.n_positive_,
        n_negative_candidates=selector.n_negative_,
    )
    with atomic_path(out_model) as tmp:
        joblib.dump(selector, tmp)
    with atomic_path(out_operating_point) as tmp:
        Path(tmp).write_text(json.dumps(chosen, indent=2, sort_keys=True) + "\n")
    return chosen


def bounded_training_sample(subject_of: pd.Series, max_images: int, seed: int) -> pd.Index:
    """The index labels of at most `max_images` images of `subject_of` (index -> subject), whole
    subjects taken in an order fixed by a hash of (seed, subject) until the next would pass the
    bound; all of them, in their order, when they fit. A subject with more images than the bound
    alone is skipped, so the sample is never empty unless every subject is."""
    if len(subject_of) <= max_images:
        return subject_of.index
    sizes = subject_of.astype(str).value_counts()
    order = sorted(sizes.index, key=lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest())
    chosen, total = set(), 0
    for subject in order:
        if total + sizes[subject] <= max_images:
            chosen.add(subject)
            total += sizes[subject]
    return subject_of.index[subject_of.astype(str).isin(chosen)]


def _inserted_training_images(inserted: dict, images: pd.DataFrame, params) -> list[TrainingImage]:
    """The films of `images` that have inserted lesions (`inserted`: image_id -> (npz, tsv))."""
    out = []
    for _, row in images.iterrows():
        if str(row["image_id"]) not in inserted:
            continue
        npz, tsv = inserted[str(row["image_id"])]
        with np.load(npz) as stored:
            truth = stored["truth"]
        out.append(
            load_training_image(npz, tsv, row["image_id"], row["subject_id"], truth, params=params, inserted=True)
        )
    return out


def selector_scope_of(selector_scope: str, split: str, outer_fold: str) -> str:
    """The selector that segments a ROI of an image in `split` / `outer_fold` for the models.

    selector_scope `split`: the train-split selector (`train`) for every ROI.
    `outer_fold`: a train or dev ROI of outer fold k is segmented by `outer{k}` (trained
    on the train+dev images outside fold k), so that when fold k is the CV test fold its
    ROIs were segmented by a selector that never saw their images; eval and external
    ROIs by `outer_eval` (trained on all train+dev images), like the final model.
    """
    if selector_scope == "split":
        return "train"
    if selector_scope != "outer_fold":
        raise ConfigError(f"segment.selector_scope must be split or outer_fold, got {selector_scope!r}")
    if split in ("train", "dev"):
        if not str(outer_fold):
            raise ConfigError(f"a {split} image has no outer fold in assignment.tsv; rerun the partition")
        return f"outer{outer_fold}"
    return "outer_eval"


def _scope_scores(scope: str) -> str:
    """Which out-of-fold scores the operating point of `scope` was chosen on, in words."""
    if scope == "train":
        return "train split out-of-fold scores"
    if scope == "outer_eval":
        return "train+dev out-of-fold scores"
    return f"out-of-fold scores of the train+dev images outside outer fold {scope[5:]}"


def read_operating_point(path) -> dict:
    """The operating point JSON written by `train_selector_for_scope`."""
    chosen = json.loads(Path(path).read_text())
    if not isinstance(chosen.get("threshold"), (int, float)):
        raise ConfigError(f"{path}: operating point without a numeric threshold (written by an older calcsig?)")
    return chosen
