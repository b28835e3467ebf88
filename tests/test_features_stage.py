"""Features stage entry point: files in, contract tables out; config schema; generated docs."""

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO_ROOT
from PIL import Image

from calcsig.errors import ConfigError
from calcsig.features.stage import extract_roi_features, features_params, roi_features
from calcsig.features.table import QC_NAMES, default_catalogue_markdown
from calcsig.masks import roi_masks
from calcsig.paths import RESOURCE_DIR, SCHEMA_DIR

SPACING = 0.07


def _image_and_labels(n_objects, size=128, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.normal(2000, 100, (size, size))
    labels = np.zeros((size, size), np.int32)
    yy, xx = np.mgrid[:size, :size]
    for k in range(1, n_objects + 1):
        cy, cx = rng.integers(15, size - 15, 2)
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2 <= rng.uniform(1.5, 4) ** 2) & (labels == 0)
        labels[disc] = 10 * k  # segment ids differ from the ROI's 1..n labels
        image[disc] += 1500
    return np.clip(image, 0, 65535).astype(np.uint16), labels


def _write_inputs(tmp_path, image, labels, bbox, name="roi_a"):
    image_path = tmp_path / "image.png"
    Image.fromarray(image).save(image_path)
    masks = roi_masks(labels, bbox, SPACING, min_area_mm2=0.0, background_band_mm=0.35)
    masks_path = tmp_path / f"{name}.npz"
    np.savez_compressed(masks_path, **masks)
    return masks_path, image_path, masks


def test_writes_contract_tables_for_an_roi(tmp_path):
    image, labels = _image_and_labels(6)
    bbox = (4, 8, 124, 120)  # x0, y0, x1, y1: the ROI is offset in the image
    masks_path, image_path, masks = _write_inputs(tmp_path, image, labels, bbox)
    out_obj, out_roi = tmp_path / "f" / "roi_a.objects.parquet", tmp_path / "f" / "roi_a.roi.parquet"
    objects, roi = extract_roi_features(masks_path, image_path, {}, out_obj, out_roi)
    read_obj, read_roi = pd.read_parquet(out_obj), pd.read_parquet(out_roi)
    pd.testing.assert_frame_equal(read_obj, objects)
    n = int(masks["foreground"].max())
    assert len(read_obj) == n and read_obj["roi_id"].eq("roi_a").all()
    assert read_obj["object_id"].tolist() == masks["object_ids"].tolist()
    assert list(read_obj.columns[:2]) == ["roi_id", "object_id"]
    families = {c.split("_", 1)[0] for c in read_obj.columns[2:]}
    assert families == {"fg", "bg", "rp"}
    assert read_obj.filter(like="fg_").notna().all().all()
    assert read_roi.shape[0] == 1 and read_roi.loc[0, "n_objects"] == n
    assert [c for c in read_roi.columns if c.startswith("topo_")][:2] == ["topo_s1_n_components", "topo_s1_mean_degree"]
    assert len([c for c in read_roi.columns if c.startswith("topo_")]) == 8 * len(masks["dilation_radii_px"])
    assert set(QC_NAMES) <= set(read_roi.columns)
    assert read_roi.loc[0, "qc_fg_skipped_too_small"] == 0
    # the image was cropped at the masks' offset: the mean intensity matches the image there
    y0, x0 = masks["offset_yx"]
    label_one = masks["foreground"] == 1
    crop = image[y0 : y0 + label_one.shape[0], x0 : x0 + label_one.shape[1]].astype(float)
    assert read_obj.loc[0, "fg_firstorder_Mean"] == pytest.approx(crop[label_one].mean())
    assert not list(tmp_path.joinpath("f").glob(".*.tmp"))


@pytest.mark.parametrize("n_objects", [0, 1])
def test_zero_and_one_object_rois(tmp_path, n_objects):
    image, labels = _image_and_labels(n_objects)
    masks_path, image_path, _ = _write_inputs(tmp_path, image, labels, (0, 0, 128, 128))
    objects, roi = extract_roi_features(masks_path, image_path, {}, tmp_path / "o.parquet", tmp_path / "r.parquet")
    assert len(objects) == n_objects
    assert len(pd.read_parquet(tmp_path / "o.parquet").columns) == 2 + 99 + 92 + 13
    numeric = roi.drop(columns=["roi_id", "qc_nan_features"])
    assert not numeric.isna().any().any()
    assert roi.loc[0, "topo_s1_n_components"] == n_objects
    assert roi.loc[0, "topo_s8_isolated_fraction"] == n_objects


def test_one_pixel_object_and_walled_in_band_are_counted():
    image = 1000.0 + np.add.outer(np.arange(40.0), 3 * np.arange(40.0))  # a ramp: no band is flat
    foreground = np.zeros((40, 40), np.int32)
    foreground[5, 5] = 1  # one pixel: no fg radiomics
    foreground[10:20, 10:20] = 2
    foreground[22:29, 22:29] = 3  # a 7 x 7 object ...
    foreground[25, 25] = 4  # ... walling in a one-pixel object: its 2-px band is empty
    masks = roi_masks(foreground, (0, 0, 40, 40), SPACING, min_area_mm2=0.0, background_band_mm=0.14)
    objects, roi = roi_features(image, masks, {}, "r")
    fg, bg = objects.filter(like="fg_"), objects.filter(like="bg_")
    assert fg.iloc[0].isna().all() and fg.iloc[3].isna().all()
    assert fg.iloc[[1, 2]].notna().all().all()
    assert bg.iloc[3].isna().all() and bg.iloc[:3].notna().all().all()
    assert objects.filter(like="rp_").notna().all().all()
    assert roi.loc[0, "qc_fg_skipped_too_small"] == 2
    assert roi.loc[0, "qc_bg_skipped_too_small"] == 1
    assert roi.loc[0, "qc_bg_constant_intensity"] == 0


def test_families_can_be_switched_off():
    image, labels = _image_and_labels(3)
    masks = roi_masks(labels, (0, 0, 128, 128), SPACING, min_area_mm2=0.0)
    params = {"families": {"background_radiomics": False, "topology": False, "distribution": False}}
    objects, roi = roi_features(image, masks, params, "r")
    assert not any(c.startswith("bg_") for c in objects.columns)
    assert any(c.startswith("fg_") for c in objects.columns) and any(c.startswith("rp_") for c in objects.columns)
    assert not any(c.startswith(("topo_", "dist_")) for c in roi.columns)
    assert any(c.startswith("hc_") for c in roi.columns)


def test_image_that_does_not_hold_the_roi_is_an_error(tmp_path):
    image, labels = _image_and_labels(2)
    masks_path, _, _ = _write_inputs(tmp_path, image, labels, (0, 0, 128, 128))
    small = tmp_path / "small.png"
    Image.fromarray(image[:64, :64]).save(small)
    with pytest.raises(ValueError, match="does not fit image"):
        extract_roi_features(masks_path, small, {}, tmp_path / "o.parquet", tmp_path / "r.parquet")
    assert not (tmp_path / "o.parquet").exists()


def test_schema_defaults_and_unknown_keys():
    schema = yaml.safe_load((SCHEMA_DIR / "config" / "features.schema.yaml").read_text())
    assert schema["additionalProperties"] is False

    def walk(properties):
        for key, prop in properties.items():
            assert "default" in prop and "description" in prop, key
            walk(prop.get("properties", {}))

    walk(schema["properties"])
    filled = features_params({})
    assert filled["radiomics_foreground"] == "resources/radiomics_foreground.yaml"
    assert all(filled["families"].values())
    assert features_params({"families": {"topology": False}})["families"]["regionprops"] is True
    with pytest.raises(ConfigError, match="crop_margin_mm"):
        features_params({"crop_margin_mm": 1.0})
    with pytest.raises(ConfigError):
        features_params({"families": {"shape": True}})


def test_generated_feature_catalogue_is_current():
    assert (REPO_ROOT / "docs" / "features.md").read_text() == default_catalogue_markdown(RESOURCE_DIR), (
        "regenerate with: python -m calcsig.features.table docs/features.md"
    )


@pytest.mark.shared_data
def test_real_mini_mias_calcification_roi(shared_data):
    """mdb209 (malignant calcification cluster, centre 647, 503 from bottom-left, radius 87 px at 0.2 mm):
    bright spots by top-hat threshold inside the ROI, then the whole features stage on the 8-bit film."""
    from skimage.measure import label
    from skimage.morphology import disk, white_tophat

    from calcsig.imageio import read_image

    pixels = read_image(shared_data / "mini-mias-dev" / "mdb209.png").pixels
    cx, cy, r = 647, 1024 - 503, 87
    bbox = (cx - r, cy - r, cx + r + 1, cy + r + 1)
    window = pixels[bbox[1] : bbox[3], bbox[0] : bbox[2]].astype(float)
    tophat = white_tophat(window, disk(3))
    labels = np.zeros(pixels.shape, np.int32)
    labels[bbox[1] : bbox[3], bbox[0] : bbox[2]] = label(tophat > tophat.mean() + 4 * tophat.std())
    masks = roi_masks(
        labels,
        bbox,
        0.2,
        min_area_mm2=0.0,
        background_band_mm=1.0,
        dilation_scales_mm=(0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6),
    )
    y0, x0 = masks["offset_yx"]
    h, w = masks["foreground"].shape
    objects, roi = roi_features(pixels[y0 : y0 + h, x0 : x0 + w], masks, {}, "mdb209")
    assert roi.loc[0, "n_objects"] == len(objects) >= 5
    assert not roi.drop(columns=["roi_id", "qc_nan_features"]).isna().any().any()
    extracted = objects["fg_firstorder_Mean"].notna()
    assert extracted.sum() == len(objects) - roi.loc[0, "qc_fg_skipped_too_small"] >= 3
    assert objects.filter(like="bg_").notna().all().all()
    # calcifications are brighter than their surroundings
    assert (objects.loc[extracted, "fg_firstorder_Mean"] > objects.loc[extracted, "bg_firstorder_Mean"]).all()
    assert roi.loc[0, "topo_s8_n_components"] <= roi.loc[0, "topo_s1_n_components"]
