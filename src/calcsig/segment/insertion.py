"""Lesion insertion: synthetic calcification clusters in real normal films, with exact truth.

Real films with pixel-level calcification truth are scarce; normal films are
not. Inserting simulated clusters into real normals gives real parenchyma,
real film noise and real false positives around calcifications whose every
pixel is known, which is the standard way to measure a detector on real
backgrounds.

How an inserted cluster is matched to its film:
- geometry: the cluster is designed in millimetres (`calcsig.synthetic.calcifications`,
  the synthetic corpus's generator) and rendered at the film's own pixel
  spacing, integrating each calcification over the pixel area (partial volume),
  then blurred by a Gaussian point-spread function given in mm;
- contrast: the rendered attenuation is scaled so that the cluster's median
  calcification peaks at `contrast_snr` times the film's local noise (the
  robust standard deviation of pixel noise within 10 mm of the cluster,
  estimated from the film's finest high-pass residual), so a cluster is as
  conspicuous on a noisy dense film as on a quiet fatty one; calcifications
  within the cluster keep their designed relative attenuations;
- quantisation: the sum is rounded and clipped to the film's stored range (the
  noise of an integer film is never taken below its rounding noise, 1/sqrt(12)).
The inserted signal adds to the film; the film's own noise stays as it was.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from calcsig.synthetic.calcifications import FINE_CLASSES, design_cluster, render_cluster

NOISE_WINDOW_MM = 10.0
# the high-pass residual image - gaussian(image, HIGHPASS_SIGMA_PX) measures the finest-scale noise
HIGHPASS_SIGMA_PX = 1.0
# std of rounding to integers (1 / sqrt(12) of a grey level): the noise floor of an integer film
QUANTISATION_NOISE = 1.0 / np.sqrt(12.0)
# space kept free between inserted clusters and between a cluster and the breast's edge
CLUSTER_GAP_MM = 2.0


@dataclass(frozen=True)
class InsertedCluster:
    """One inserted cluster: centre (row, col) px, radius mm, fine class, contrast (noise units),
    local noise (image units), and the truth labels (first, last) it occupies."""

    centre_yx_px: tuple[float, float]
    radius_mm: float
    fine_class: str
    contrast_snr: float
    local_noise: float
    labels: tuple[int, int]


def _residual_noise_factor(sigma_px: float) -> float:
    """Std of (x - gaussian(x, sigma)) for white x of unit std (the residual's noise gain)."""
    impulse = np.zeros((41, 41))
    impulse[20, 20] = 1.0
    kernel = impulse - ndi.gaussian_filter(impulse, sigma_px)
    return float(np.sqrt((kernel**2).sum()))


def local_noise(
    residual: np.ndarray, mask: np.ndarray, centre_yx_px, pixel_spacing_mm: float, window_mm: float = NOISE_WINDOW_MM
) -> float:
    """Robust pixel-noise std (image units) within `window_mm` (half-width) of the centre.

    residual : image - gaussian(image, HIGHPASS_SIGMA_PX), whose 1.4826 MAD inside
    `mask` is divided by the residual's noise gain for white noise. Falls back to the
    whole mask when the window holds fewer than 50 breast pixels.
    """
    half = int(round(window_mm / pixel_spacing_mm))
    cy, cx = int(round(centre_yx_px[0])), int(round(centre_yx_px[1]))
    window = (slice(max(cy - half, 0), cy + half + 1), slice(max(cx - half, 0), cx + half + 1))
    values = residual[window][mask[window]]
    if values.size < 50:
        values = residual[mask]
    if values.size == 0:
        return 0.0
    mad = float(np.median(np.abs(values - np.median(values))))
    return 1.4826 * mad / _residual_noise_factor(HIGHPASS_SIGMA_PX)


def _calcification_peaks(attenuation: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Peak attenuation over each calcification's truth pixels (labels 1..n of the patch)."""
    n = int(labels.max())
    if n == 0:
        return np.zeros(0)
    return np.asarray(ndi.maximum(attenuation, labels, np.arange(1, n + 1)), dtype=np.float64)


def film_rng(seed: int, image_id: str) -> np.random.Generator:
    """The random stream of one film's insertions: the top-level seed and the image's ID."""
    digest = int.from_bytes(hashlib.sha256(str(image_id).encode()).digest()[:8], "big")
    return np.random.default_rng([int(seed), digest])


def insert_clusters(
    image: np.ndarray,
    pixel_spacing_mm: float,
    breast: np.ndarray,
    rng: np.random.Generator,
    n_clusters: int = 2,
    contrast_snr: tuple[float, float] = (3.0, 10.0),
    psf_sigma_mm: float = 0.06,
    max_radius_mm: float = 8.0,
) -> tuple[np.ndarray, np.ndarray, list[InsertedCluster]]:
    """Insert `n_clusters` simulated calcification clusters into a (normal) film.

    Parameters
    ----------
    image : (H, W) film, calcifications bright, any integer or float dtype.
    pixel_spacing_mm : the film's pixel edge (mm); clusters are rendered on its grid.
    breast : (H, W) bool, where clusters may lie (each lies wholly inside, `CLUSTER_GAP_MM`
        from its edge and from the other clusters).
    rng : the random stream (see `film_rng`).
    n_clusters : clusters wanted; fewer when the breast has no room left.
    contrast_snr : (low, high) range of each cluster's median calcification peak, in units
        of the local pixel noise.
    psf_sigma_mm : Gaussian PSF (mm) after partial-volume rendering.
    max_radius_mm : cluster layouts are shrunk to fit a disk of this radius (mm).

    Returns
    -------
    (image with clusters in the input dtype, truth label image int32 (0 background,
    1..n calcifications), the clusters as inserted).
    """
    image = np.asarray(image)
    work = image.astype(np.float64)
    residual = work - ndi.gaussian_filter(work, HIGHPASS_SIGMA_PX)
    truth = np.zeros(image.shape, dtype=np.int32)
    free = breast.copy()
    clusters: list[InsertedCluster] = []
    gap_px = CLUSTER_GAP_MM / pixel_spacing_mm
    # distance to the nearest pixel outside the breast, to place whole clusters inside it
    inside_distance = ndi.distance_transform_edt(free)
    for _ in range(n_clusters):
        fine_class = str(rng.choice(FINE_CLASSES))
        design = design_cluster(fine_class, rng, max_radius_mm)
        needed = design.radius_mm / pixel_spacing_mm + gap_px
        room = np.flatnonzero((inside_distance >= needed).ravel() & free.ravel())
        if room.size == 0:
            break
        cy, cx = np.unravel_index(int(room[rng.integers(room.size)]), image.shape)
        centre = (float(cy) + 0.5, float(cx) + 0.5)
        drawn = render_cluster(design, centre, image.shape, pixel_spacing_mm, psf_sigma_mm)
        peaks = _calcification_peaks(drawn.attenuation, drawn.labels.astype(np.int32))
        if peaks.size == 0 or np.median(peaks) <= 0:
            continue
        noise = local_noise(residual, breast, centre, pixel_spacing_mm)
        if np.issubdtype(image.dtype, np.integer):
            # a flat (e.g. saturated) region still has the stored grid's rounding noise
            noise = max(noise, QUANTISATION_NOISE)
        contrast = float(rng.uniform(*contrast_snr))
        scale = contrast * noise / float(np.median(peaks))
        r0, r1, c0, c1 = drawn.box
        work[r0:r1, c0:c1] += scale * drawn.attenuation
        offset = int(truth.max())
        patch = truth[r0:r1, c0:c1]
        new = drawn.labels > 0
        patch[new] = drawn.labels[new].astype(np.int32) + offset
        clusters.append(
            InsertedCluster(centre, design.radius_mm, fine_class, contrast, noise, (offset + 1, int(truth.max())))
        )
        # keep later clusters clear of this one
        yy, xx = np.ogrid[: image.shape[0], : image.shape[1]]
        free &= np.hypot(yy + 0.5 - centre[0], xx + 0.5 - centre[1]) > 2 * (max_radius_mm / pixel_spacing_mm + gap_px)
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        out = np.clip(np.rint(work), info.min, info.max).astype(image.dtype)
    else:
        out = work.astype(image.dtype)
    return out, truth, clusters
