"""Candidate detection on one image (breast + HDoG) and per-candidate features.

Features are measured in units that do not depend on bit depth or window:
millimetres for size, robust noise units (the finest DoG's MAD) for intensity.

Coarse images (coarser than `working_spacing_mm`, e.g. mini-MIAS films at
0.2 mm) are upsampled by an integer factor before detection: at 0.2 mm the
published smallest sigma (0.0826 mm) is 0.41 px, where a Gaussian is hardly a
blur and the finest DoG image is mostly pixel noise. Candidates are found and
measured on the working grid and their labels are mapped back, block by
block, to the image's own grid, which every later stage uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from calcsig.segment.breast import breast_mask
from calcsig.segment.hdog import HDoGResult, hdog_detect
from calcsig.segment.params import CANDIDATE_KEYS, HDOG_KEYS, segment_params

FEATURE_NAMES = (
    "area_mm2",
    "equivalent_diameter_mm",
    "elongation",
    "boundary_fraction",
    "dog_snr",
    "scale_mm",
    "contrast_snr",
    "peak_snr",
    "contrast_to_local_std",
    "local_std_snr",
    "neighbours_in_context",
)


@dataclass
class Candidates:
    """Objects found on one image, before any selection.

    labels : (H, W) int32; breast : (H, W) bool; hdog : the detector's result
    (dog_response and scale_px per object; its labels on the working grid);
    features : (n, len(FEATURE_NAMES)) float64 (measured on the working grid);
    centroid_yx_px : (n, 2); area_px : (n,) on the image's own grid;
    upsampling_factor : 1, or the integer factor the image was upsampled by for detection.
    """

    labels: np.ndarray
    breast: np.ndarray
    hdog: HDoGResult
    centroid_yx_px: np.ndarray
    area_px: np.ndarray
    features: np.ndarray
    upsampling_factor: int = 1


def object_geometry(labels: np.ndarray, n: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area (px), centroid (y, x) (px) and 2x2 pixel-coordinate covariance of objects 1..n."""
    n = int(labels.max()) if n is None else n
    if n == 0:
        return np.zeros(0), np.zeros((0, 2)), np.zeros((0, 2, 2))
    ys, xs = np.nonzero(labels)
    ids = labels[ys, xs]
    area = np.bincount(ids, minlength=n + 1)[1:].astype(np.float64)
    ys = ys.astype(np.float64)
    xs = xs.astype(np.float64)

    def mean_of(values):
        return np.bincount(ids, weights=values, minlength=n + 1)[1:] / np.maximum(area, 1)

    cy, cx = mean_of(ys), mean_of(xs)
    cov = np.empty((n, 2, 2))
    cov[:, 0, 0] = mean_of(ys * ys) - cy * cy
    cov[:, 1, 1] = mean_of(xs * xs) - cx * cx
    cov[:, 0, 1] = cov[:, 1, 0] = mean_of(ys * xs) - cy * cx
    return area, np.stack([cy, cx], axis=1), cov


def _box_sums(values: np.ndarray, centres: np.ndarray, half: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum of `values` and pixel count over (2*half+1)^2 boxes at integer centres (clipped)."""
    h, w = values.shape
    integral = np.zeros((h + 1, w + 1))
    np.cumsum(np.cumsum(values, axis=0, dtype=np.float64), axis=1, out=integral[1:, 1:])
    y0 = np.clip(centres[:, 0] - half, 0, h)
    y1 = np.clip(centres[:, 0] + half + 1, 0, h)
    x0 = np.clip(centres[:, 1] - half, 0, w)
    x1 = np.clip(centres[:, 1] + half + 1, 0, w)
    total = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    return total, ((y1 - y0) * (x1 - x0)).astype(np.float64)


def candidate_features(
    image_unit: np.ndarray,
    labels: np.ndarray,
    hdog: HDoGResult,
    pixel_spacing_mm: float,
    background_mm: float = 1.0,
    context_radius_mm: float = 5.0,
) -> np.ndarray:
    """Per-object features (rows in label order, columns `FEATURE_NAMES`).

    image_unit : image scaled to [0, 1] (as the detector saw it).
    background_mm : half-width (mm) of the square window around each centroid
        whose non-object pixels give the local background mean and std.
    context_radius_mm : radius (mm) within which other candidates are counted
        (calcifications come in clusters, noise peaks less so).

    Intensities are divided by the detector's robust noise estimate.
    """
    n = int(labels.max())
    if n == 0:
        return np.zeros((0, len(FEATURE_NAMES)))
    noise = hdog.noise if hdog.noise > 0 else 1.0
    area, centroid, cov = object_geometry(labels, n)
    eig = np.linalg.eigvalsh(cov)  # ascending
    minor = np.sqrt(np.maximum(eig[:, 0], 0)) + 0.5
    major = np.sqrt(np.maximum(eig[:, 1], 0)) + 0.5
    fg = labels > 0
    interior = ndi.binary_erosion(fg, structure=ndi.generate_binary_structure(2, 1))
    boundary = np.bincount(labels[fg & ~interior], minlength=n + 1)[1:]
    index = np.arange(1, n + 1)
    mean_in = np.asarray(ndi.mean(image_unit, labels, index))
    # maximum over object pixels only (ndi.maximum sorts the whole image)
    max_in = np.full(n + 1, -np.inf)
    np.maximum.at(max_in, labels[fg], image_unit[fg].astype(np.float64))
    max_in = max_in[1:]
    sum_in = mean_in * area
    sumsq_in = np.asarray(ndi.sum(image_unit.astype(np.float64) ** 2, labels, index))
    centres = np.rint(centroid).astype(np.int64)
    half = max(1, int(round(background_mm / pixel_spacing_mm)))
    box_sum, box_n = _box_sums(image_unit, centres, half)
    box_sumsq, _ = _box_sums(image_unit.astype(np.float64) ** 2, centres, half)
    # Object pixels outside the box (large objects) would make counts negative.
    bg_n = np.maximum(box_n - area, 1.0)
    bg_mean = np.clip(box_sum - sum_in, 0, None) / bg_n
    bg_var = np.maximum(np.clip(box_sumsq - sumsq_in, 0, None) / bg_n - bg_mean**2, 0)
    bg_std = np.sqrt(bg_var)
    contrast = mean_in - bg_mean
    tree = cKDTree(centroid * pixel_spacing_mm)
    neighbours = np.array([len(p) - 1 for p in tree.query_ball_point(centroid * pixel_spacing_mm, context_radius_mm)])
    columns = {
        "area_mm2": area * pixel_spacing_mm**2,
        "equivalent_diameter_mm": 2 * np.sqrt(area / np.pi) * pixel_spacing_mm,
        "elongation": major / minor,
        "boundary_fraction": boundary / area,
        "dog_snr": hdog.dog_response,
        "scale_mm": hdog.scale_px * pixel_spacing_mm,
        "contrast_snr": contrast / noise,
        "peak_snr": (max_in - bg_mean) / noise,
        "contrast_to_local_std": contrast / (bg_std + noise),
        "local_std_snr": bg_std / noise,
        "neighbours_in_context": neighbours.astype(np.float64),
    }
    return np.stack([columns[name] for name in FEATURE_NAMES], axis=1)


def _filter_by_area(hdog: HDoGResult, pixel_spacing_mm: float, min_area_mm2: float, max_area_mm2: float) -> HDoGResult:
    """Drop objects outside [min_area_mm2, max_area_mm2] (max <= 0: no upper limit); relabel 1..n."""
    n = int(hdog.labels.max())
    if n == 0:
        return hdog
    area_mm2 = np.bincount(hdog.labels.ravel(), minlength=n + 1)[1:] * pixel_spacing_mm**2
    keep = area_mm2 >= min_area_mm2
    if max_area_mm2 > 0:
        keep &= area_mm2 <= max_area_mm2
    if keep.all():
        return hdog
    lut = np.zeros(n + 1, dtype=np.int32)
    lut[1:][keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return HDoGResult(lut[hdog.labels], hdog.dog_response[keep], hdog.scale_px[keep], hdog.noise, hdog.threshold)


def upsampling_factor(pixel_spacing_mm: float, working_spacing_mm: float | None) -> int:
    """Smallest integer factor that brings `pixel_spacing_mm` to `working_spacing_mm` or finer
    (1 when the image is already that fine, or when `working_spacing_mm` is None)."""
    if working_spacing_mm is None or pixel_spacing_mm <= working_spacing_mm * (1 + 1e-9):
        return 1
    return int(math.ceil(pixel_spacing_mm / working_spacing_mm - 1e-9))


def spacing_plan(pixel_spacing_mm: float, sigma_min_mm: float, working_spacing_mm: float | None) -> dict:
    """How an image of `pixel_spacing_mm` is detected on: `working_spacing_mm` (mm), `resampled`,
    `upsampling_factor`, and the smallest DoG sigma in pixels there (`sigma_min_px`) and on the
    image's own grid (`sigma_min_px_native`)."""
    factor = upsampling_factor(pixel_spacing_mm, working_spacing_mm)
    working = pixel_spacing_mm / factor
    return {
        "pixel_spacing_mm": float(pixel_spacing_mm),
        "working_spacing_mm": float(working),
        "resampled": factor > 1,
        "upsampling_factor": factor,
        "sigma_min_px": float(sigma_min_mm / working),
        "sigma_min_px_native": float(sigma_min_mm / pixel_spacing_mm),
    }


def upsample(image: np.ndarray, factor: int) -> np.ndarray:
    """`image` (float32) on a grid `factor` times finer: cubic spline, pixels as areas
    (each pixel becomes a factor x factor block centred where it was)."""
    image = np.asarray(image, dtype=np.float32)
    if factor == 1:
        return image
    return ndi.zoom(image, factor, order=3, mode="reflect", grid_mode=True).astype(np.float32, copy=False)


def labels_to_native(labels: np.ndarray, factor: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Map a working-grid label image back to the image grid, one factor x factor block per pixel.

    A pixel takes the highest label present in its block, so even a one-pixel object
    of the working grid keeps a pixel. Returns (native labels relabelled 1..m in
    the original order, kept: (n,) bool per working-grid object, False for the rare
    object wholly covered by higher labels).
    """
    n = int(labels.max())
    if factor == 1:
        return labels, np.ones(n, dtype=bool)
    h, w = shape
    native = labels[: h * factor, : w * factor].reshape(h, factor, w, factor).max(axis=(1, 3))
    kept = np.zeros(n + 1, dtype=bool)
    kept[np.unique(native)] = True
    kept = kept[1:]
    lut = np.zeros(n + 1, dtype=np.int32)
    lut[1:][kept] = np.arange(1, int(kept.sum()) + 1, dtype=np.int32)
    return lut[native], kept


def detect_candidates(image: np.ndarray, pixel_spacing_mm: float, params: dict | None = None) -> Candidates:
    """Breast region, HDoG objects and their features (`FEATURE_NAMES`), for one image.

    `params` holds the `segment` config keys of `CANDIDATE_KEYS` (mm units;
    missing keys take the defaults of src/calcsig/schemas/config/segment.schema.yaml).
    An image coarser than `working_spacing_mm` is detected on an upsampled copy
    (`spacing_plan`); labels, areas and centroids are returned on the image's own grid.
    """
    p = segment_params(params, CANDIDATE_KEYS)
    image = np.asarray(image)
    breast = breast_mask(image, pixel_spacing_mm, p["skin_margin_mm"], p["border_margin_mm"])
    factor = upsampling_factor(pixel_spacing_mm, p["working_spacing_mm"])
    spacing = pixel_spacing_mm / factor
    lo, hi = float(image.min()), float(image.max())
    unit = (image.astype(np.float32) - np.float32(lo)) * np.float32(1.0 / (hi - lo) if hi > lo else 0.0)
    work = upsample(unit, factor)
    work_mask = np.repeat(np.repeat(breast, factor, axis=0), factor, axis=1) if factor > 1 else breast
    hdog = hdog_detect(work, spacing, work_mask, **{k: p[k] for k in HDOG_KEYS})
    hdog = _filter_by_area(hdog, spacing, p["min_area_mm2"], p["max_area_mm2"])
    features = candidate_features(work, hdog.labels, hdog, spacing, p["background_mm"], p["context_radius_mm"])
    labels, kept = labels_to_native(hdog.labels, factor, image.shape)
    # from here on in image pixels: labels on the image grid, scale_px so that scale_mm = scale_px * spacing
    hdog = HDoGResult(labels, hdog.dog_response[kept], hdog.scale_px[kept] / factor, hdog.noise, hdog.threshold)
    features = features[kept]
    area, centroid, _ = object_geometry(labels)
    return Candidates(labels, breast, hdog, centroid, area, features, factor)
