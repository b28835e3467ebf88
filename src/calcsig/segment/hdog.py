"""Hessian Difference-of-Gaussians (HDoG) candidate detection.

The method follows the published HDoGReg segmentation stage (Marasinou et al.
2021): a stack of scale-normalised DoG images, 3x3x3 local maxima above a
threshold as seeds, and per scale the Hessian of the DoG image to delineate
each blob; an object is the connected component of the Hessian mask that holds
a seed, and objects are united over scales.

Two implementations share every definition here: `hdog_detect` (float32, work
restricted to the breast bounding box, incremental Gaussian blurring, seeds
searched only among supra-threshold pixels) and `hdog_detect_reference` (float64,
every scale filtered from the original image on the full field, dense local
maximum filter); `benchmarks/segment.py` times them side by side and checks
that they find the same objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

MAD_TO_SIGMA = 1.4826
# Gaussian kernels are truncated at this many sigmas (scipy's default).
TRUNCATE = 4.0


@dataclass
class HDoGResult:
    """What the detector found on one image.

    labels : (H, W) int32, objects 1..n (0 = background).
    dog_response : (n,) peak DoG value of each object in noise units (robust SNR).
    scale_px : (n,) sigma (px) of the scale holding that peak.
    noise : robust noise estimate of the finest DoG image (scaled-image units).
    threshold : seed threshold actually used (scaled-image units).
    """

    labels: np.ndarray
    dog_response: np.ndarray
    scale_px: np.ndarray
    noise: float
    threshold: float


def dog_sigmas_px(sigma_min_mm: float, sigma_max_mm: float, sigma_ratio: float, pixel_spacing_mm: float) -> np.ndarray:
    """Gaussian sigmas (px) of the DoG stack; len = number of DoG images + 1.

    As in skimage's blob_dog (and HDoGReg): k = int(log(max/min)/log(ratio) + 1)
    DoG images from sigma_min * ratio**i, i = 0..k. The published 1.18 to 3.1 px
    at 0.07 mm (0.0826 to 0.217 mm) with ratio 1.6 gives 1.18, 1.89, 3.02, 4.83 px.
    """
    if not (sigma_max_mm >= sigma_min_mm > 0 and sigma_ratio > 1):
        raise ValueError("need 0 < sigma_min_mm <= sigma_max_mm and sigma_ratio > 1")
    k = int(math.log(sigma_max_mm / sigma_min_mm) / math.log(sigma_ratio) + 1)
    s0 = sigma_min_mm / pixel_spacing_mm
    return np.array([s0 * sigma_ratio**i for i in range(k + 1)])


def scale_to_unit(image: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Image mapped linearly to [0, 1] by its min and max (constant image -> zeros)."""
    image = np.asarray(image)
    lo, hi = float(image.min()), float(image.max())
    out = image.astype(dtype)
    out -= dtype(lo)
    if hi > lo:
        out *= dtype(1.0 / (hi - lo))
    return out


def robust_noise(dog0: np.ndarray, mask: np.ndarray, offset_yx: tuple[int, int] = (0, 0)) -> float:
    """1.4826 * MAD of the finest DoG image inside `mask` (scaled-image units).

    Sampled on every second row and column of the *image* grid (aligned with
    `offset_yx`, so a crop and the full field sample the same pixels). The finest
    DoG is a band-pass image, so its MAD measures noise (plus fine texture),
    independently of bit depth, window and global contrast.
    """
    r0, c0 = (offset_yx[0] % 2), (offset_yx[1] % 2)
    values = dog0[r0::2, c0::2][mask[r0::2, c0::2]].astype(np.float64)
    if values.size == 0:
        return 0.0
    med = np.median(values)
    return float(MAD_TO_SIGMA * np.median(np.abs(values - med)))


def seed_threshold(noise: float, threshold_mode: str, threshold_abs: float, threshold_noise: float) -> float:
    """Seed threshold in scaled-image units.

    `absolute`: `threshold_abs` on the [0, 1] image (published value 0.006).
    `noise`: `threshold_noise` times the robust noise of the finest DoG, so one
    value serves 8-bit films and 16-bit digital images. A noiseless image has no
    noise to measure; its threshold falls back to `threshold_abs`.
    """
    if threshold_mode == "absolute":
        return float(threshold_abs)
    if threshold_mode != "noise":
        raise ValueError(f"threshold_mode must be 'noise' or 'absolute', got {threshold_mode!r}")
    return float(threshold_noise * noise) if noise > 0 else float(threshold_abs)


def hessian_blob_mask(dog: np.ndarray, h_thr: float) -> np.ndarray:
    """Pixels where the DoG image is blob-like (bright, locally convex).

    Hessian by central differences applied twice (np.gradient convention:
    d2/dy2 f = (f[y+2] - 2 f[y] + f[y-2]) / 4); kept where trace < 0 and
    (det > 0 or |det| / trace**2 < h_thr). The two outermost rows/columns are
    never kept (their second differences are undefined).
    """
    d = dog
    out = np.zeros(d.shape, dtype=bool)
    if d.shape[0] < 5 or d.shape[1] < 5:
        return out
    # Factors of 1/4 cancel in the sign tests and in |det|/trace^2. Temporaries
    # are reused in place: on full-field images allocation dominates arithmetic.
    c = d[2:-2, 2:-2]
    hyy = np.add(d[4:, 2:-2], d[:-4, 2:-2])
    hyy -= c
    hyy -= c
    hxx = np.add(d[2:-2, 4:], d[2:-2, :-4])
    hxx -= c
    hxx -= c
    trace = np.add(hyy, hxx)
    det = np.multiply(hyy, hxx, out=hyy)
    hxy = np.subtract(d[3:-1, 3:-1], d[3:-1, 1:-3], out=hxx)
    hxy -= d[1:-3, 3:-1]
    hxy += d[1:-3, 1:-3]
    hxy *= hxy
    det -= hxy
    # (det > 0 or |det| < h_thr trace^2) is exactly det > -h_thr trace^2 (trace^2 >= 0).
    bound = np.multiply(trace, trace, out=hxy)
    bound *= -h_thr
    keep = out[2:-2, 2:-2]
    np.greater(det, bound, out=keep)
    keep &= trace < 0
    return out


def _gaussian_stack(image: np.ndarray, sigmas: np.ndarray) -> list[np.ndarray]:
    """Gaussian blurs at `sigmas`, each from the previous (sigma_add = sqrt(s1^2 - s0^2))."""
    blurred = [ndi.gaussian_filter(image, sigmas[0], truncate=TRUNCATE)]
    for s0, s1 in zip(sigmas[:-1], sigmas[1:]):
        blurred.append(ndi.gaussian_filter(blurred[-1], math.sqrt(s1 * s1 - s0 * s0), truncate=TRUNCATE))
    return blurred


def _seeds_sparse(stack: np.ndarray, threshold: float, mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """3x3x3 local maxima above threshold inside mask, tested only at supra-threshold pixels."""
    n, h, w = stack.shape
    k, y, x = np.nonzero((stack > threshold) & mask[None])
    keep = np.ones(k.size, dtype=bool)
    value = stack[k, y, x]
    for dk in (-1, 0, 1):
        kk = k + dk
        valid_k = (kk >= 0) & (kk < n)
        kk = np.clip(kk, 0, n - 1)
        for dy in (-1, 0, 1):
            yy = np.clip(y + dy, 0, h - 1)
            for dx in (-1, 0, 1):
                if dk == dy == dx == 0:
                    continue
                xx = np.clip(x + dx, 0, w - 1)
                keep &= ~valid_k | (stack[kk, yy, xx] <= value)
    return k[keep], y[keep], x[keep]


def _objects_from_seeds(
    blob_masks: dict[int, np.ndarray],
    seeds: tuple[np.ndarray, ...],
    stack: np.ndarray,
    mask: np.ndarray,
    shape: tuple[int, int],
    sigmas: np.ndarray,
    noise: float,
):
    """Union over scales of Hessian components holding a seed, then per-object attributes."""
    k, y, x = seeds
    union = np.zeros(shape, dtype=bool)
    structure = np.ones((3, 3), dtype=bool)
    for scale, blob in blob_masks.items():
        sel = k == scale
        blob = blob & mask
        comp, _ = ndi.label(blob, structure=structure)
        ids = np.unique(comp[y[sel], x[sel]])
        ids = ids[ids > 0]
        if ids.size:
            lut = np.zeros(comp.max() + 1, dtype=bool)
            lut[ids] = True
            union |= lut[comp]
    labels, n = ndi.label(union, structure=structure)
    labels = labels.astype(np.int32, copy=False)
    response = np.zeros(n, dtype=np.float64)
    scale_px = np.zeros(n, dtype=np.float64)
    if n:
        obj = labels[y, x]
        val = stack[k, y, x].astype(np.float64)
        inside = obj > 0
        obj, val, kk = obj[inside], val[inside], k[inside]
        order = np.lexsort((val, obj))  # per object, strongest seed last
        last = np.r_[obj[order][1:] != obj[order][:-1], True]
        idx = order[last]
        response[obj[idx] - 1] = val[idx] / noise if noise > 0 else val[idx]
        scale_px[obj[idx] - 1] = sigmas[kk[idx]]
    return labels, response, scale_px


def _check(h_thr: float, threshold_mode: str):
    if h_thr <= 0:
        raise ValueError("h_thr must be positive")
    if threshold_mode not in ("noise", "absolute"):
        raise ValueError(f"threshold_mode must be 'noise' or 'absolute', got {threshold_mode!r}")


def hdog_detect(
    image: np.ndarray,
    pixel_spacing_mm: float,
    mask: np.ndarray | None = None,
    *,
    sigma_min_mm: float = 0.0826,
    sigma_max_mm: float = 0.217,
    sigma_ratio: float = 1.6,
    h_thr: float = 1.4,
    threshold_mode: str = "noise",
    threshold_abs: float = 0.006,
    threshold_noise: float = 4.0,
) -> HDoGResult:
    """Detect bright blob-like objects (calcification candidates).

    Parameters
    ----------
    image : (H, W) array, calcifications bright; scaled to [0, 1] by min/max.
    pixel_spacing_mm : pixel edge in mm; converts every spatial parameter.
    mask : (H, W) bool, where seeds and objects may lie (the breast); all if None.
    sigma_min_mm, sigma_max_mm, sigma_ratio : DoG scales in mm (see `dog_sigmas_px`).
    h_thr : Hessian shape threshold on |det| / trace**2 (dimensionless).
    threshold_mode, threshold_abs, threshold_noise : seed threshold (see `seed_threshold`).

    Returns
    -------
    HDoGResult; the labels cover the full image.

    Work is restricted to the bounding box of `mask`, padded by the Gaussian
    support of the largest scale so filter values inside the mask equal the
    full-field ones; the blurs are incremental, in float32.
    """
    _check(h_thr, threshold_mode)
    image = np.asarray(image)
    h, w = image.shape
    if mask is None:
        mask = np.ones((h, w), dtype=bool)
    sigmas = dog_sigmas_px(sigma_min_mm, sigma_max_mm, sigma_ratio, pixel_spacing_mm)
    empty = HDoGResult(np.zeros((h, w), np.int32), np.zeros(0), np.zeros(0), 0.0, 0.0)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return empty
    cols = np.flatnonzero(mask.any(axis=0))
    pad = int(math.ceil(TRUNCATE * sigmas[-1])) + 3
    y0, y1 = max(rows[0] - pad, 0), min(rows[-1] + 1 + pad, h)
    x0, x1 = max(cols[0] - pad, 0), min(cols[-1] + 1 + pad, w)
    lo, hi = float(image.min()), float(image.max())
    crop = image[y0:y1, x0:x1].astype(np.float32)
    crop -= np.float32(lo)
    if hi > lo:
        crop *= np.float32(1.0 / (hi - lo))
    sub_mask = mask[y0:y1, x0:x1]
    blurred = _gaussian_stack(crop, sigmas)
    del crop
    factor = np.float32(sigmas[0] / (sigmas[1] - sigmas[0]))  # = sigma_i/(sigma_{i+1}-sigma_i), all i
    stack = np.empty((len(sigmas) - 1,) + blurred[0].shape, dtype=np.float32)
    for i in range(len(sigmas) - 1):
        np.subtract(blurred[i], blurred[i + 1], out=stack[i])
        stack[i] *= factor
    del blurred
    noise = robust_noise(stack[0], sub_mask, (y0, x0))
    thr = seed_threshold(noise, threshold_mode, threshold_abs, threshold_noise)
    seeds = _seeds_sparse(stack, thr, sub_mask)
    blob_masks = {int(s): hessian_blob_mask(stack[s], h_thr) for s in np.unique(seeds[0])}
    sub_labels, response, scale_px = _objects_from_seeds(
        blob_masks, seeds, stack, sub_mask, sub_mask.shape, sigmas, noise
    )
    labels = np.zeros((h, w), dtype=np.int32)
    labels[y0:y1, x0:x1] = sub_labels
    return HDoGResult(labels, response, scale_px, noise, thr)


def hdog_detect_reference(
    image: np.ndarray,
    pixel_spacing_mm: float,
    mask: np.ndarray | None = None,
    *,
    sigma_min_mm: float = 0.0826,
    sigma_max_mm: float = 0.217,
    sigma_ratio: float = 1.6,
    h_thr: float = 1.4,
    threshold_mode: str = "noise",
    threshold_abs: float = 0.006,
    threshold_noise: float = 4.0,
) -> HDoGResult:
    """Straightforward HDoG (float64, full field, each scale blurred from the image,
    dense 3x3x3 maximum filter, Hessian of every DoG image). Same definitions and
    parameters as `hdog_detect`; kept as the benchmark's and tests' yardstick."""
    _check(h_thr, threshold_mode)
    image = scale_to_unit(image, np.float64)
    if mask is None:
        mask = np.ones(image.shape, dtype=bool)
    sigmas = dog_sigmas_px(sigma_min_mm, sigma_max_mm, sigma_ratio, pixel_spacing_mm)
    blurred = [ndi.gaussian_filter(image, s, truncate=TRUNCATE) for s in sigmas]
    stack = np.stack(
        [(blurred[i] - blurred[i + 1]) * sigmas[i] / (sigmas[i + 1] - sigmas[i]) for i in range(len(sigmas) - 1)]
    )
    noise = robust_noise(stack[0], mask)
    thr = seed_threshold(noise, threshold_mode, threshold_abs, threshold_noise)
    peaks = (stack == ndi.maximum_filter(stack, size=3, mode="nearest")) & (stack > thr) & mask[None]
    seeds = np.nonzero(peaks)
    blob_masks = {s: hessian_blob_mask(stack[s], h_thr) for s in range(stack.shape[0])}
    labels, response, scale_px = _objects_from_seeds(blob_masks, seeds, stack, mask, image.shape, sigmas, noise)
    return HDoGResult(labels, response, scale_px, noise, thr)
