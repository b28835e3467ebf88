"""The worst-case gallery of the segmentation evaluation: which images and spots it shows, in which order."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from calcsig.segment.evaluate import ImageEval
from calcsig.segment.evaluate_files import write_worst_gallery
from calcsig.segment.worst_cases import (
    FALSE_POSITIVES,
    MISSED,
    circles_label_image,
    densest_point,
    false_detection_centres,
    missed_truth_centres,
    panel_budget,
    select_worst_cases,
    worst_false_positives,
    worst_missed,
)

SPACING = 0.1  # mm per px
SHAPE = (200, 200)  # 4 cm2 at 0.1 mm
CROP_MM = 4.0  # 20 px either side of the centre


def square(labels, y, x, value, size=3):
    labels[y : y + size, x : x + size] = value


def image_eval(image_id, spots, keep=None, truth=None, circles=None, normal=False, breast=None):
    """An evaluated image whose detections are 3x3 squares with top-left corners `spots` (y, x), labels 1..n."""
    pred = np.zeros(SHAPE, np.int32)
    for label, (y, x) in enumerate(spots, start=1):
        square(pred, y, x, label)
    return ImageEval(
        image_id,
        pred,
        np.linspace(1.0, 0.5, len(spots)),
        np.ones(SHAPE, bool) if breast is None else breast,
        SPACING,
        truth=truth,
        circles_px=None if circles is None else np.asarray(circles, float),
        normal=normal,
        keep=None if keep is None else np.asarray(keep, bool),
    )


def pixel_truth_missing_two():
    """Three calcifications: the first found, the second touched only by a detection below the
    operating point, the third not touched at all."""
    truth = np.zeros(SHAPE, np.int32)
    for label, (y, x) in enumerate([(20, 20), (60, 60), (100, 100)], start=1):
        square(truth, y, x, label)
    return image_eval("a_missed", [(20, 20), (61, 61)], keep=[True, False], truth=truth)


def circles_missing_one():
    """Two annotated clusters (x, y, radius px): a kept detection in the first, none in the second,
    and one kept detection outside both."""
    return image_eval("b_circles", [(49, 49), (19, 99)], circles=[(50, 50, 10), (150, 150, 10)])


def normal_dense_clump():
    """A normal film with 2 cm2 of breast: a clump of three detections and one far away (2 per cm2)."""
    breast = np.zeros(SHAPE, bool)
    breast[:, :100] = True
    return image_eval("c_normal", [(150, 10), (30, 160), (35, 165), (40, 158)], normal=True, breast=breast)


def normal_spread():
    """A normal film with 4 cm2 of breast and eight detections (2 per cm2, tied with c_normal)."""
    return image_eval("d_normal", [(20 * k + 5, 20 * k + 5) for k in range(8)], normal=True)


def all_found():
    """Every calcification found and nothing else detected."""
    truth = np.zeros(SHAPE, np.int32)
    square(truth, 50, 50, 1)
    return image_eval("e_clean", [(50, 50)], truth=truth)


def evals():
    return [normal_spread(), all_found(), circles_missing_one(), normal_dense_clump(), pixel_truth_missing_two()]


def test_truth_touched_only_by_a_detection_below_the_operating_point_is_missed():
    np.testing.assert_allclose(missed_truth_centres(pixel_truth_missing_two()), [[61, 61], [101, 101]])
    assert len(false_detection_centres(pixel_truth_missing_two())) == 0  # the dropped detection is not output


def test_a_cluster_circle_without_a_kept_detection_is_missed_and_detections_outside_circles_are_false():
    case = circles_missing_one()
    np.testing.assert_allclose(missed_truth_centres(case), [[150, 150]])  # (y, x) of the second circle
    np.testing.assert_allclose(false_detection_centres(case), [[20, 100]])


def test_every_kept_detection_on_a_normal_film_is_false_and_a_clean_image_has_no_worst_case():
    assert len(false_detection_centres(normal_spread())) == 8
    assert len(missed_truth_centres(all_found())) == 0 and len(false_detection_centres(all_found())) == 0


def test_missed_images_come_most_missed_first_with_the_count_in_the_title():
    cases = worst_missed(evals(), CROP_MM)
    assert [c.title for c in cases] == ["a_missed: 2 calcifications missed", "b_circles: 1 cluster missed"]
    assert {c.kind for c in cases} == {MISSED}
    assert cases[0].centre_yx_px == (61, 61)  # both missed are alone in their crops: the first one


def test_false_positive_images_come_densest_first_per_cm2_of_breast_ties_by_image_id():
    cases = worst_false_positives(evals(), CROP_MM)
    assert [c.image_id for c in cases] == ["c_normal", "d_normal", "b_circles"]
    assert [c.title for c in cases] == [
        "c_normal: 2 false detections / cm\u00b2",
        "d_normal: 2 false detections / cm\u00b2",
        "b_circles: 0.25 false detections / cm\u00b2",
    ]
    assert {c.kind for c in cases} == {FALSE_POSITIVES}
    assert cases[0].centre_yx_px == (31, 161)  # the clump, not the lone detection listed first


def test_the_order_does_not_depend_on_the_order_of_the_images():
    forward = select_worst_cases(evals(), 6, CROP_MM)
    assert select_worst_cases(evals()[::-1], 6, CROP_MM) == forward


def test_densest_point_counts_neighbours_within_the_square_crop():
    points = [[0, 0], [100, 100], [110, 90], [95, 119], [200, 0]]
    assert densest_point(points, 20) == 1
    assert densest_point(points, 5) == 0  # all alone: the first


@pytest.mark.parametrize(
    ("n_missed", "n_false", "size", "expected"),
    [(5, 5, 6, (3, 3)), (5, 5, 5, (3, 2)), (1, 9, 6, (1, 5)), (9, 1, 6, (5, 1)), (0, 9, 6, (0, 6)), (2, 1, 6, (2, 1))],
)
def test_panels_are_shared_half_and_half_and_one_kind_fills_for_the_other(n_missed, n_false, size, expected):
    assert panel_budget(n_missed, n_false, size) == expected
    assert panel_budget(n_missed, n_false, 0) == (0, 0)


def test_the_selection_puts_the_missed_first_then_the_densest_false_positives():
    cases = select_worst_cases(evals(), 3, CROP_MM)
    assert [(c.kind, c.image_id) for c in cases] == [
        (MISSED, "a_missed"),
        (MISSED, "b_circles"),
        (FALSE_POSITIVES, "c_normal"),
    ]


def test_circles_are_drawn_as_labelled_disks_in_crop_coordinates():
    labels = circles_label_image([(50, 50, 3), (150, 150, 10)], (20, 20), offset_yx=(40, 40))
    assert labels[10, 10] == 1 and labels[10, 14] == 0 and labels.max() == 1


def images_table(tmp_path, ids) -> pd.DataFrame:
    rows = []
    for image_id in ids:
        path = tmp_path / f"{image_id}.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 255, SHAPE, dtype=np.uint8)).save(path)
        rows.append({"image_id": image_id, "path": str(path)})
    return pd.DataFrame(rows)


def test_the_gallery_png_is_written_with_the_selected_panels(tmp_path):
    cases = evals()
    out = tmp_path / "gallery_worst.png"
    shown = write_worst_gallery(
        cases, images_table(tmp_path, [c.image_id for c in cases]), {"gallery_size": 4, "gallery_crop_mm": CROP_MM}, out
    )
    assert [c.image_id for c in shown] == ["a_missed", "b_circles", "c_normal", "d_normal"]
    with Image.open(out) as png:
        assert png.format == "PNG" and png.width > 0


def test_without_misses_or_false_detections_the_png_still_says_so(tmp_path):
    out = tmp_path / "gallery_worst.png"
    shown = write_worst_gallery(
        [all_found()], images_table(tmp_path, ["e_clean"]), {"gallery_size": 6, "gallery_crop_mm": CROP_MM}, out
    )
    assert shown == []
    with Image.open(out) as png:
        assert png.format == "PNG" and png.width > 0
