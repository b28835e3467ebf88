"""Breast anatomy: outline with skin-line falloff, pectoral muscle, power-law parenchyma.

All functions are pure: arrays and physical parameters in, arrays out; random
draws come from the Generator passed in. Coordinates: rows (y) and columns (x)
in pixels, converted from millimetres with the pixel spacing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft

# Fraction of the breast area that is fibroglandular, per BI-RADS density
# category (A almost entirely fatty ... D extremely dense).
GLANDULAR_FRACTION = {"A": 0.12, "B": 0.3, "C": 0.55, "D": 0.78}

# Linear attenuation (log units at full compressed thickness) of the tissues.
MU_FAT = 0.9
MU_GLAND = 2.0
MU_PECTORAL_EXTRA = 0.7


def power_law_texture(
    shape: tuple[int, int],
    pixel_spacing_mm: float,
    rng: np.random.Generator,
    exponent: float = 3.0,
    largest_scale_mm: float = 40.0,
) -> np.ndarray:
    """Gaussian random field with power spectrum ~ 1 / f**exponent (anatomical noise).

    Parameters
    ----------
    shape : (rows, cols) in pixels.
    pixel_spacing_mm : pixel edge in mm; the spectrum is defined in cycles/mm so
        that the texture looks the same at any spacing.
    exponent : spectral exponent beta (about 3 for mammographic parenchyma).
    largest_scale_mm : below the frequency 1/largest_scale_mm the spectrum
        flattens, which keeps the variance finite.

    Returns
    -------
    float32 array of `shape`, zero mean and unit standard deviation.
    """
    white = rng.standard_normal(shape, dtype=np.float32)
    spectrum = fft.rfft2(white, workers=1)
    fy = fft.fftfreq(shape[0], d=pixel_spacing_mm).astype(np.float32)[:, None]
    fx = fft.rfftfreq(shape[1], d=pixel_spacing_mm).astype(np.float32)[None, :]
    f0 = np.float32(1.0 / largest_scale_mm)
    # amplitude f^(-beta/2) gives power f^(-beta)
    spectrum *= (fy * fy + fx * fx + f0 * f0) ** np.float32(-exponent / 4.0)
    field = fft.irfft2(spectrum, s=shape, workers=1).astype(np.float32)
    field -= field.mean()
    field /= field.std()
    return field


@dataclass(frozen=True)
class BreastGeometry:
    """One projection of a compressed breast.

    thickness : float32 in [0, 1], relative X-ray path length through the breast
        (1 in the interior, falling to 0 at the skin line).
    pectoral : float32 in [0, 1], relative path length through pectoral muscle (MLO only).
    interior : bool, breast tissue away from the skin line and the muscle,
        where clusters may be placed.
    """

    thickness: np.ndarray
    pectoral: np.ndarray
    interior: np.ndarray


def breast_geometry(
    shape: tuple[int, int],
    pixel_spacing_mm: float,
    view: str,
    laterality: str,
    rng: np.random.Generator,
    skin_falloff_mm: float = 10.0,
) -> BreastGeometry:
    """Draw a breast outline for one view.

    The chest wall is the left image edge for a left breast and the right edge
    for a right breast. The outline is a half-ellipse from the chest wall
    (taller in MLO, where it is cut by the field edges: a cropped field), and the
    path length falls to zero over `skin_falloff_mm` (mm) inside the skin line
    as through a rounded edge. MLO views add a triangular pectoral muscle at the
    upper chest-wall corner.
    """
    rows, cols = shape
    height_mm, width_mm = rows * pixel_spacing_mm, cols * pixel_spacing_mm
    y = (np.arange(rows, dtype=np.float32) + 0.5)[:, None] * pixel_spacing_mm
    depth = (np.arange(cols, dtype=np.float32) + 0.5)[None, :] * pixel_spacing_mm  # distance from chest wall
    if laterality == "R":
        depth = depth[:, ::-1]
    nipple_depth = rng.uniform(0.72, 0.9) * width_mm
    if view == "MLO":
        half_height, centre = rng.uniform(0.5, 0.62) * height_mm, rng.uniform(0.52, 0.6) * height_mm
    else:
        half_height, centre = rng.uniform(0.4, 0.48) * height_mm, rng.uniform(0.47, 0.53) * height_mm
    rho = np.sqrt((depth / nipple_depth) ** 2 + ((y - centre) / half_height) ** 2)
    # distance inside the skin line, approximated along the ellipse's radius
    inside_mm = (1.0 - rho) * min(nipple_depth, half_height)
    u = np.clip(inside_mm / skin_falloff_mm, 0.0, 1.0)
    thickness = np.sqrt(u * (2.0 - u)).astype(np.float32)

    pectoral = np.zeros(shape, dtype=np.float32)
    if view == "MLO":
        base_mm, length_mm = rng.uniform(0.22, 0.35) * width_mm, rng.uniform(0.45, 0.7) * height_mm
        # signed distance (mm) inside the muscle edge line from (base, 0) to (0, length)
        edge = (1.0 - depth / base_mm - y / length_mm) * (base_mm * length_mm) / np.hypot(base_mm, length_mm)
        pectoral = (np.clip(edge / 2.0, 0.0, 1.0) * thickness).astype(np.float32)
    interior = (inside_mm >= skin_falloff_mm) & (pectoral <= 0.0)
    return BreastGeometry(thickness=thickness, pectoral=pectoral, interior=interior)


def glandular_fraction(
    texture: np.ndarray, breast: np.ndarray, density: str, rng: np.random.Generator, softness: float = 0.9
) -> np.ndarray:
    """Fibroglandular fraction in [0, 1] per pixel from a texture and a BI-RADS density.

    A soft threshold (logistic, `softness` texture standard deviations wide,
    which keeps the power-law character inside dense regions rather than flat
    plateaus) placed so that the mean glandular fraction over the breast
    (`breast`, bool) matches the density category, jittered per subject.
    """
    share = float(np.clip(GLANDULAR_FRACTION[density] + rng.normal(0.0, 0.04), 0.03, 0.95))
    values = (texture[breast] if breast.any() else texture.ravel())[::31]  # a subsample fixes the level
    low, high = float(values.min()) - 10 * softness, float(values.max()) + 10 * softness
    for _ in range(30):  # bisection: the mean fraction falls as the threshold rises
        threshold = 0.5 * (low + high)
        if np.mean(1.0 / (1.0 + np.exp(-(values - threshold) / softness))) > share:
            low = threshold
        else:
            high = threshold
    return (1.0 / (1.0 + np.exp(-(texture - threshold) / softness))).astype(np.float32)


def tissue_attenuation(geometry: BreastGeometry, glandular: np.ndarray) -> np.ndarray:
    """Total attenuation (log units) through fat, glandular tissue and pectoral muscle."""
    tissue = geometry.thickness * (MU_FAT + (MU_GLAND - MU_FAT) * glandular)
    return (tissue + MU_PECTORAL_EXTRA * geometry.pectoral).astype(np.float32)
