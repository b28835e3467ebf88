"""Per-ROI masks: foreground, background bands, min-distance graph (docs/contracts.md)."""

import itertools

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from skimage.morphology import dilation, disk

from calcsig.masks import (
    background_union,
    foreground_labels,
    min_distance_px,
    object_band,
    roi_bbox,
    roi_masks,
    roi_masks_file,
)


def random_layout(seed, shape=(60, 70), n=6):
    """Small objects (disks, bars, single pixels) at random places; some touch."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, dtype=np.int32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for i in range(1, n + 1):
        cy, cx = rng.integers(5, shape[0] - 5), rng.integers(5, shape[1] - 5)
        kind = i % 3
        if kind == 0:
            obj = (yy - cy) ** 2 + (xx - cx) ** 2 <= rng.uniform(0.5, 3.5) ** 2
        elif kind == 1:
            obj = (abs(yy - cy) <= rng.integers(0, 2)) & (abs(xx - cx) <= rng.integers(1, 5))
        else:
            obj = (yy == cy) & (xx == cx)
        labels[obj & (labels == 0)] = i
    return labels


def adjacent_pair():
    labels = np.zeros((30, 30), dtype=np.int32)
    labels[10:15, 8:13] = 4
    labels[10:15, 13:16] = 9  # shares an edge with object 4
    labels[22, 22] = 2  # one pixel: dropped by the area filter
    return labels


def test_foreground_relabels_and_counts_small_objects():
    fg, ids, dropped = foreground_labels(adjacent_pair(), 0.1, min_area_mm2=0.02)
    assert list(ids) == [4, 9] and dropped == 1
    assert (fg == 1).sum() == 25 and (fg == 2).sum() == 15 and fg.max() == 2
    fg, ids, dropped = foreground_labels(adjacent_pair(), 0.1, 0.0)
    assert list(ids) == [2, 4, 9] and dropped == 0


def test_adjacent_objects_stay_separate_and_bands_exclude_neighbours():
    fg, _, _ = foreground_labels(adjacent_pair(), 0.1, 0.02)
    band1 = object_band(fg, 1, 3.0)
    assert not (band1 & (fg > 0)).any()
    assert band1[10:15, 5:8].all()  # left of object 1
    assert band1[9, 8:13].all() and band1[15, 8:13].all()
    d = min_distance_px(fg)
    assert d[0, 1] == d[1, 0] == 1.0


@pytest.mark.parametrize("seed", range(4))
def test_bands_never_include_foreground_and_reach_band_px(seed):
    fg, _, _ = foreground_labels(random_layout(seed), 0.07, 0.0)
    band_px = 4.5
    union = np.zeros(fg.shape, bool)
    yy, xx = np.mgrid[: fg.shape[0], : fg.shape[1]]
    for i in range(1, fg.max() + 1):
        band = object_band(fg, i, band_px)
        assert not (band & (fg > 0)).any()
        obj = np.argwhere(fg == i)
        dist = cdist(np.argwhere(np.ones(fg.shape, bool)), obj).min(axis=1).reshape(fg.shape)
        np.testing.assert_array_equal(band, (dist <= band_px) & (fg == 0))
        union |= band
    np.testing.assert_array_equal(background_union(fg, band_px), union)


def brute_min_distance(fg):
    n = fg.max()
    out = np.zeros((n, n))
    for i, j in itertools.combinations(range(1, n + 1), 2):
        out[i - 1, j - 1] = out[j - 1, i - 1] = cdist(np.argwhere(fg == i), np.argwhere(fg == j)).min()
    return out


@pytest.mark.parametrize("seed", range(5))
def test_min_distance_equals_brute_force_and_dilation_stack(seed):
    fg, _, _ = foreground_labels(random_layout(seed, n=7), 0.07, 0.0)
    d = min_distance_px(fg)
    np.testing.assert_allclose(d, brute_min_distance(fg))
    n = fg.max()
    checked = 0
    for r in (1, 2, 3, 5, 8):
        dil = [dilation((fg == i).astype(np.uint8), disk(r)) > 0 for i in range(1, n + 1)]
        for i, j in itertools.combinations(range(n), 2):
            overlap = bool((dil[i] & dil[j]).any())
            # Documented discretisation band: (2r - sqrt 2, 2r] may go either way.
            if overlap:
                assert d[i, j] <= 2 * r + 1e-9
            if d[i, j] <= 2 * r - np.sqrt(2):
                assert overlap
            if d[i, j] > 2 * r:
                assert not overlap
            checked += 1
    assert checked > 50


def test_discretisation_band_is_real():
    """Two pixels 3.6 px apart: continuous disks of radius 2 overlap, skimage disk(2) stacks do not."""
    fg = np.zeros((20, 20), np.int32)
    fg[5, 5], fg[7, 8] = 1, 2
    d = min_distance_px(fg)[0, 1]
    assert 2 * 2 - np.sqrt(2) < d <= 4
    a = dilation((fg == 1).astype(np.uint8), disk(2)) > 0
    b = dilation((fg == 2).astype(np.uint8), disk(2)) > 0
    assert not (a & b).any()


def test_roi_masks_crop_and_file_round_trip(tmp_path):
    labels = np.zeros((100, 120), np.int32)
    labels[40:43, 50:53] = 7
    labels[45:47, 60:63] = 3
    labels[5:8, 5:8] = 1  # outside the ROI
    seg = tmp_path / "img.npz"
    np.savez_compressed(seg, labels=labels, breast=np.ones_like(labels, bool), pixel_spacing_mm=np.float64(0.07))
    row = {"roi_id": "r1", "shape": "bbox", "x_min": 40, "y_min": 30, "x_max": 80, "y_max": 60}
    out = tmp_path / "masks" / "r1.npz"
    arrays = roi_masks_file(seg, row, {"background_band_mm": 0.35}, out)
    with np.load(out) as z:
        assert set(z.files) == {
            "offset_yx",
            "pixel_spacing_mm",
            "foreground",
            "object_ids",
            "n_dropped_small",
            "n_rejected_selector",
            "background_band_px",
            "background",
            "dilation_radii_px",
            "min_distance_px",
        }
        assert list(z["offset_yx"]) == [30, 40] and z["foreground"].shape == (30, 40)
        assert list(z["object_ids"]) == [3, 7]
        assert z["background_band_px"] == pytest.approx(5.0)
        np.testing.assert_allclose(z["dilation_radii_px"][[0, -1]], [1.0, 64.2857], rtol=1e-4)
        assert not (z["background"] & (z["foreground"] > 0)).any()
        assert z["min_distance_px"].shape == (2, 2)
    assert arrays["min_distance_px"][0, 1] == pytest.approx(np.hypot(45 - 42, 60 - 52))


def test_roi_bbox_shapes():
    assert roi_bbox({"shape": "bbox", "x_min": 1, "y_min": 2, "x_max": 5, "y_max": 9}, (50, 60)) == (1, 2, 5, 9)
    assert roi_bbox(
        {"shape": "circle", "center_x": 20.0, "center_y": 30.0, "radius_px": 5.0, "x_min": "", "y_min": None}, (50, 60)
    ) == (15, 25, 26, 36)
    assert roi_bbox({"shape": "image"}, (50, 60)) == (0, 0, 60, 50)


def test_empty_roi():
    arrays = roi_masks(np.zeros((40, 40), np.int32), (0, 0, 20, 20), 0.1)
    assert arrays["foreground"].max() == 0 and arrays["min_distance_px"].shape == (0, 0)
    assert not arrays["background"].any() and arrays["n_dropped_small"] == 0


def test_candidates_the_selector_rejected_are_not_foreground_and_are_counted():
    labels = np.zeros((40, 40), np.int32)
    labels[5:8, 5:8] = 1
    labels[20:23, 20:23] = 2
    labels[30:33, 5:8] = 3
    kept_all = roi_masks(labels, (0, 0, 40, 40), 0.1, min_area_mm2=0.0)
    rejected = roi_masks(labels, (0, 0, 40, 40), 0.1, min_area_mm2=0.0, rejected_ids=[2])
    assert list(kept_all["object_ids"]) == [1, 2, 3] and int(kept_all["n_rejected_selector"]) == 0
    assert list(rejected["object_ids"]) == [1, 3]
    assert int(rejected["n_rejected_selector"]) == 1
    assert not rejected["foreground"][20:23, 20:23].any()


def test_the_masks_file_leaves_out_the_candidates_below_the_selectors_operating_point(tmp_path):
    import pandas as pd

    from calcsig.masks import roi_masks_file
    from calcsig.segment.candidates import FEATURE_NAMES
    from calcsig.segment.selector import CandidateSelector, rejected_object_ids
    from calcsig.segment.store import SELECTOR_FEATURE_COLUMNS

    # a selector that learned "bright candidates are calcifications" (feature peak_snr)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, len(FEATURE_NAMES)))
    peak = FEATURE_NAMES.index("peak_snr")
    selector = CandidateSelector(max_iter=30, min_samples_leaf=5).fit(X, (X[:, peak] > 0).astype(int))
    labels = np.zeros((30, 30), np.int32)
    labels[5:8, 5:8] = 1
    labels[15:18, 15:18] = 2
    np.savez(tmp_path / "im.npz", labels=labels, breast=np.ones_like(labels, bool), pixel_spacing_mm=0.1)
    features = np.zeros((2, len(FEATURE_NAMES)))
    features[:, peak] = [3.0, -3.0]
    table = pd.DataFrame(features, columns=SELECTOR_FEATURE_COLUMNS).assign(object_id=[1, 2])
    assert list(rejected_object_ids(table, selector, 0.5)) == [2]
    assert list(rejected_object_ids(table, None, None)) == []  # plain HDoG keeps every candidate
    row = {"shape": "bbox", "x_min": 0, "y_min": 0, "x_max": 30, "y_max": 30}
    arrays = roi_masks_file(
        tmp_path / "im.npz", row, {"min_area_mm2": 0.0}, tmp_path / "roi.npz", rejected_object_ids(table, selector, 0.5)
    )
    assert list(arrays["object_ids"]) == [1] and int(arrays["n_rejected_selector"]) == 1
