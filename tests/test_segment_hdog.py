"""HDoG detection and breast region: specifications on tiny synthetic fixtures."""

import numpy as np
import pytest

from calcsig.segment.breast import breast_mask
from calcsig.segment.hdog import dog_sigmas_px, hdog_detect, hdog_detect_reference
from calcsig.segment.store import segment_image


def smooth_background(shape, rng, noise=0.004):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    bg = 0.35 + 0.15 * np.exp(-((yy - shape[0] / 2) ** 2 + (xx - shape[1] / 3) ** 2) / (2 * (shape[0] / 2) ** 2))
    return bg + rng.normal(0, noise, shape)


def add_disk(image, cy, cx, radius_px, amplitude):
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius_px**2
    image[disk] += amplitude
    return disk


def inner_mask(shape, margin=8):
    m = np.zeros(shape, dtype=bool)
    m[margin:-margin, margin:-margin] = True
    return m


def test_sigmas_follow_published_scales():
    s = dog_sigmas_px(0.0826, 0.217, 1.6, 0.07)
    np.testing.assert_allclose(s, [1.18, 1.888, 3.0208, 4.8333], rtol=1e-3)
    np.testing.assert_allclose(dog_sigmas_px(0.0826, 0.217, 1.6, 0.14), s / 2)


@pytest.mark.parametrize("radius_px", [2, 3, 4])
def test_single_blob_found_with_right_area(radius_px):
    rng = np.random.default_rng(1)
    image = smooth_background((120, 120), rng)
    disk = add_disk(image, 60, 55, radius_px, 0.08)
    res = hdog_detect((image * 30000).astype(np.uint16), 0.07, inner_mask(image.shape), threshold_noise=5.0)
    assert res.labels.max() == 1
    obj = res.labels == 1
    assert abs(int(obj.sum()) - int(disk.sum())) <= 0.2 * disk.sum()
    assert (obj & disk).sum() >= 0.75 * disk.sum()
    ys, xs = np.nonzero(obj)
    assert abs(ys.mean() - 60) < 0.5 and abs(xs.mean() - 55) < 0.5
    assert res.dog_response[0] > 5.0  # in noise units, above the threshold


def test_flat_image_gives_no_detection():
    for dtype, value in ((np.uint8, 90), (np.uint16, 20000), (np.float64, 0.3)):
        image = np.full((80, 90), value, dtype=dtype)
        res = hdog_detect(image, 0.1)
        assert res.labels.shape == image.shape and res.labels.max() == 0 and res.dog_response.size == 0
        cand, table = segment_image(image, 0.1, {})
        assert len(table) == 0 and cand.labels.max() == 0


def test_pure_noise_gives_few_detections():
    image = np.random.default_rng(3).normal(0.5, 0.01, (200, 200))
    res = hdog_detect(image, 0.07, inner_mask(image.shape), threshold_noise=5.0)
    assert res.labels.max() <= 3


def test_same_objects_at_two_pixel_spacings():
    """Blobs sized in mm; image at 0.05 mm and the same scene block-averaged to 0.1 mm."""
    rng = np.random.default_rng(7)
    fine = smooth_background((320, 320), rng, noise=0.002)
    blobs_mm = [(4.0, 4.0, 0.25), (10.0, 6.0, 0.3), (6.0, 11.0, 0.2), (12.0, 12.5, 0.35)]
    for cy, cx, r in blobs_mm:
        add_disk(fine, cy / 0.05, cx / 0.05, r / 0.05, 0.08)
    coarse = fine.reshape(160, 2, 160, 2).mean(axis=(1, 3))
    params = dict(sigma_min_mm=0.1, sigma_max_mm=0.3, threshold_noise=6.0)
    found = []
    for img, sp in ((fine, 0.05), (coarse, 0.1)):
        res = hdog_detect(img, sp, inner_mask(img.shape, int(1.0 / sp)), **params)
        ys, xs = np.nonzero(res.labels)
        ids = res.labels[ys, xs]
        area = np.bincount(ids)[1:] * sp**2
        cy = np.bincount(ids, ys)[1:] / np.bincount(ids)[1:] * sp
        cx = np.bincount(ids, xs)[1:] / np.bincount(ids)[1:] * sp
        # Coordinates of pixel centres: shift so both grids share the physical origin.
        found.append((cy + sp / 2, cx + sp / 2, area))
    (fy, fx, fa), (cy, cx, ca) = found
    assert len(fy) == len(cy) == len(blobs_mm)
    for ty, tx, r in blobs_mm:
        i = np.argmin(np.hypot(fy - ty, fx - tx))
        j = np.argmin(np.hypot(cy - ty, cx - tx))
        assert np.hypot(fy[i] - cy[j], fx[i] - cx[j]) < 0.05  # mm
        assert abs(fa[i] - ca[j]) <= 0.25 * max(fa[i], ca[j])
        assert abs(fa[i] - np.pi * r * r) <= 0.35 * np.pi * r * r


def test_fast_detector_matches_reference():
    rng = np.random.default_rng(11)
    image = smooth_background((150, 170), rng)
    for _k in range(12):
        add_disk(image, rng.uniform(15, 135), rng.uniform(15, 155), rng.uniform(1.5, 4), rng.uniform(0.02, 0.08))
    image16 = (image * 40000).astype(np.uint16)
    mask = np.zeros(image.shape, bool)
    mask[20:130, 30:150] = True  # bounding-box crop differs from the full field
    fast = hdog_detect(image16, 0.07, mask)
    ref = hdog_detect_reference(image16, 0.07, mask)
    assert fast.labels.max() == ref.labels.max() > 5
    assert np.array_equal(fast.labels, ref.labels)
    np.testing.assert_allclose(fast.dog_response, ref.dog_response, rtol=1e-3)


def test_threshold_invariant_to_gain_offset_and_bit_depth():
    rng = np.random.default_rng(5)
    image = smooth_background((120, 120), rng, noise=0.01)
    for k in range(5):
        add_disk(image, 20 + 20 * k, 25 + 15 * k, 2.5, 0.12)
    mask = inner_mask(image.shape)
    a = hdog_detect(np.round(image * 60000).astype(np.uint16), 0.1, mask, threshold_noise=5.0)
    b = hdog_detect(np.round(image * 3000 + 10000).astype(np.uint16), 0.1, mask, threshold_noise=5.0)
    c = hdog_detect(np.round(image * 250).astype(np.uint8), 0.1, mask, threshold_noise=5.0)
    assert a.labels.max() == b.labels.max() == 5
    assert c.labels.max() == 5
    assert ((a.labels > 0) ^ (b.labels > 0)).sum() <= 4


def test_breast_mask_excludes_marker_border_and_skin():
    sp = 0.2
    image = np.zeros((300, 240), np.uint16) + 200
    yy, xx = np.mgrid[:300, :240]
    breast = ((yy - 150) ** 2 / 130**2 + xx**2 / 170**2) <= 1
    image[breast] = 3000
    image[20:40, 190:230] = 4000  # burned-in label
    image[breast & (np.hypot(yy - 150, xx - 60) < 10)] = 200  # dark hole (fat), still breast
    m = breast_mask(image, sp, skin_margin_mm=2.0, border_margin_mm=3.0)
    assert not m[20:40, 190:230].any()
    assert m[150, 60]  # hole filled
    assert not m[:, :15].any()  # border margin, 3 mm = 15 px
    assert not m[150, 168]  # within 2 mm of the skin line (outline at x = 170)
    assert m[150, 150]
    inside = m.sum() / breast.sum()
    assert 0.7 < inside < 0.95  # border and skin margins remove the rest


def test_a_film_label_joined_to_the_breast_by_a_bright_film_edge_stays_outside_it():
    image = np.zeros((300, 240), np.uint16) + 200
    yy, xx = np.mgrid[:300, :240]
    breast = ((yy - 150) ** 2 / 170**2 + xx**2 / 170**2) <= 1  # reaches the top and bottom edges
    image[breast] = 3000
    image[0:3, :] = 4000  # the scanner's bright edge line across the top
    image[0:30, 190:230] = 4000  # a label in the top corner, on that line
    m = breast_mask(image, 0.2, skin_margin_mm=1.0, border_margin_mm=2.0)
    assert not m[:40, 150:].any()
    assert m[150, 100] and m[40, 40]


def test_segment_image_keeps_objects_inside_breast_only():
    rng = np.random.default_rng(2)
    image = np.full((200, 200), 0.05) + rng.normal(0, 0.003, (200, 200))
    yy, xx = np.mgrid[:200, :200]
    breast = (yy - 100) ** 2 + xx**2 < 150**2
    image[breast] += 0.4
    inside = add_disk(image, 100, 60, 3, 0.1)
    add_disk(image, 20, 185, 3, 0.1)  # in the air, outside the breast
    cand, table = segment_image((image * 30000).astype(np.uint16), 0.07, {})
    assert len(table) == 1
    assert (cand.labels > 0)[inside].mean() > 0.75
    row = table.iloc[0]
    assert abs(row.centroid_x_px - 60) < 0.5 and abs(row.centroid_y_px - 100) < 0.5
    assert row.area_mm2 == pytest.approx(row.area_px * 0.07**2)
    assert row.sel_peak_snr > 0  # the selector's features are stored with the candidate
