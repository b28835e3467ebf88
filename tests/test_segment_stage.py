"""Segment stage entry points on files: outputs, empty images, selector training, evaluation."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from calcsig.errors import ConfigError
from calcsig.segment.stage import (
    OBJECT_COLUMNS,
    evaluate_segmentation_files,
    segment_image_file,
    segment_params,
    train_selector_files,
)

SPACING = 0.1


def scene(seed, n_calc=6, shape=(150, 160)):
    """Breast on the left, air on the right; faint disks (truth) and brighter bars (distractors)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = np.full(shape, 0.05)
    image[xx < 140] = 0.45
    truth = np.zeros(shape, np.int32)
    for k in range(1, n_calc + 1):
        cy, cx = rng.uniform(20, 130), rng.uniform(20, 120)
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= rng.uniform(1.4, 2.2) ** 2
        image[disk] += 0.06
        truth[disk] = k
    for _ in range(6):
        cy, cx = rng.uniform(20, 130), rng.uniform(20, 120)
        bar = (np.abs(yy - cy) <= 1) & (np.abs(xx - cx) <= 7) & (truth == 0)
        image[bar] += 0.1
    image += rng.normal(0, 0.006, shape)
    return (np.clip(image, 0, 1) * 40000).astype(np.uint16), truth


def write_png(path, array):
    Image.fromarray(array).save(path)
    return str(path)


PARAMS = {"selector_max_iter": 40, "selector_min_samples_leaf": 5, "border_margin_mm": 1.0, "skin_margin_mm": 0.5}


def test_params_defaults_and_unknown_key():
    p = segment_params({})
    assert p["sigma_ratio"] == 1.6 and p["h_thr"] == 1.4 and p["threshold_mode"] == "noise"
    with pytest.raises(ConfigError, match="sigma_min_px"):
        segment_params({"sigma_min_px": 1.0})
    with pytest.raises(ConfigError, match="threshold_mode"):
        segment_params({"threshold_mode": "otsu"})


def test_segment_file_outputs_and_empty_image(tmp_path):
    image, truth = scene(0)
    path = write_png(tmp_path / "a.png", image)
    n = segment_image_file(
        path, PARAMS, tmp_path / "seg" / "a.npz", tmp_path / "seg" / "a.tsv", pixel_spacing_mm=SPACING
    )
    table = pd.read_csv(tmp_path / "seg" / "a.tsv", sep="\t")
    assert list(table.columns) == OBJECT_COLUMNS and len(table) == n >= truth.max()
    with np.load(tmp_path / "seg" / "a.npz") as z:
        assert z["labels"].dtype == np.int32 and z["labels"].max() == n and z["breast"].dtype == bool
        assert float(z["pixel_spacing_mm"]) == SPACING
        area = np.bincount(z["labels"].ravel())[1:]
    np.testing.assert_array_equal(table["area_px"], area)
    assert table["selector_score"].isna().all()

    flat = write_png(tmp_path / "flat.png", np.full((60, 70), 1234, np.uint16))
    assert segment_image_file(flat, {}, tmp_path / "flat.npz", tmp_path / "flat.tsv", pixel_spacing_mm=0.07) == 0
    assert (tmp_path / "flat.tsv").read_text().strip() == "\t".join(OBJECT_COLUMNS)
    with np.load(tmp_path / "flat.npz") as z:
        assert z["labels"].shape == (60, 70) and not z["labels"].any()


def test_spacing_required(tmp_path):
    path = write_png(tmp_path / "a.png", np.zeros((20, 20), np.uint8))
    from calcsig.imageio import read_image

    if read_image(path).pixel_spacing_mm is None:
        with pytest.raises(ConfigError, match="pixel spacing"):
            segment_image_file(path, {}, tmp_path / "a.npz", tmp_path / "a.tsv")


def test_train_apply_and_evaluate_files(tmp_path):
    rows, truth_paths, image_paths = [], [], []
    for i, seed in enumerate(range(30, 36)):
        image, truth = scene(seed)
        image_paths.append(write_png(tmp_path / f"img{i}.png", image))
        truth_paths.append(write_png(tmp_path / f"truth{i}.png", truth.astype(np.uint16)))
        rows.append(
            {
                "image_id": f"img{i}",
                "subject_id": f"s{i}",
                "source": "synthetic",
                "subset": "main",
                "has_pixels": "true",
                "path": image_paths[-1],
                "pixel_spacing_mm": SPACING,
                "truth_mask_path": truth_paths[-1],
            }
        )
    model = tmp_path / "selector.joblib"
    train_selector_files(image_paths[:4], truth_paths[:4], PARAMS, model, pixel_spacings_mm=[SPACING] * 4)
    assert model.exists()
    for i in (4, 5):
        for d, sel in (("sel", model), ("plain", None)):
            segment_image_file(
                image_paths[i],
                PARAMS,
                tmp_path / d / f"img{i}.npz",
                tmp_path / d / f"img{i}.tsv",
                selector_path=sel,
                pixel_spacing_mm=SPACING,
            )
    selected = pd.read_csv(tmp_path / "sel" / "img4.tsv", sep="\t")
    plain = pd.read_csv(tmp_path / "plain" / "img4.tsv", sep="\t")
    assert len(selected) < len(plain)
    assert (selected["selector_score"] >= 0.5).all()

    images_tsv = tmp_path / "images.tsv"
    pd.DataFrame(rows).to_csv(images_tsv, sep="\t", index=False)
    rois_tsv = tmp_path / "rois.tsv"
    pd.DataFrame(columns=["roi_id", "image_id", "shape", "label", "source"]).to_csv(rois_tsv, sep="\t", index=False)
    out = tmp_path / "metrics" / "segmentation.json"
    metrics = evaluate_segmentation_files(
        images_tsv,
        rois_tsv,
        tmp_path / "sel",
        PARAMS,
        out,
        tmp_path / "froc.png",
        tmp_path / "gallery.png",
        image_ids=["img4", "img5"],
    )
    written = json.loads(out.read_text())
    assert written["n_images"] == 2 and written["n_truth_objects"] == 12
    assert written["tpr_at_0.4_fp_per_cm2"] == metrics["tpr_at_0.4_fp_per_cm2"]
    assert "cluster_sensitivity" not in written
    assert (tmp_path / "froc.png").stat().st_size > 0 and (tmp_path / "gallery.png").stat().st_size > 0

    # Segmenting with selector_threshold 0 keeps every candidate (full FROC); the
    # evaluation's operating point still applies the configured threshold.
    for i in (4, 5):
        segment_image_file(
            image_paths[i],
            {**PARAMS, "selector_threshold": 0.0},
            tmp_path / "all" / f"img{i}.npz",
            tmp_path / "all" / f"img{i}.tsv",
            selector_path=model,
            pixel_spacing_mm=SPACING,
        )
    full = evaluate_segmentation_files(
        images_tsv,
        rois_tsv,
        tmp_path / "all",
        PARAMS,
        tmp_path / "all.json",
        image_ids=["img4", "img5"],
        plain_hdog_from_scores=True,
    )
    # plain HDoG: the same candidates ranked by DoG response; the selector must beat it
    assert full["tpr_at_0.4_fp_per_cm2"] > full["plain_hdog"]["tpr_at_0.4_fp_per_cm2"]
    assert full["operating_point_tpr"] == metrics["operating_point_tpr"]
    assert full["operating_point_fp_per_cm2"] == pytest.approx(metrics["operating_point_fp_per_cm2"])
    assert full["froc"]["fp_per_cm2"][-1] >= metrics["froc"]["fp_per_cm2"][-1]


def test_evaluate_cluster_truth_files(tmp_path):
    rows, rois = [], []
    for i, seed in enumerate((40, 41)):
        image, truth = scene(seed, n_calc=5)
        path = write_png(tmp_path / f"m{i}.png", image)
        rows.append(
            {
                "image_id": f"m{i}",
                "subject_id": f"s{i}",
                "source": "mias",
                "subset": "main",
                "has_pixels": "true",
                "path": path,
                "pixel_spacing_mm": SPACING,
                "truth_mask_path": "",
            }
        )
        segment_image_file(
            path, PARAMS, tmp_path / "seg" / f"m{i}.npz", tmp_path / "seg" / f"m{i}.tsv", pixel_spacing_mm=SPACING
        )
    ys, xs = np.nonzero(scene(40, n_calc=5)[1])
    rois.append(
        {
            "roi_id": "r0",
            "image_id": "m0",
            "shape": "circle",
            "label": "benign",
            "source": "mias",
            "abnormality": "calcification",
            "center_x": xs.mean(),
            "center_y": ys.mean(),
            "radius_px": 200.0,
            "x_min": 0,
            "y_min": 0,
            "x_max": 160,
            "y_max": 150,
        }
    )
    pd.DataFrame(rows).to_csv(tmp_path / "images.tsv", sep="\t", index=False)
    pd.DataFrame(rois).to_csv(tmp_path / "rois.tsv", sep="\t", index=False)
    metrics = evaluate_segmentation_files(
        tmp_path / "images.tsv", tmp_path / "rois.tsv", tmp_path / "seg", PARAMS, tmp_path / "segmentation.json"
    )
    assert metrics["n_annotated_clusters"] == 1 and metrics["cluster_sensitivity"] == 1.0
    assert metrics["n_normal_images"] == 1
    assert metrics["false_clusters_per_normal_image"] >= 1.0  # m1 has planted disks but is "normal"
    assert "tpr_at_0.4_fp_per_cm2" not in metrics


def test_train_with_weak_circle_labels(tmp_path):
    """Cluster annotations only: candidates inside circles positive, normal films negative."""
    paths, circles, normal = [], [], []
    for i, seed in enumerate((50, 51, 52, 53)):
        image, truth = scene(seed, n_calc=6 if i < 2 else 0)
        paths.append(write_png(tmp_path / f"w{i}.png", image))
        if i < 2:
            ys, xs = np.nonzero(truth)
            circles.append([(float(x), float(y), 3.0) for y, x in zip(ys[::5], xs[::5])])
        else:
            circles.append(None)
        normal.append(i >= 2)
    model = tmp_path / "weak.joblib"
    selector = train_selector_files(
        paths, None, PARAMS, model, circles=circles, normal=normal, pixel_spacings_mm=[SPACING] * 4
    )
    assert model.exists() and selector.n_positive_ >= 6 and selector.n_negative_ > selector.n_positive_


@pytest.mark.parametrize("section", ["segment", "masks"])
def test_config_schemas_document_every_key(section):
    import jsonschema

    from calcsig.segment.stage import section_params, section_schema

    schema = section_schema(section)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    for key, prop in schema["properties"].items():
        assert "default" in prop and prop.get("description"), key
        if key.endswith("_mm"):
            assert "at 0.07 mm" in prop["description"], key
    assert section_params(section, {}) == {k: v["default"] for k, v in schema["properties"].items()}
