"""Per-ROI object masks: foreground labels, background bands, dilation graph distances.

Format fixed in docs/contracts.md (`results/masks/{roi_id}.npz`).

Dilation graphs without a dilation stack: the masks of objects A and B dilated
by a disk of radius r overlap iff some point lies within r of both, i.e. iff
the minimum distance d between their pixel sets is <= 2 r (continuous disks).
With discrete disk footprints (skimage.morphology.disk(r): offsets with
dy^2 + dx^2 <= r^2) the equivalence is exact outside a band of width sqrt(2):
overlap implies d <= 2 r, and d <= 2 r - sqrt(2) implies overlap (the pixel
nearest the midpoint is within sqrt(2)/2 of it); pairs with
2 r - sqrt(2) < d <= 2 r may or may not touch in the pixel stack. The graph
`d <= 2 r` is the one the contract defines (the continuous-disk graph).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from calcsig.paths import atomic_path


def foreground_labels(
    labels: np.ndarray, pixel_spacing_mm: float, min_area_mm2: float = 0.0
) -> tuple[np.ndarray, np.ndarray, int]:
    """Relabel the objects of a (cropped) label image 1..n, dropping small ones.

    labels : (H, W) int label image (any label values; 0 = background).
    min_area_mm2 : objects with area (in this crop) below this are dropped.

    Returns (foreground int32 (H, W) labelled 1..n in increasing original label,
    object_ids (n,) original label of each new label, n_dropped_small).
    """
    ids, area = np.unique(labels[labels > 0], return_counts=True)
    keep = area * pixel_spacing_mm**2 >= min_area_mm2
    object_ids = ids[keep].astype(np.int64)
    foreground = np.zeros(labels.shape, dtype=np.int32)
    if object_ids.size:
        # Map original ids to 1..n through a sorted lookup (ids may be large and sparse).
        pos = np.searchsorted(object_ids, labels)
        pos = np.clip(pos, 0, object_ids.size - 1)
        hit = (labels > 0) & (object_ids[pos] == labels)
        foreground[hit] = pos[hit] + 1
    return foreground, object_ids, int((~keep).sum())


def object_band(foreground: np.ndarray, label: int, band_px: float) -> np.ndarray:
    """Background band of object `label`: pixels within `band_px` (Euclidean, px)
    of the object, excluding every foreground pixel (of any object). (H, W) bool."""
    obj = foreground == label
    band = np.zeros(foreground.shape, dtype=bool)
    if not obj.any():
        return band
    # Work in the object's bounding box grown by the band: distances beyond it exceed band_px.
    rows, cols = np.flatnonzero(obj.any(axis=1)), np.flatnonzero(obj.any(axis=0))
    r = int(np.ceil(band_px)) + 1
    y0, y1 = max(rows[0] - r, 0), min(rows[-1] + r + 1, foreground.shape[0])
    x0, x1 = max(cols[0] - r, 0), min(cols[-1] + r + 1, foreground.shape[1])
    dist = ndi.distance_transform_edt(~obj[y0:y1, x0:x1])
    band[y0:y1, x0:x1] = (dist <= band_px) & (foreground[y0:y1, x0:x1] == 0)
    return band


def background_union(foreground: np.ndarray, band_px: float) -> np.ndarray:
    """Union of all objects' bands: non-foreground pixels within `band_px` of any object."""
    fg = foreground > 0
    if not fg.any():
        return np.zeros(foreground.shape, dtype=bool)
    return (ndi.distance_transform_edt(~fg) <= band_px) & ~fg


def min_distance_px(foreground: np.ndarray) -> np.ndarray:
    """(n, n) minimum Euclidean distance (px) between the pixel sets of objects 1..n.

    Only boundary pixels are compared (the closest pair of two disjoint sets lies
    on their boundaries). Diagonal 0; objects absent from `foreground` get inf.
    """
    n = int(foreground.max())
    out = np.zeros((n, n))
    if n < 2:
        return out
    fg = foreground > 0
    # A pixel is interior when its 8 neighbours all belong to its object: the
    # neighbour towards any other pixel is then strictly closer to it.
    same = ndi.minimum_filter(foreground, size=3, mode="constant") == ndi.maximum_filter(
        foreground, size=3, mode="constant"
    )
    boundary = fg & ~same
    ys, xs = np.nonzero(boundary)
    ids = foreground[ys, xs]
    pts = [np.stack([ys[ids == i], xs[ids == i]], axis=1).astype(np.float64) for i in range(1, n + 1)]
    trees = [cKDTree(p) if len(p) else None for p in pts]
    for i in range(n):
        for j in range(i + 1, n):
            if trees[i] is None or len(pts[j]) == 0:
                d = np.inf
            else:
                d = float(trees[i].query(pts[j], k=1)[0].min())
            out[i, j] = out[j, i] = d
    return out


def roi_masks(
    labels: np.ndarray,
    bbox: tuple[int, int, int, int],
    pixel_spacing_mm: float,
    min_area_mm2: float = 0.01,
    background_band_mm: float = 1.75,
    dilation_scales_mm=(0.07, 0.1269, 0.2300, 0.4169, 0.7558, 1.370, 2.483, 4.5),
    rejected_ids=(),
) -> dict:
    """Masks of one ROI (arrays of the contract's npz).

    labels : whole-image segment label image; bbox : (x_min, y_min, x_max, y_max)
    half-open, px, clipped to the image. Objects are those present in the crop,
    clipped to it (an object cut by the ROI border keeps only its inside part).
    background_band_mm, dilation_scales_mm, min_area_mm2 : mm / mm2, converted
    with `pixel_spacing_mm`. rejected_ids : segment object ids left out (those the
    candidate selector scored below its threshold); their count is recorded.
    """
    h, w = labels.shape
    x0, y0, x1, y1 = (int(v) for v in bbox)
    x0, y0 = min(max(x0, 0), w), min(max(y0, 0), h)
    x1, y1 = min(max(x1, x0), w), min(max(y1, y0), h)
    crop = labels[y0:y1, x0:x1]
    rejected = np.isin(crop, np.asarray(list(rejected_ids), dtype=crop.dtype)) & (crop > 0)
    n_rejected = len(np.unique(crop[rejected]))
    crop = np.where(rejected, 0, crop)
    foreground, object_ids, dropped = foreground_labels(crop, pixel_spacing_mm, min_area_mm2)
    band_px = background_band_mm / pixel_spacing_mm
    return {
        "offset_yx": np.array([y0, x0], dtype=np.int64),
        "pixel_spacing_mm": np.float64(pixel_spacing_mm),
        "foreground": foreground,
        "object_ids": object_ids,
        "n_dropped_small": np.int64(dropped),
        "n_rejected_selector": np.int64(n_rejected),
        "background_band_px": np.float64(band_px),
        "background": background_union(foreground, band_px),
        "dilation_radii_px": np.asarray(dilation_scales_mm, dtype=np.float64) / pixel_spacing_mm,
        "min_distance_px": min_distance_px(foreground),
    }


def roi_bbox(roi_row: dict, image_shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x_min, y_min, x_max, y_max) of a rois.tsv row; the whole image for shape `image`
    or when the box is missing; a circle's box from centre and radius when absent."""

    def num(key):
        v = roi_row.get(key)
        try:
            v = float(v)
        except (TypeError, ValueError):
            return None
        return None if np.isnan(v) else v

    h, w = image_shape
    box = [num(k) for k in ("x_min", "y_min", "x_max", "y_max")]
    if roi_row.get("shape") != "image" and all(v is not None for v in box):
        return tuple(int(v) for v in box)
    cx, cy, r = num("center_x"), num("center_y"), num("radius_px")
    if roi_row.get("shape") == "circle" and None not in (cx, cy, r):
        return (int(np.floor(cx - r)), int(np.floor(cy - r)), int(np.ceil(cx + r)) + 1, int(np.ceil(cy + r)) + 1)
    return (0, 0, w, h)


MASKS_KEYS = ("min_area_mm2", "background_band_mm", "dilation_scales_mm")


def roi_masks_file(
    segment_npz: str | Path,
    roi_row: dict,
    params: dict | None,
    out_npz: str | Path,
    rejected_ids=(),
) -> dict:
    """Masks of one ROI from a segment npz; writes `out_npz` (contract arrays) atomically.

    roi_row : the ROI's rois.tsv row as a dict (bbox / circle columns, `shape`).
    params : the `masks` config section (defaults from masks.schema.yaml).
    rejected_ids : segment object ids that are not foreground: the candidates the
        selector scored below its operating point (`calcsig.segment.selector.rejected_object_ids`).
    """
    from calcsig.segment.store import read_segmentation
    from calcsig.settings import section_params

    p = section_params("masks", params, MASKS_KEYS)
    seg = read_segmentation(segment_npz)
    arrays = roi_masks(
        seg["labels"],
        roi_bbox(roi_row, seg["labels"].shape),
        seg["pixel_spacing_mm"],
        p["min_area_mm2"],
        p["background_band_mm"],
        p["dilation_scales_mm"],
        rejected_ids,
    )
    with atomic_path(out_npz) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return arrays
