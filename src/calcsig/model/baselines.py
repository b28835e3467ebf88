"""Baselines and alternative evaluation levels.

- mask balanced random forest (the enrichment paper's baseline): ROI masks
  resized to 256 x 256, flattened, BalancedRandomForestClassifier;
- enrichment ablation: which training ROIs to drop (the comparison itself is
  McNemar on the same eval cases, in stage.evaluate_models);
- multi-level evaluation: ROI -> image (max over ROIs) -> breast (CC + MLO fusion).

(The mean/std aggregation baseline is aggregation.MeanStd in the main pipeline.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from imblearn.pipeline import Pipeline
from sklearn.base import BaseEstimator, TransformerMixin

from .pipeline import build_mask_forest


def resize_nearest(mask: np.ndarray, size: int = 256) -> np.ndarray:
    """Binary mask (foreground > 0) resampled to size x size by nearest neighbour (pixel centres)."""
    mask = np.asarray(mask) > 0
    h, w = mask.shape
    if h == 0 or w == 0:
        return np.zeros((size, size), dtype=bool)
    rows = np.minimum(((np.arange(size) + 0.5) * h / size).astype(int), h - 1)
    cols = np.minimum(((np.arange(size) + 0.5) * w / size).astype(int), w - 1)
    return mask[np.ix_(rows, cols)]


class MaskSource:
    """ROI id -> 2-D mask, from a directory of ``{roi_id}.npz`` (key ``foreground``), a mapping or a callable.

    Shared, not copied, by sklearn.base.clone; resized masks are cached.
    """

    def __init__(self, source: str | Path | Mapping | Callable, size: int = 256):
        self.source = source
        self.size = size
        self._cache: dict[str, np.ndarray] = {}

    def __deepcopy__(self, memo):
        return self

    def _load(self, roi_id: str) -> np.ndarray:
        if callable(self.source):
            return np.asarray(self.source(roi_id))
        if isinstance(self.source, Mapping):
            return np.asarray(self.source[roi_id])
        path = Path(self.source) / f"{roi_id}.npz"
        if not path.exists():
            raise FileNotFoundError(f"{path}: mask of ROI {roi_id} not found")
        with np.load(path) as npz:
            return npz["foreground"]

    def flat(self, roi_id: str) -> np.ndarray:
        roi_id = str(roi_id)
        if roi_id not in self._cache:
            self._cache[roi_id] = resize_nearest(self._load(roi_id), self.size).ravel()
        return self._cache[roi_id]


class MaskPixels(TransformerMixin, BaseEstimator):
    """ROI-level frame (``roi_id`` column) -> flattened size x size binary masks (0/1 float32).

    Stateless: fit only checks the input, so nothing is learnt across folds.
    """

    def __init__(self, masks=None, size=256):
        self.masks = masks
        self.size = size

    def _source(self) -> MaskSource:
        if isinstance(self.masks, MaskSource) and self.masks.size == self.size:
            return self.masks
        return MaskSource(self.masks, self.size)

    def fit(self, X, y=None):
        if "roi_id" not in X.columns:
            raise TypeError("X must be a DataFrame with a 'roi_id' column")
        self.n_features_out_ = self.size * self.size
        return self

    def transform(self, X):
        src = self._source()
        return np.vstack([src.flat(r) for r in X["roi_id"].astype(str)]).astype(np.float32)


def build_mask_forest_pipeline(
    masks, *, size: int = 256, seed: int = 0, n_jobs: int = 1, n_estimators: int = 100
) -> Pipeline:
    source = masks if isinstance(masks, MaskSource) else MaskSource(masks, size)
    return Pipeline(
        [
            ("pixels", MaskPixels(masks=source, size=size)),
            ("classifier", build_mask_forest(seed=seed, n_jobs=n_jobs, n_estimators=n_estimators)),
        ]
    )


def enrichment_mask(images: pd.DataFrame, roi_images: pd.Series, column: str, value: str) -> np.ndarray:
    """True for ROIs whose image belongs to the enrichment subset (``images[column] == value``)."""
    if column not in images.columns:
        raise KeyError(f"images table has no column {column!r} to select the enrichment subset by")
    enriched = set(images.loc[images[column].astype(str) == str(value), "image_id"].astype(str))
    return roi_images.astype(str).isin(enriched).to_numpy()


def image_level(pred: pd.DataFrame) -> pd.DataFrame:
    """One row per image: probability and label = max over its ROIs; predicted = any ROI predicted."""
    keys = ["model", "fold", "image_id", "subject_id"]
    out = pred.groupby(keys, sort=True, dropna=False).agg(
        label=("label", "max"),
        probability=("probability", "max"),
        predicted=("predicted", "max"),
    )
    return out.reset_index()


def fuse_views(views: pd.DataFrame, threshold: float = 0.5) -> tuple[int, float]:
    """(predicted label, probability) of a breast from its image-level rows (columns view, probability, predicted).

    The published CC + MLO rule: views that agree keep their label, with the
    higher probability; views that disagree take the malignant call when that
    view's probability exceeds `threshold`, and benign otherwise. With more
    than one image of a view, the view's most suspicious image represents it;
    a breast with one view is that view.
    """
    per_view = views.sort_values("probability", ascending=False).groupby("view", sort=True, dropna=False).head(1)
    preds = per_view["predicted"].astype(int).to_numpy()
    probs = per_view["probability"].to_numpy(dtype=float)
    score = float(probs.max())
    if np.all(preds == preds[0]):
        return int(preds[0]), score
    malignant_prob = float(probs[preds == 1].max())
    return (1, score) if malignant_prob > threshold else (0, score)


def breast_level(image_pred: pd.DataFrame, images: pd.DataFrame, threshold: float = 0.5) -> pd.DataFrame:
    """One row per breast (subject + laterality): label = max over images, CC + MLO fused prediction."""
    meta = images[["image_id", "laterality", "view"]].copy()
    meta["image_id"] = meta["image_id"].astype(str)
    df = image_pred.merge(meta, on="image_id", how="left")
    df["laterality"] = df["laterality"].fillna("").astype(str).replace("", "unknown")
    df["view"] = df["view"].fillna("").astype(str).str.upper().replace("", "unknown")
    rows = []
    for (model, fold, subject, side), g in df.groupby(["model", "fold", "subject_id", "laterality"], sort=True):
        predicted, probability = fuse_views(g, threshold)
        rows.append(
            {
                "model": model,
                "fold": fold,
                "subject_id": subject,
                "breast_id": f"{subject}:{side}",
                "label": int(g["label"].max()),
                "probability": probability,
                "predicted": predicted,
            }
        )
    return pd.DataFrame(rows, columns=["model", "fold", "subject_id", "breast_id", "label", "probability", "predicted"])
