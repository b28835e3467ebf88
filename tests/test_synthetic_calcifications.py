"""Calcification clusters: sizes in millimetres, class-dependent but overlapping morphology."""

import numpy as np
import pytest
from scipy import ndimage

from calcsig.synthetic.calcifications import (
    FINE_CLASSES,
    LABEL_OF_FINE_CLASS,
    design_cluster,
    render_cluster,
    reproject_cluster,
)


def _designs(fine_class, n, seed=0):
    rng = np.random.default_rng(seed)
    return [design_cluster(fine_class, rng) for _ in range(n)]


def test_fine_classes_map_to_binary_labels():
    assert LABEL_OF_FINE_CLASS == {
        "benign": "benign",
        "high_risk": "actionable",
        "dcis": "actionable",
        "invasive": "actionable",
    }
    for fine_class in FINE_CLASSES:
        assert _designs(fine_class, 1)[0].label == LABEL_OF_FINE_CLASS[fine_class]


def test_designed_sizes_and_longest_extent_stay_within_0_1_to_1_mm():
    for fine_class in FINE_CLASSES:
        for design in _designs(fine_class, 30):
            assert len(design.calcifications) >= 3
            for calc in design.calcifications:
                assert 0.1 <= calc.diameter_mm <= 1.0
                assert 2 * calc.half_length_mm <= 1.0 + 1e-9


@pytest.mark.parametrize("spacing_mm", [0.1, 0.07])
def test_rendered_truth_sizes_in_mm_respect_the_range_at_each_spacing(spacing_mm):
    rng = np.random.default_rng(3)
    diameters = []
    for fine_class in FINE_CLASSES:
        for _ in range(4):
            design = design_cluster(fine_class, rng, max_radius_mm=5.0)
            shape = (int(14 / spacing_mm),) * 2
            drawn = render_cluster(design, (shape[0] / 2, shape[1] / 2), shape, spacing_mm, psf_sigma_mm=0.06)
            n = int(drawn.labels.max())
            assert n == len(design.calcifications)  # the minimum gap keeps every calcification separate
            area_mm2 = ndimage.sum(np.ones_like(drawn.labels), drawn.labels, np.arange(1, n + 1)) * spacing_mm**2
            diameters.extend(2 * np.sqrt(area_mm2 / np.pi))
            # the blurred signal is positive over every labelled pixel
            assert (drawn.attenuation[drawn.labels > 0] > 0).all()
    diameters = np.asarray(diameters)
    # rasterising shifts a size by at most about one pixel
    assert diameters.min() >= 0.1 - spacing_mm and diameters.max() <= 1.0 + spacing_mm
    assert np.percentile(diameters, 90) > 0.4  # not all tiny


def test_rendered_size_tracks_the_designed_size_in_mm_across_spacings():
    design = design_cluster("dcis", np.random.default_rng(5), max_radius_mm=5.0)
    areas = {}
    for spacing_mm in (0.1, 0.07):
        shape = (int(14 / spacing_mm),) * 2
        drawn = render_cluster(design, (shape[0] / 2, shape[1] / 2), shape, spacing_mm, psf_sigma_mm=0.0)
        areas[spacing_mm] = np.count_nonzero(drawn.labels) * spacing_mm**2
    assert areas[0.07] == pytest.approx(areas[0.1], rel=0.25)


def _mean_size(design):
    return float(np.mean([c.diameter_mm for c in design.calcifications]))


def _size_spread(design):
    sizes = np.array([c.diameter_mm for c in design.calcifications])
    return float(sizes.std() / sizes.mean())


def _count(design):
    return float(len(design.calcifications))


@pytest.mark.parametrize("feature, actionable_higher", [(_mean_size, False), (_size_spread, True), (_count, True)])
def test_benign_and_actionable_clusters_overlap_on_simple_features(feature, actionable_higher):
    benign = np.array([feature(d) for d in _designs("benign", 60, seed=1)])
    actionable = np.array([feature(d) for fc in ("high_risk", "dcis", "invasive") for d in _designs(fc, 20, seed=2)])
    # ranges overlap substantially: no threshold separates the classes
    overlap = min(benign.max(), actionable.max()) - max(benign.min(), actionable.min())
    assert overlap > 0.3 * (max(benign.max(), actionable.max()) - min(benign.min(), actionable.min()))
    # ... yet the classes differ on average in the expected direction, so there is something to learn
    assert (np.median(actionable) > np.median(benign)) == actionable_higher


def test_actionable_clusters_are_more_pleomorphic_on_average():
    benign = [_size_spread(d) for d in _designs("benign", 60, seed=1)]
    invasive = [_size_spread(d) for d in _designs("invasive", 60, seed=2)]
    assert np.mean(invasive) > np.mean(benign)
    distributions = {d.calc_distribution for d in _designs("invasive", 60, seed=2)}
    assert {"linear", "segmental"} & distributions
    assert "segmental" not in {d.calc_distribution for d in _designs("benign", 60, seed=1)}


def test_reprojection_keeps_calcifications_and_class():
    design = _designs("dcis", 1)[0]
    other = reproject_cluster(design, np.random.default_rng(1))
    assert (other.fine_class, other.calc_type, other.calc_distribution) == (
        design.fine_class,
        design.calc_type,
        design.calc_distribution,
    )
    assert [c.diameter_mm for c in other.calcifications] == [c.diameter_mm for c in design.calcifications]
    assert other.calcifications[0].offset_mm != design.calcifications[0].offset_mm
