"""Segment stage on files: stored candidates, empty images, the selector trained on stored candidates, evaluation."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from calcsig.errors import ConfigError
from calcsig.segment.evaluate_files import evaluate_segmentation_files
from calcsig.segment.params import segment_params
from calcsig.segment.selector import train_selector_files
from calcsig.segment.store import CANDIDATE_COLUMNS, read_candidates, segment_image_file

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
    table = read_candidates(tmp_path / "seg" / "a.tsv")
    assert list(table.columns) == CANDIDATE_COLUMNS and len(table) == n >= truth.max()
    with np.load(tmp_path / "seg" / "a.npz") as z:
        assert z["labels"].dtype == np.int32 and z["labels"].max() == n and z["breast"].dtype == bool
        assert float(z["pixel_spacing_mm"]) == SPACING
        area = np.bincount(z["labels"].ravel())[1:]
    np.testing.assert_array_equal(table["area_px"], area)
    # the selector's features are stored with each candidate, so it never reruns detection
    np.testing.assert_allclose(table["sel_area_mm2"], table["area_mm2"], rtol=1e-5)

    flat = write_png(tmp_path / "flat.png", np.full((60, 70), 1234, np.uint16))
    assert segment_image_file(flat, {}, tmp_path / "flat.npz", tmp_path / "flat.tsv", pixel_spacing_mm=0.07) == 0
    assert (tmp_path / "flat.tsv").read_text().strip() == "\t".join(CANDIDATE_COLUMNS)
    with np.load(tmp_path / "flat.npz") as z:
        assert z["labels"].shape == (60, 70) and not z["labels"].any()


def test_spacing_required(tmp_path):
    path = write_png(tmp_path / "a.png", np.zeros((20, 20), np.uint8))
    from calcsig.imageio import read_image

    if read_image(path).pixel_spacing_mm is None:
        with pytest.raises(ConfigError, match="pixel spacing"):
            segment_image_file(path, {}, tmp_path / "a.npz", tmp_path / "a.tsv")


def test_selector_trained_on_stored_candidates_beats_plain_hdog_on_held_out_images(tmp_path):
    rows, truth_paths, segmented = [], [], []
    for i, seed in enumerate(range(30, 36)):
        image, truth = scene(seed)
        path = write_png(tmp_path / f"img{i}.png", image)
        truth_paths.append(write_png(tmp_path / f"truth{i}.png", truth.astype(np.uint16)))
        npz, tsv = tmp_path / "seg" / f"img{i}.npz", tmp_path / "seg" / f"img{i}.tsv"
        segment_image_file(path, PARAMS, npz, tsv, pixel_spacing_mm=SPACING)
        segmented.append((npz, tsv))
        rows.append(
            {
                "image_id": f"img{i}",
                "subject_id": f"s{i}",
                "source": "synthetic",
                "subset": "main",
                "has_pixels": "true",
                "path": path,
                "pixel_spacing_mm": SPACING,
                "truth_mask_path": truth_paths[-1],
            }
        )
    model = tmp_path / "selector.joblib"
    selector = train_selector_files(segmented[:4], PARAMS, model, truth_paths=truth_paths[:4])
    assert model.exists() and selector.n_positive_ > 0 and selector.n_negative_ > 0

    images_tsv = tmp_path / "images.tsv"
    pd.DataFrame(rows).to_csv(images_tsv, sep="\t", index=False)
    rois_tsv = tmp_path / "rois.tsv"
    pd.DataFrame(columns=["roi_id", "image_id", "shape", "label", "source"]).to_csv(rois_tsv, sep="\t", index=False)
    held_out = ["img4", "img5"]
    plain = evaluate_segmentation_files(
        images_tsv, rois_tsv, tmp_path / "seg", PARAMS, tmp_path / "plain.json", image_ids=held_out
    )
    assert plain["n_images"] == 2 and plain["n_truth_objects"] == 12 and "cluster_sensitivity" not in plain
    out = tmp_path / "metrics" / "segmentation.json"
    metrics = evaluate_segmentation_files(
        images_tsv,
        rois_tsv,
        tmp_path / "seg",
        PARAMS,
        out,
        tmp_path / "froc.png",
        tmp_path / "gallery.png",
        tmp_path / "gallery_worst.png",
        image_ids=held_out,
        selector_path=model,
        operating_point={"threshold": 0.5, "rule": "fixed by segment.selector_threshold", "chosen_on": "configuration"},
    )
    assert json.loads(out.read_text()) == json.loads(json.dumps(metrics))
    # plain HDoG is the same stored candidates ranked by DoG response; the selector must beat it
    assert metrics["plain_hdog"]["tpr_at_0.4_fp_per_cm2"] == plain["tpr_at_0.4_fp_per_cm2"]
    assert metrics["tpr_at_0.4_fp_per_cm2"] > plain["tpr_at_0.4_fp_per_cm2"]
    # the operating point keeps fewer candidates than the whole curve
    assert metrics["operating_point_fp_per_cm2"] < metrics["plain_hdog"]["operating_point_fp_per_cm2"]
    assert metrics["operating_point"] == {
        "threshold": 0.5,
        "rule": "fixed by segment.selector_threshold",
        "chosen_on": "configuration",
    }
    # native 0.1 mm images are detected as they are, and the evaluation says so
    assert metrics["spacing"]["resampled"] is False and metrics["spacing"]["working_spacing_mm"] == SPACING
    for figure in ("froc.png", "gallery.png", "gallery_worst.png"):
        assert (tmp_path / figure).stat().st_size > 0, figure


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
    segmented, circles, normal = [], [], []
    for i, seed in enumerate((50, 51, 52, 53)):
        image, truth = scene(seed, n_calc=6 if i < 2 else 0)
        path = write_png(tmp_path / f"w{i}.png", image)
        npz, tsv = tmp_path / f"w{i}.npz", tmp_path / f"w{i}.tsv"
        segment_image_file(path, PARAMS, npz, tsv, pixel_spacing_mm=SPACING)
        segmented.append((npz, tsv))
        if i < 2:
            ys, xs = np.nonzero(truth)
            circles.append([(float(x), float(y), 3.0) for y, x in zip(ys[::5], xs[::5])])
        else:
            circles.append(None)
        normal.append(i >= 2)
    model = tmp_path / "weak.joblib"
    selector = train_selector_files(segmented, PARAMS, model, circles=circles, normal=normal)
    assert model.exists() and selector.n_positive_ >= 6 and selector.n_negative_ > selector.n_positive_


@pytest.mark.parametrize("section", ["segment", "masks"])
def test_config_schemas_document_every_key(section):
    import jsonschema

    from calcsig.settings import section_params, section_schema

    schema = section_schema(section)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    for key, prop in schema["properties"].items():
        assert "default" in prop and prop.get("description"), key
        if key.endswith("_mm"):
            assert "at 0.07 mm" in prop["description"], key
    assert section_params(section, {}) == {k: v["default"] for k, v in schema["properties"].items()}


def test_evaluation_gives_the_same_bytes_with_one_or_two_workers(tmp_path):
    """Pixel truth, an annotated cluster and a normal film, ranked by a selector: every output of the
    evaluation is the same whether one process or two read and summarise the images."""
    rows, rois, segmented, truth_paths = [], [], [], []
    for i, seed in enumerate(range(60, 67)):
        image, truth = scene(seed)
        path = write_png(tmp_path / f"e{i}.png", image)
        pixel_truth = i < 5  # four train the selector, one is evaluated; e5 has a circle, e6 is normal
        truth_paths.append(write_png(tmp_path / f"t{i}.png", truth.astype(np.uint16)) if pixel_truth else "")
        npz, tsv = tmp_path / "seg" / f"e{i}.npz", tmp_path / "seg" / f"e{i}.tsv"
        segment_image_file(path, PARAMS, npz, tsv, pixel_spacing_mm=SPACING)
        segmented.append((npz, tsv))
        source = "synthetic" if pixel_truth else "mias"
        rows.append(
            {
                "image_id": f"e{i}",
                "subject_id": f"s{i}",
                "source": source,
                "subset": "main",
                "has_pixels": "true",
                "path": path,
                "pixel_spacing_mm": SPACING,
                "truth_mask_path": truth_paths[-1],
            }
        )
        if i == 5:
            ys, xs = np.nonzero(truth)
            rois.append(
                {
                    "roi_id": "r5",
                    "image_id": "e5",
                    "shape": "circle",
                    "label": "actionable",
                    "source": "mias",
                    "abnormality": "calcification",
                    "center_x": xs.mean(),
                    "center_y": ys.mean(),
                    "radius_px": 60.0,
                    "x_min": 0,
                    "y_min": 0,
                    "x_max": 160,
                    "y_max": 150,
                }
            )
    model = tmp_path / "selector.joblib"
    train_selector_files(segmented[:4], PARAMS, model, truth_paths=truth_paths[:4])
    pd.DataFrame(rows).to_csv(tmp_path / "images.tsv", sep="\t", index=False)
    pd.DataFrame(rois).to_csv(tmp_path / "rois.tsv", sep="\t", index=False)
    outputs = {}
    for workers in (1, 2):
        out = tmp_path / f"workers{workers}"
        evaluate_segmentation_files(
            tmp_path / "images.tsv",
            tmp_path / "rois.tsv",
            tmp_path / "seg",
            {**PARAMS, "gallery_size": 3},
            out / "segmentation.json",
            out / "froc.png",
            out / "gallery.png",
            out / "gallery_worst.png",
            image_ids=["e4", "e5", "e6"],
            selector_path=model,
            operating_point={"threshold": 0.5, "rule": "fixed", "chosen_on": "configuration"},
            workers=workers,
        )
        outputs[workers] = {path.name: path.read_bytes() for path in sorted(out.iterdir())}
    metrics = json.loads(outputs[1]["segmentation.json"])
    # all three kinds of truth were evaluated, each for the selector and for plain HDoG
    assert metrics["n_images_pixel_truth"] == 1 and metrics["n_annotated_clusters"] == 1
    assert metrics["n_normal_images"] == 1 and metrics["plain_hdog"]["n_normal_images"] == 1
    assert {"froc.png", "gallery.png", "gallery_worst.png", "segmentation.json"} <= set(outputs[1])
    assert outputs[2] == outputs[1]
