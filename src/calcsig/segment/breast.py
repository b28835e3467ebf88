"""Breast region: the tissue a calcification can lie in, minus skin line and border.

The region is found on a coarse copy of the image (about 0.5 mm per pixel):
the breast outline is a large, smooth shape, and working coarse keeps this step
a small fraction of the segmentation time on full-field images.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

COARSE_SPACING_MM = 0.5


def _block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over factor x factor blocks (edge blocks padded by reflection)."""
    if factor == 1:
        return image.astype(np.float32, copy=False)
    h, w = image.shape
    ph, pw = (-h) % factor, (-w) % factor
    padded = np.pad(image.astype(np.float32, copy=False), ((0, ph), (0, pw)), mode="edge")
    return padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor).mean(axis=(1, 3))


def breast_mask(
    image: np.ndarray, pixel_spacing_mm: float, skin_margin_mm: float = 1.0, border_margin_mm: float = 2.0
) -> np.ndarray:
    """Boolean mask of the breast, with the skin line and image border excluded.

    Parameters
    ----------
    image : (H, W) array
        Mammogram, calcifications bright (any integer or float dtype).
    pixel_spacing_mm : float
        Pixel edge in mm.
    skin_margin_mm : float
        Width in mm removed inside the breast outline (skin line artefacts).
    border_margin_mm : float
        Width in mm removed along the four image edges (collimator, scanner border).

    Returns
    -------
    (H, W) bool array. The breast is the largest connected component above an
    Otsu threshold (computed on a ~0.5 mm copy, with the
    border band already removed so that labels touching an image edge stay
    apart), with holes filled; labels, markers and text are separate, smaller
    components and are excluded. A constant image has no foreground to
    separate, so the whole field (minus the border margin) is returned.
    """
    image = np.asarray(image)
    h, w = image.shape
    factor = max(1, int(round(COARSE_SPACING_MM / pixel_spacing_mm)))
    coarse = _block_mean(image, factor)
    coarse_spacing = pixel_spacing_mm * factor
    if float(coarse.max()) <= float(coarse.min()):
        region = np.ones(coarse.shape, dtype=bool)
    else:
        smooth = ndi.median_filter(coarse, size=3)
        region = smooth > threshold_otsu(smooth)
        # cut the border band first: a film label touching the same edge as the breast
        # would otherwise join the breast's component through the edge rows
        band = np.zeros(region.shape, dtype=bool)
        edge = int(np.ceil(border_margin_mm / coarse_spacing))
        if 0 < edge and 2 * edge < min(region.shape):
            band[:edge, :] = band[-edge:, :] = True
            band[:, :edge] = band[:, -edge:] = True
        region &= ~band
        labels, n = ndi.label(region)
        if n > 1:
            sizes = np.bincount(labels.ravel())
            sizes[0] = 0
            region = labels == int(np.argmax(sizes))
        region = ndi.binary_fill_holes(region)
        if skin_margin_mm > 0:
            inside = ndi.distance_transform_edt(np.pad(region | band, 1, constant_values=True))[1:-1, 1:-1]
            # The image edge is not the skin line: the border band and the outside
            # count as breast, so only the tissue/air boundary is eroded here.
            region &= inside * coarse_spacing > skin_margin_mm
    full = np.repeat(np.repeat(region, factor, axis=0), factor, axis=1)[:h, :w]
    border_px = int(np.ceil(border_margin_mm / pixel_spacing_mm))
    if border_px > 0:
        full[:border_px, :] = False
        full[-border_px:, :] = False
        full[:, :border_px] = False
        full[:, -border_px:] = False
    return full
