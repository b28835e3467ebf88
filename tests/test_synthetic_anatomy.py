"""Breast anatomy, parenchyma texture, noise and calibration."""

import numpy as np
import pytest

from calcsig.synthetic.acquisition import calibrate, quantum_noisy_attenuation
from calcsig.synthetic.anatomy import breast_geometry, glandular_fraction, power_law_texture


def _spectral_slope(field, low=0.02, high=0.25):
    """Slope of the radially averaged power spectrum in log-log, over [low, high] cycles/pixel."""
    power = np.abs(np.fft.fft2(field)) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(field.shape[0]), np.fft.fftfreq(field.shape[1]), indexing="ij")
    f = np.hypot(fy, fx).ravel()
    bins = np.geomspace(low, high, 20)
    which = np.digitize(f, bins)
    centres, means = [], []
    for k in range(1, len(bins)):
        sel = which == k
        centres.append(f[sel].mean())
        means.append(power.ravel()[sel].mean())
    return np.polyfit(np.log(centres), np.log(means), 1)[0]


@pytest.mark.parametrize("exponent", [3.0, 2.0])
def test_parenchyma_texture_has_the_requested_power_law(exponent):
    field = power_law_texture((512, 512), 0.1, np.random.default_rng(0), exponent=exponent)
    assert field.dtype == np.float32 and abs(field.mean()) < 1e-5 and field.std() == pytest.approx(1, abs=1e-4)
    assert _spectral_slope(field) == pytest.approx(-exponent, abs=0.25)


def test_white_noise_is_not_mistaken_for_a_power_law():
    assert abs(_spectral_slope(np.random.default_rng(0).standard_normal((512, 512)))) < 0.2


@pytest.mark.parametrize("view", ["CC", "MLO"])
def test_breast_thickness_falls_to_zero_at_the_skin_line(view):
    geometry = breast_geometry((400, 320), 0.1, view, "L", np.random.default_rng(1), skin_falloff_mm=5.0)
    t = geometry.thickness
    assert t.min() == 0.0 and t.max() == pytest.approx(1.0)
    assert t[:, 0].max() == pytest.approx(1.0)  # left breast: chest wall on the left edge
    row = t[200]
    edge = int(np.argmax(row == 0))  # first column outside the breast
    assert 0 < row[edge - 10] < row[edge - 30] <= 1.0  # the falloff spans the last 5 mm (50 px)
    assert (geometry.pectoral > 0).any() == (view == "MLO")
    assert not (geometry.interior & (t < 1)).any()
    mirrored = breast_geometry((400, 320), 0.1, view, "R", np.random.default_rng(1), skin_falloff_mm=5.0)
    assert np.allclose(mirrored.thickness, t[:, ::-1], atol=1e-5)


def test_glandular_share_follows_birads_density():
    rng = np.random.default_rng(2)
    texture = power_law_texture((256, 256), 0.1, rng)
    breast = np.ones(texture.shape, bool)
    shares = [float(glandular_fraction(texture, breast, d, np.random.default_rng(3)).mean()) for d in "ABCD"]
    assert shares == sorted(shares) and shares[0] < 0.25 and shares[3] > 0.65


def test_quantum_noise_is_larger_through_denser_tissue():
    rng = np.random.default_rng(4)
    for photons in (400.0, 20.0):  # Gaussian limit and exact Poisson draw
        low = quantum_noisy_attenuation(np.full((300, 300), 0.5, np.float32), photons, rng)
        high = quantum_noisy_attenuation(np.full((300, 300), 2.0, np.float32), photons, rng)
        # variance of -log(counts) is 1 / expected counts
        assert low.std() == pytest.approx(1 / np.sqrt(photons * np.exp(-0.5)), rel=0.15)
        assert high.std() > 1.5 * low.std()


def test_calibration_applies_site_gain_offset_and_bit_depth():
    mu = np.linspace(0, 5, 100, dtype=np.float32)[None, :]
    plain, site = calibrate(mu, 12, 1.0, 0.0), calibrate(mu, 12, 0.8, 0.1)
    assert plain.dtype == np.uint16 and plain.max() == 4095 and plain.min() == 0
    assert site[0, 0] == round(0.1 * 4095) and site[0, 50] < plain[0, 50]
    assert calibrate(mu, 16, 1.0, 0.0).max() == 65535
