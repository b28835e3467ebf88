"""Cropped pyradiomics extraction against the stock extractor on whole-ROI masks."""

import numpy as np
import pytest
import SimpleITK as sitk
import yaml
from radiomics import featureextractor
from scipy import ndimage as ndi

from calcsig.features.radiomics_fast import CroppedExtractor, ExtractionCounts, object_band_crop
from calcsig.paths import RESOURCE_DIR

FG_YAML = RESOURCE_DIR / "radiomics_foreground.yaml"
BG_YAML = RESOURCE_DIR / "radiomics_background.yaml"
SPACING = 0.07

# pyradiomics validates its YAML with pykwalify, which uses a deprecated importlib call
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")


def _random_roi(seed, size=96, n=6):
    """Speckled 12-bit background with n random-walk blobs of various sizes."""
    rng = np.random.default_rng(seed)
    image = rng.normal(1800, 120, (size, size))
    labels = np.zeros((size, size), np.int32)
    for k in range(1, n + 1):
        y, x = rng.integers(12, size - 12, 2)
        for _ in range(rng.integers(3, 40)):
            if labels[y, x] == 0:
                labels[y, x] = k
            y = int(np.clip(y + rng.integers(-1, 2), 0, size - 1))
            x = int(np.clip(x + rng.integers(-1, 2), 0, size - 1))
        image[labels == k] += rng.uniform(400, 1500)
    return np.round(image), labels


def _stock(yaml_path, image, mask):
    extractor = featureextractor.RadiomicsFeatureExtractor(str(yaml_path))
    sitk_image, sitk_mask = sitk.GetImageFromArray(image), sitk.GetImageFromArray(mask.astype(np.uint8))
    for item in (sitk_image, sitk_mask):
        item.SetSpacing((SPACING, SPACING))
    result = extractor.execute(sitk_image, sitk_mask, label=1)
    return {k[len("original_") :]: float(v) for k, v in result.items() if k.startswith("original_")}


def _assert_same(ours, names, prefix, reference):
    assert len(reference) == len(names)
    expected = np.array([reference[name[len(prefix) :]] for name in names])
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=0, equal_nan=True)


@pytest.fixture(scope="module")
def extractors():
    return CroppedExtractor(FG_YAML, "fg_"), CroppedExtractor(BG_YAML, "bg_")


@pytest.mark.parametrize("seed", [0, 1])
def test_cropped_equals_full_mask_extraction(seed, extractors):
    fg, bg = extractors
    image, labels = _random_roi(seed)
    checked = 0
    for label, box in enumerate(ndi.find_objects(labels), start=1):
        mask = labels == label
        if box is None or not fg.is_extractable(mask):
            continue
        _assert_same(fg.extract(image[box], mask[box], SPACING), fg.feature_names, "fg_", _stock(FG_YAML, image, mask))
        crop, band = object_band_crop(labels, label, 5.0, box)
        full_band = np.zeros_like(mask)
        full_band[crop] = band
        _assert_same(bg.extract(image[crop], band, SPACING), bg.feature_names, "bg_", _stock(BG_YAML, image, full_band))
        checked += 1
    assert checked >= 4


def test_any_crop_containing_the_mask_gives_the_same_values(extractors):
    fg, _ = extractors
    image, labels = _random_roi(3)
    mask = labels == 1
    whole = fg.extract(image, mask, SPACING)
    ys, xs = np.nonzero(mask)
    crop = (slice(ys.min() - 3, ys.max() + 5), slice(xs.min() - 1, xs.max() + 2))
    np.testing.assert_array_equal(fg.extract(image[crop], mask[crop], SPACING), whole)


def test_names_are_prefixed_and_documented_counts(extractors):
    fg, bg = extractors
    assert all(n.startswith("fg_") for n in fg.feature_names)
    assert all(n.startswith("bg_") for n in bg.feature_names)
    assert len(fg.feature_names) == 99 and len(bg.feature_names) == 92
    assert not any("shape2D" in n for n in bg.feature_names)
    assert "fg_glcm_SumAverage" not in fg.feature_names and "fg_glcm_JointAverage" in fg.feature_names


def test_one_pixel_and_one_row_objects_give_nan_and_are_counted(extractors):
    fg, _ = extractors
    image = np.arange(100.0).reshape(10, 10)
    counts = ExtractionCounts()
    one = np.zeros((10, 10), bool)
    one[4, 4] = True
    row = np.zeros((10, 10), bool)
    row[2, 1:6] = True
    assert np.isnan(fg.extract(image, one, SPACING, counts)).all()
    assert np.isnan(fg.extract(image, row, SPACING, counts)).all()
    assert np.isnan(fg.extract(image, np.zeros((10, 10), bool), SPACING, counts)).all()
    assert counts.skipped_too_small == 3 and counts.nan_values == 0


def test_two_by_two_object_is_extracted():
    fg = CroppedExtractor(FG_YAML, "fg_")
    image = np.arange(16.0).reshape(4, 4)
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    counts = ExtractionCounts()
    values = dict(zip(fg.feature_names, fg.extract(image, mask, SPACING, counts)))
    assert counts.skipped_too_small == 0
    assert values["fg_firstorder_Mean"] == pytest.approx(np.mean([5, 6, 9, 10]))
    assert values["fg_shape2D_PixelSurface"] == pytest.approx(4 * SPACING**2)


def test_constant_band_gives_defined_values_and_is_counted(extractors):
    _, bg = extractors
    image = np.full((30, 30), 1234.0)
    band = np.zeros((30, 30), bool)
    band[5:25, 5:25] = True
    band[12:18, 12:18] = False
    counts = ExtractionCounts()
    values = dict(zip(bg.feature_names, bg.extract(image, band, SPACING, counts)))
    assert counts.constant_intensity == 1
    assert values["bg_firstorder_Mean"] == 1234.0
    assert values["bg_firstorder_Variance"] == 0.0
    assert values["bg_glcm_Contrast"] == 0.0
    assert counts.nan_values == sum(np.isnan(v) for v in values.values())


def test_band_crop_matches_the_band_definition():
    _, labels = _random_roi(5, n=8)
    for label, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        crop, band = object_band_crop(labels, label, 4.5, box)
        full = np.zeros(labels.shape, bool)
        full[crop] = band
        expected = (ndi.distance_transform_edt(labels != label) <= 4.5) & (labels == 0)
        np.testing.assert_array_equal(full, expected)
        try:
            from calcsig.masks import object_band
        except ImportError:
            continue
        np.testing.assert_array_equal(full, object_band(labels, label, 4.5))


@pytest.mark.parametrize("setting", [{"normalize": True}, {"resegmentRange": [0, 100]}])
def test_refuses_settings_that_make_cropping_inexact(tmp_path, setting):
    params = yaml.safe_load(FG_YAML.read_text())
    params["setting"].update(setting)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ValueError, match="not supported by the cropped extractor"):
        CroppedExtractor(path, "fg_")


def test_refuses_filtered_image_types(tmp_path):
    params = yaml.safe_load(FG_YAML.read_text())
    params["imageType"] = {"Original": {}, "LoG": {"sigma": [1.0]}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ValueError, match="image types"):
        CroppedExtractor(path, "fg_")
