"""The quality gate: an image or ROI on which nothing can be measured gets stable reasons instead of a score."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from calcsig.errors import ConfigError, QCError
from calcsig.qc import CODES, QC_COLUMNS, QCIssue, gate, image_failed_issue, image_issues, qc_params, qc_row, roi_issues
from calcsig.segment.breast import breast_mask


def codes(issues: list[QCIssue]) -> list[str]:
    return [issue.code for issue in issues]


def phantom(height: int = 400, width: int = 320, seed: int = 0) -> np.ndarray:
    """A breast-like 12-bit image: a bright half-disc of textured tissue on dark air."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[:height, :width]
    tissue = (xs / width) ** 2 + ((ys - height / 2) / (height / 2)) ** 2 < 0.8
    image = np.where(tissue, 2400, 150) + rng.normal(0, 40, (height, width))
    return np.clip(image, 0, 4095).astype(np.uint16)


def breast_of(image: np.ndarray, spacing: float) -> np.ndarray:
    return breast_mask(image, spacing, skin_margin_mm=1.0, border_margin_mm=2.0)


def test_an_ordinary_image_and_roi_pass():
    image = phantom()
    breast = breast_of(image, 0.1)
    assert image_issues(image, 0.1, breast) == []
    assert roi_issues({"shape": "bbox", "x_min": 20, "y_min": 150, "x_max": 80, "y_max": 210}, 0.1, breast) == []


def test_an_all_black_image_is_constant_and_not_scored():
    black = np.zeros((1024, 1024), np.uint16)
    issues = image_issues(black, 0.07, breast_of(black, 0.07))
    assert issues == [QCIssue("constant_image", "every pixel is 0: there is no content to measure")]


def test_a_one_pixel_image_and_its_one_pixel_box_are_too_small():
    pixel = np.array([[7]], np.uint8)
    assert codes(image_issues(pixel, 0.1, breast_of(pixel, 0.1))) == [
        "image_too_small_px",
        "image_too_small_mm",
        "constant_image",
    ]
    roi = {"shape": "bbox", "x_min": 0, "y_min": 0, "x_max": 1, "y_max": 1}
    assert codes(roi_issues(roi, 0.1, np.ones((1, 1), bool))) == ["roi_too_small_px", "roi_too_small_mm"]


def test_a_circle_of_radius_0_3_px_is_too_small():
    breast = np.ones((100, 100), bool)
    on_a_pixel = {"shape": "circle", "center_x": 50.0, "center_y": 50.0, "radius_px": 0.3}
    between_pixels = {"shape": "circle", "center_x": 50.5, "center_y": 50.5, "radius_px": 0.3}
    assert codes(roi_issues(on_a_pixel, 0.07, breast)) == ["roi_too_small_px", "roi_too_small_mm"]
    assert codes(roi_issues(between_pixels, 0.07, breast)) == ["roi_too_small_px"]
    assert roi_issues(between_pixels, 0.07, breast)[0].message == "the ROI covers no pixel (box [51,51) x [51,51))"


def test_an_image_holding_only_a_label_has_too_small_a_breast():
    image = np.zeros((600, 500), np.uint16)
    image[40:70, 400:470] = 4000  # a film marker on empty film
    image[50:60, 410:460] = 1000
    issues = image_issues(image, 0.1, breast_of(image, 0.1))
    assert codes(issues) == ["breast_too_small"]
    assert "below qc.min_breast_fraction = 0.05" in issues[0].message


def test_a_breast_covering_more_than_allowed_is_refused_only_when_a_maximum_is_set():
    image = phantom()
    breast = breast_of(image, 0.1)
    assert image_issues(image, 0.1, breast, {"max_breast_fraction": 0.2}) == [
        QCIssue(
            "breast_too_large",
            f"the breast region covers {breast.mean():.3f} of the image, above qc.max_breast_fraction = 0.2",
        )
    ]


def test_unknown_spacing_and_nan_pixels_are_reasons():
    image = phantom().astype(np.float32)
    image[5, 5] = np.nan
    assert codes(image_issues(image, None, None)) == ["no_pixel_spacing", "non_finite_pixels"]
    assert codes(image_issues(phantom(), float("nan"), None)) == ["no_pixel_spacing"]


def test_sizes_are_checked_in_pixels_and_in_millimetres():
    image = phantom(100, 90)
    # 90 px at 0.1 mm = 9 mm: enough pixels, too few millimetres
    assert codes(image_issues(image, 0.1, None)) == ["image_too_small_mm"]
    # 90 px at 0.5 mm = 45 mm, but fewer pixels than asked for
    assert codes(image_issues(image, 0.5, None, {"min_image_side_px": 96})) == ["image_too_small_px"]
    # exactly at the limits passes
    assert image_issues(image, 10.0 / 90, None, {"min_image_side_px": 90}) == []


def test_a_roi_mostly_outside_the_breast_is_refused_and_the_share_is_given():
    breast = np.zeros((200, 200), bool)
    breast[:, :100] = True
    straddling = {"shape": "bbox", "x_min": 70, "y_min": 50, "x_max": 170, "y_max": 150}
    [issue] = roi_issues(straddling, 0.1, breast)
    assert issue.code == "roi_outside_breast"
    assert issue.message.startswith("0.300 of the ROI lies in the breast region, below qc.min_roi_breast_overlap = 0.5")
    assert roi_issues(straddling, 0.1, breast, {"min_roi_breast_overlap": 0.3}) == []


def test_overlap_counts_the_disk_of_a_circle_and_the_pixels_of_a_mask():
    breast = np.zeros((200, 200), bool)
    breast[:, :100] = True
    # the box of this circle is half in the breast, the disk a little more
    circle = {"shape": "circle", "center_x": 99.5, "center_y": 100.0, "radius_px": 30.0}
    assert roi_issues(circle, 0.1, breast, {"min_roi_breast_overlap": 0.5}) == []
    mask = np.zeros((200, 200), np.uint8)
    mask[90:110, 120:140] = 1  # entirely outside the breast
    roi = {"shape": "mask", "x_min": 60, "y_min": 90, "x_max": 140, "y_max": 110}
    assert codes(roi_issues(roi, 0.1, breast, mask=mask)) == ["roi_outside_breast"]


def test_a_roi_outside_its_image_and_an_image_level_roi():
    breast = np.ones((50, 50), bool)
    outside = {"shape": "bbox", "x_min": 60, "y_min": 0, "x_max": 80, "y_max": 20}
    assert codes(roi_issues(outside, 0.1, breast)) == ["roi_outside_image"]
    assert roi_issues({"shape": "image"}, 0.1, np.zeros((50, 50), bool)) == []


def test_every_reason_has_a_stable_documented_code():
    image = np.zeros((10, 10), np.uint8)
    found = codes(image_issues(image, 0.1, None)) + codes(
        roi_issues({"shape": "bbox", "x_min": 0, "y_min": 0, "x_max": 1, "y_max": 1}, 0.1, np.zeros((10, 10), bool))
    )
    assert set(found) <= set(CODES)
    assert image_failed_issue("img1") == QCIssue("image_failed_qc", "its image img1 failed the quality checks")


def test_fail_raises_naming_the_item_and_every_reason():
    issues = [QCIssue("constant_image", "every pixel is 0"), QCIssue("breast_too_small", "covers 0.000")]
    with pytest.raises(QCError) as error:
        gate("image black1 (data/black1.png)", issues, "fail")
    assert str(error.value) == (
        "image black1 (data/black1.png) cannot be measured:\n"
        "  - constant_image: every pixel is 0\n"
        "  - breast_too_small: covers 0.000"
    )
    assert "qc.on_bad_image: skip" in error.value.hint


def test_skip_returns_false_and_the_qc_row_records_the_reasons():
    issues = [QCIssue("roi_too_small_px", "the ROI is 1 x 1 pixels")]
    assert gate("ROI r1", issues, "skip") is False
    assert gate("ROI r2", [], "fail") is True
    row = qc_row("roi", "r1", issues)
    assert list(row) == QC_COLUMNS
    assert row == {
        "kind": "roi",
        "id": "r1",
        "status": "failed_qc",
        "codes": "roi_too_small_px",
        "reasons": "the ROI is 1 x 1 pixels",
    }
    assert qc_row("image", "i1", [])["status"] == "ok"


def test_qc_thresholds_are_validated_naming_the_key():
    assert qc_params({})["on_bad_image"] == "fail"
    with pytest.raises(ConfigError, match=r"config key 'qc.min_roi_breast_overlap': 2 is greater than the maximum"):
        qc_params({"min_roi_breast_overlap": 2})


def test_every_real_mini_mias_film_passes_and_two_calcification_rois_lie_outside_the_breast(shared_data):
    """mdb212's annotated cluster lies in the air beside the breast; mdb214's in the dark periphery
    that the breast region leaves out: neither can be measured, so neither is scored."""
    from calcsig.imageio import read_image
    from calcsig.ingest.mini_mias import ingest_mini_mias

    tables = ingest_mini_mias(shared_data / "mini-mias-dev", {"pixel_spacing_mm": 0.2}, Path("."))
    outside = []
    for _, image in tables["images"].iterrows():
        pixels = read_image(image["path"]).pixels
        breast = breast_of(pixels, 0.2)
        assert image_issues(pixels, 0.2, breast) == [], image["image_id"]
        rois = tables["rois"][tables["rois"]["image_id"] == image["image_id"]]
        for roi in rois.to_dict("records"):
            if roi_issues(roi, 0.2, breast):
                outside.append((roi["roi_id"], roi["abnormality"], codes(roi_issues(roi, 0.2, breast))))
    assert outside == [
        ("mdb212_1", "calcification", ["roi_outside_breast"]),
        ("mdb214_1", "calcification", ["roi_outside_breast"]),
    ]


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    pixels=arrays(
        st.sampled_from([np.uint8, np.uint16, np.int32, np.float32]),
        st.tuples(st.integers(1, 90), st.integers(1, 90)),
        elements=st.integers(0, 255),
    ),
    spacing=st.sampled_from([0.05, 0.1, 0.2, 1.0]),
)
def test_any_image_gets_only_documented_codes_and_is_scored_only_when_it_has_content(pixels, spacing):
    breast = breast_of(pixels, spacing)
    issues = image_issues(pixels, spacing, breast)
    assert set(codes(issues)) <= set(CODES)
    if not issues:
        assert pixels.min() < pixels.max() and min(pixels.shape) >= 64
        assert 0.05 <= breast.mean()
