"""Image formation: X-ray quantum noise and a site's intensity calibration."""

from __future__ import annotations

import numpy as np

# Attenuation (log units) mapped to the top of the stored range at gain 1;
# leaves headroom for dense tissue plus pectoral muscle plus calcifications.
MU_FULL_SCALE = 4.0


def quantum_noisy_attenuation(
    attenuation: np.ndarray, photons_per_pixel: float, rng: np.random.Generator
) -> np.ndarray:
    """Measured attenuation after photon counting (quantum noise).

    Counts are Poisson with mean photons_per_pixel * exp(-attenuation); the
    returned -log(counts / photons_per_pixel) is what a "for presentation"
    image shows, so noise is larger where tissue is denser, as in real images.
    When every pixel expects at least 50 quanta the Poisson draw is replaced by
    its Gaussian limit (variance of -log counts = 1 / expected counts), which
    is indistinguishable there and several times faster.
    """
    attenuation = attenuation.astype(np.float32)
    if photons_per_pixel * np.exp(-float(attenuation.max())) >= 50.0:
        sd = np.exp(attenuation * np.float32(0.5)) * np.float32(1.0 / np.sqrt(photons_per_pixel))
        return attenuation + rng.standard_normal(attenuation.shape, dtype=np.float32) * sd
    counts = rng.poisson(photons_per_pixel * np.exp(-attenuation.astype(np.float64)))
    return (-np.log(np.maximum(counts, 1) / photons_per_pixel)).astype(np.float32)


def calibrate(attenuation: np.ndarray, bits: int, gain: float, offset: float) -> np.ndarray:
    """Stored integer values: offset * full + gain * attenuation / MU_FULL_SCALE * full.

    Parameters
    ----------
    attenuation : measured attenuation (log units).
    bits : stored bits; full = 2**bits - 1 and values are clipped to [0, full].
    gain, offset : the site's calibration (offset as a fraction of full).

    Returns a uint16 array.
    """
    full = float(2**bits - 1)
    stored = offset * full + gain * (attenuation / MU_FULL_SCALE) * full
    return np.clip(np.rint(stored), 0, full).astype(np.uint16)
