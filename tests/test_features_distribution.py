"""Handcrafted and distribution descriptors on layouts with known answers."""

import math

import numpy as np
import pytest

from calcsig.features.distribution import (
    DISTRIBUTION_NAMES,
    HANDCRAFTED_NAMES,
    distribution_features,
    handcrafted_features,
    object_geometry,
)


def _dots(points, shape=(200, 200)):
    image = np.zeros(shape, np.int32)
    for k, (y, x) in enumerate(points, start=1):
        image[y, x] = k
    return image


def _named(names, values):
    return dict(zip(names, values))


def test_geometry_centroids_in_mm_as_x_y():
    image = np.zeros((20, 20), np.int32)
    image[2:4, 10:14] = 1
    centroids, areas = object_geometry(image, 0.5)
    np.testing.assert_allclose(centroids, [[11.5 * 0.5, 2.5 * 0.5]])
    np.testing.assert_allclose(areas, [8 * 0.25])


def test_diagonal_line_of_dots():
    image = _dots([(10 * i, 10 * i) for i in range(1, 6)])
    centroids, areas = object_geometry(image, 0.1)
    hc = _named(HANDCRAFTED_NAMES, handcrafted_features(centroids, areas))
    assert hc["hc_area_std_mm2"] == 0
    assert hc["hc_centroid_xy_correlation"] == pytest.approx(1.0)
    step = math.hypot(1.0, 1.0)  # 10 px diagonal at 0.1 mm
    assert hc["hc_mean_pairwise_distance_mm"] == pytest.approx(step * (4 * 1 + 3 * 2 + 2 * 3 + 1 * 4) / 10)
    d = _named(DISTRIBUTION_NAMES, distribution_features(image, 0.1, centroids))
    assert d["dist_n_objects"] == 5
    assert d["dist_elongation"] == pytest.approx(1.0)
    assert d["dist_linearity"] == pytest.approx(1.0)
    assert d["dist_branching"] == 0
    assert d["dist_mst_mean_edge_mm"] == pytest.approx(step)
    assert d["dist_extent_mm"] == pytest.approx(math.hypot(4.1, 4.1))  # outer pixel corners
    assert d["dist_density_roi_per_cm2"] == pytest.approx(5 / (200 * 200 * 0.01 / 100))


def test_star_branches_and_round_clump_is_not_linear():
    centre = (100, 100)
    arms = [(100 + dy * k, 100 + dx * k) for dy, dx in ((0, 10), (10, 0), (0, -10), (-10, 0)) for k in (1, 2)]
    image = _dots([centre, *arms])
    centroids, _ = object_geometry(image, 1.0)
    d = _named(DISTRIBUTION_NAMES, distribution_features(image, 1.0, centroids))
    assert d["dist_branching"] == pytest.approx(1 / 9)  # the centre has degree 4
    assert d["dist_elongation"] == pytest.approx(0.0, abs=1e-12)
    assert d["dist_linearity"] == pytest.approx(40 / 80)


def test_anticorrelated_and_zero_variance_correlation():
    centroids = np.array([[0.0, 2.0], [1.0, 1.0], [2.0, 0.0]])
    assert handcrafted_features(centroids, np.ones(3))[1] == pytest.approx(-1.0)
    same_row = np.array([[0.0, 5.0], [1.0, 5.0], [3.0, 5.0]])
    assert handcrafted_features(same_row, np.array([1.0, 2.0, 3.0]))[1] == 0.0


@pytest.mark.parametrize("n", [0, 1])
def test_zero_and_one_object_are_defined(n):
    image = _dots([(50, 60)][:n])
    centroids, areas = object_geometry(image, 0.1)
    hc = handcrafted_features(centroids, areas)
    d = _named(DISTRIBUTION_NAMES, distribution_features(image, 0.1, centroids))
    assert not np.isnan(hc).any() and not any(np.isnan(v) for v in d.values())
    assert hc.tolist() == [0.0, 0.0, 0.0]
    assert d["dist_n_objects"] == n
    if n == 1:
        assert d["dist_hull_area_mm2"] == pytest.approx(0.01)  # one pixel
        assert d["dist_density_hull_per_cm2"] == pytest.approx(1 / 0.0001)
        assert d["dist_extent_mm"] == pytest.approx(math.hypot(0.1, 0.1))
    else:
        assert all(v == 0 for v in d.values())
