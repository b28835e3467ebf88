"""Thirteen scikit-image region properties per object, lengths and areas in millimetres."""

from __future__ import annotations

import numpy as np
from skimage.measure import regionprops

REGIONPROPS_NAMES = (
    "rp_area_mm2",
    "rp_convex_area_mm2",
    "rp_major_axis_length_mm",
    "rp_minor_axis_length_mm",
    "rp_eccentricity",
    "rp_solidity",
    *(f"rp_hu_moment_{k}" for k in range(1, 8)),
)


def region_properties(foreground: np.ndarray, spacing_mm: float) -> np.ndarray:
    """Region properties of every object of a label image, one row per label 1..n.

    Parameters
    ----------
    foreground : int label image, objects labelled 1..n (0 = background).
    spacing_mm : pixel spacing in mm (square pixels).

    Returns
    -------
    (n, 13) float array, columns in the order of :data:`REGIONPROPS_NAMES`:
    area and convex-hull area in mm2 (pixel counts x spacing^2); major and minor
    axis lengths in mm (4 sqrt of the eigenvalues of the pixel-coordinate
    covariance, the ellipse with the same second moments, x spacing);
    eccentricity of that ellipse (0 for a circle, and for a one-pixel object whose
    moments vanish); solidity (area / convex area); the 7 Hu moment invariants
    (dimensionless; all 0 for a one-pixel object). A label with no pixels gives NaN.
    """
    n = int(foreground.max()) if foreground.size else 0
    out = np.full((n, len(REGIONPROPS_NAMES)), np.nan)
    if n == 0:
        return out
    area_scale = float(spacing_mm) ** 2
    for region in regionprops(np.asarray(foreground, dtype=np.int32)):
        major = region.axis_major_length
        minor = region.axis_minor_length
        # skimage divides by the major eigenvalue: 0/0 for one pixel, which is a
        # point (no elongation) rather than an undefined shape.
        eccentricity = region.eccentricity if major > 0 else 0.0
        out[region.label - 1] = (
            region.area * area_scale,
            region.area_convex * area_scale,
            major * spacing_mm,
            minor * spacing_mm,
            eccentricity,
            region.area / region.area_convex,
            *region.moments_hu,
        )
    return out
