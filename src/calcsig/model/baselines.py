"""Inputs of the baselines that are not the main pipeline.

- mask balanced random forest (the enrichment paper's baseline): each ROI's
  foreground mask resized to size x size and flattened is its feature vector
  (:func:`mask_pixels`); nothing about it is fitted, so it is computed once
  per job and the forest (:func:`calcsig.model.pipeline.build_mask_forest`)
  gets it as X;
- enrichment ablation: which training ROIs to drop (:func:`enrichment_mask`).

(The mean/std aggregation baseline is :class:`calcsig.model.aggregation.MeanStd`
in the main pipeline; image and breast levels are in :mod:`calcsig.model.levels`.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd


def resize_nearest(mask: np.ndarray, size: int = 256) -> np.ndarray:
    """Binary mask (foreground > 0) resampled to size x size pixels by nearest neighbour (pixel centres)."""
    mask = np.asarray(mask) > 0
    h, w = mask.shape
    if h == 0 or w == 0:
        return np.zeros((size, size), dtype=bool)
    rows = np.minimum(((np.arange(size) + 0.5) * h / size).astype(int), h - 1)
    cols = np.minimum(((np.arange(size) + 0.5) * w / size).astype(int), w - 1)
    return mask[np.ix_(rows, cols)]


class MaskSource:
    """ROI id -> 2-D foreground mask, read from a directory of ``{roi_id}.npz`` (key ``foreground``).

    The source may also be a mapping or a callable from ROI id to mask.
    """

    def __init__(self, source: str | Path | Mapping | Callable):
        self.source = source

    def mask(self, roi_id: str) -> np.ndarray:
        roi_id = str(roi_id)
        if callable(self.source):
            return np.asarray(self.source(roi_id))
        if isinstance(self.source, Mapping):
            if roi_id not in self.source:
                raise KeyError(f"no mask for ROI {roi_id} in the given mapping")
            return np.asarray(self.source[roi_id])
        path = Path(self.source) / f"{roi_id}.npz"
        if not path.exists():
            raise FileNotFoundError(f"{path}: mask of ROI {roi_id} not found (run the masks stage for it)")
        with np.load(path) as npz:
            return npz["foreground"]


def mask_pixels(roi_ids, masks, size: int = 256) -> np.ndarray:
    """(n_rois, size * size) float32 matrix: each ROI's foreground mask resized to size x size pixels, flattened.

    `masks` is a :class:`MaskSource` or anything it accepts (directory,
    mapping, callable). Values are 0 or 1.
    """
    source = masks if isinstance(masks, MaskSource) else MaskSource(masks)
    out = np.zeros((len(roi_ids), size * size), dtype=np.float32)
    for i, rid in enumerate(roi_ids):
        out[i] = resize_nearest(source.mask(rid), size).ravel()
    return out


def enrichment_mask(images: pd.DataFrame, roi_images: pd.Series, column: str, value: str) -> np.ndarray:
    """True for ROIs whose image belongs to the enrichment subset (``images[column] == value``)."""
    if column not in images.columns:
        raise KeyError(f"images table has no column {column!r} to select the enrichment subset by")
    enriched = set(images.loc[images[column].astype(str) == str(value), "image_id"].astype(str))
    return roi_images.astype(str).isin(enriched).to_numpy()
