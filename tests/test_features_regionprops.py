"""Region properties against analytic values of drawn shapes."""

import math

import numpy as np
import pytest
from skimage.draw import ellipse

from calcsig.features.regionprops import REGIONPROPS_NAMES, region_properties

SPACING = 0.1  # mm


def _ellipse_image(a: float, b: float, angle: float = 0.0) -> np.ndarray:
    image = np.zeros((161, 161), np.int32)
    rr, cc = ellipse(80, 80, a, b, shape=image.shape, rotation=angle)
    image[rr, cc] = 1
    return image


def _props(image):
    return dict(zip(REGIONPROPS_NAMES, region_properties(image, SPACING)[0]))


def test_names_are_thirteen_and_prefixed():
    assert len(REGIONPROPS_NAMES) == 13 == len(set(REGIONPROPS_NAMES))
    assert all(n.startswith("rp_") for n in REGIONPROPS_NAMES)


@pytest.mark.parametrize("angle", [0.0, 0.6])
def test_drawn_ellipse_matches_analytic_area_axes_and_moments(angle):
    a, b = 40.0, 15.0  # semi-axes in px
    p = _props(_ellipse_image(a, b, angle))
    assert p["rp_area_mm2"] == pytest.approx(math.pi * a * b * SPACING**2, rel=0.02)
    # one pixel of tolerance on each axis length
    assert p["rp_major_axis_length_mm"] == pytest.approx(2 * a * SPACING, abs=SPACING)
    assert p["rp_minor_axis_length_mm"] == pytest.approx(2 * b * SPACING, abs=SPACING)
    assert p["rp_eccentricity"] == pytest.approx(math.sqrt(1 - (b / a) ** 2), abs=0.01)
    assert 0.97 < p["rp_solidity"] <= 1.0
    assert p["rp_area_mm2"] <= p["rp_convex_area_mm2"] < 1.03 * p["rp_area_mm2"]
    # continuous ellipse: nu20 = a / (4 pi b), nu02 = b / (4 pi a); odd moments vanish
    hu1 = (a * a + b * b) / (4 * math.pi * a * b)
    hu2 = ((a * a - b * b) / (4 * math.pi * a * b)) ** 2
    assert p["rp_hu_moment_1"] == pytest.approx(hu1, rel=0.01)
    assert p["rp_hu_moment_2"] == pytest.approx(hu2, rel=0.03)
    for k in range(3, 8):
        assert abs(p[f"rp_hu_moment_{k}"]) < 1e-4


def test_areas_scale_with_spacing_squared_and_lengths_with_spacing():
    image = _ellipse_image(20, 10)
    at1 = region_properties(image, 1.0)[0]
    at02 = region_properties(image, 0.2)[0]
    np.testing.assert_allclose(at02[:2], at1[:2] * 0.04)
    np.testing.assert_allclose(at02[2:4], at1[2:4] * 0.2)
    np.testing.assert_allclose(at02[4:], at1[4:])


def test_one_pixel_and_one_row_objects_are_defined():
    image = np.zeros((10, 10), np.int32)
    image[2, 2] = 1
    image[6, 2:6] = 2
    values = region_properties(image, SPACING)
    assert not np.isnan(values).any()
    one = dict(zip(REGIONPROPS_NAMES, values[0]))
    assert one["rp_area_mm2"] == pytest.approx(SPACING**2)
    assert one["rp_major_axis_length_mm"] == 0 and one["rp_eccentricity"] == 0
    row = dict(zip(REGIONPROPS_NAMES, values[1]))
    assert row["rp_minor_axis_length_mm"] == 0 and row["rp_eccentricity"] == pytest.approx(1.0)


def test_rows_follow_labels_and_missing_label_is_nan():
    image = np.zeros((30, 30), np.int32)
    image[2:4, 2:4] = 1
    image[10:20, 10:20] = 3  # label 2 absent
    values = region_properties(image, 1.0)
    assert values.shape == (3, 13)
    assert values[0, 0] == 4 and values[2, 0] == 100
    assert np.isnan(values[1]).all()
    assert region_properties(np.zeros((5, 5), np.int32), 1.0).shape == (0, 13)
