"""The synthetic corpus as a whole: tables, determinism, views, planted extras."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from calcsig.ingest.synthetic import ingest_synthetic
from calcsig.tables import validate_corpus

TINY = {"n_subjects": 8, "image_height_mm": 25.6, "image_width_mm": 25.6, "pixel_spacing_mm": 0.1}
PLANTED = {
    **TINY,
    "enrichment": {"enabled": True, "n_subjects": 3},
    "duplicates": {"enabled": True, "n_exact": 2, "n_near": 2},
}


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    tables = ingest_synthetic(None, {**TINY, "seed": 7}, out)
    return out, validate_corpus(tables["images"], tables["rois"], tables["subjects"], "synthetic")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    out = tmp_path_factory.mktemp("planted")
    tables = ingest_synthetic(None, {**PLANTED, "seed": 11}, out)
    typed = validate_corpus(tables["images"], tables["rois"], tables["subjects"], "synthetic")
    return out, typed, json.loads((out / "synthetic" / "planted.json").read_text())


def test_tables_validate_and_describe_the_files(tiny):
    out, t = tiny
    images, subjects = t["images"], t["subjects"]
    assert len(subjects) == 8 and set(images["subject_id"]) == set(subjects["subject_id"])
    assert (images["source"] == "synthetic").all() and (images["subset"] == "main").all()
    assert images["has_pixels"].all() and (images["bits"] == 14).all()
    assert (images["pixel_spacing_mm"] == 0.1).all() and (images["height"] == 256).all()
    for row in images.itertuples():
        data = Path(row.path).read_bytes()
        assert Path(row.path).parent == out / "synthetic" / "images"
        assert hashlib.sha256(data).hexdigest() == row.sha256
        pixels = _pixels(row.path)
        assert pixels.shape == (row.height, row.width) and pixels.max() < 2**14
        assert pd.notna(row.age) and row.density in "ABCD" and pd.notna(row.race_ethnicity)
    counts = images.groupby("subject_id").size()
    assert (subjects.set_index("subject_id")["n_images"] == counts).all()
    assert set(counts) <= {1, 2}


def test_rois_carry_labels_mapped_from_fine_class(tiny):
    _, t = tiny
    rois = t["rois"]
    assert len(rois) >= len(t["images"])  # at least one ROI per image
    mapping = {"benign": "benign", "high_risk": "actionable", "dcis": "actionable", "invasive": "actionable"}
    assert (rois["fine_class"].map(mapping) == rois["label"]).all()
    assert (rois["shape"] == "bbox").all() and (rois["abnormality"] == "calcification").all()
    assert rois["calc_type"].notna().all() and rois["calc_distribution"].notna().all()


def test_truth_masks_label_each_calcification_inside_its_roi(tiny):
    _, t = tiny
    rois = t["rois"]
    for row in t["images"].itertuples():
        labels = _pixels(row.truth_mask_path)
        assert labels.dtype == np.uint16 and labels.shape == (row.height, row.width)
        values = np.unique(labels[labels > 0])
        assert values.size >= 3 and (values == np.arange(1, values.size + 1)).all()
        inside = np.zeros(labels.shape, bool)
        for roi in rois[rois["image_id"] == row.image_id].itertuples():
            inside[roi.y_min : roi.y_max, roi.x_min : roi.x_max] = True
        assert inside[labels > 0].all()


def test_two_views_show_the_same_clusters_with_the_same_labels(tiny):
    _, t = tiny
    images, rois = t["images"], t["rois"]
    two_view = images.groupby("subject_id").filter(lambda g: len(g) == 2)
    assert len(two_view), "the tiny cohort should contain two-view subjects"
    for _, group in two_view.groupby("subject_id"):
        assert sorted(group["view"]) == ["CC", "MLO"] and group["laterality"].nunique() == 1
        per_view = [
            rois[rois["image_id"] == i]
            .assign(cluster=lambda r: r["roi_id"].str.rsplit("_", n=1).str[1])
            .set_index("cluster")[["label", "fine_class", "calc_type", "calc_distribution"]]
            .sort_index()
            for i in group["image_id"]
        ]
        pd.testing.assert_frame_equal(per_view[0], per_view[1])


def test_same_seed_same_bytes_and_another_seed_differs(tmp_path):
    small = {**TINY, "n_subjects": 3}
    runs = {
        name: ingest_synthetic(None, {**small, "seed": seed}, tmp_path / name)["images"]
        for name, seed in (("a", 5), ("b", 5), ("c", 6))
    }
    for kind in ("images", "truth"):
        files = sorted(p.name for p in (tmp_path / "a" / "synthetic" / kind).iterdir())
        assert files == sorted(p.name for p in (tmp_path / "b" / "synthetic" / kind).iterdir())
        for name in files:
            assert (tmp_path / "a" / "synthetic" / kind / name).read_bytes() == (
                tmp_path / "b" / "synthetic" / kind / name
            ).read_bytes()
    assert list(runs["a"]["sha256"]) == list(runs["b"]["sha256"])
    assert set(runs["a"]["sha256"]).isdisjoint(runs["c"]["sha256"])


def test_enrichment_adds_new_images_of_existing_subjects(planted):
    _, t, truth = planted
    images = t["images"]
    enrichment = images[images["subset"] == "enrichment"]
    assert len(truth["enrichment_subjects"]) == 3
    assert set(enrichment["subject_id"]) == set(truth["enrichment_subjects"])
    main_subjects = set(images.loc[images["subset"] == "main", "subject_id"])
    assert set(truth["enrichment_subjects"]) <= main_subjects
    assert enrichment["image_id"].isin(images.loc[images["subset"] == "main", "image_id"]).sum() == 0
    rois = t["rois"]
    assert rois["image_id"].isin(enrichment["image_id"]).any()


def test_exact_duplicates_repeat_pixels_under_new_image_and_subject(planted):
    _, t, truth = planted
    images = t["images"].set_index("image_id")
    assert len(truth["exact_duplicates"]) == 2
    for original, copy in truth["exact_duplicates"]:
        a, b = images.loc[original], images.loc[copy]
        assert a["subject_id"] != b["subject_id"] and b["subset"] == "main"
        assert np.array_equal(_pixels(a["path"]), _pixels(b["path"]))
        assert np.array_equal(_pixels(a["truth_mask_path"]), _pixels(b["truth_mask_path"]))
    assert t["subjects"]["subject_id"].is_unique


def test_near_duplicates_differ_slightly_and_keep_their_rois(planted):
    _, t, truth = planted
    images, rois = t["images"].set_index("image_id"), t["rois"]
    assert len(truth["near_duplicates"]) == 2
    for original, copy in truth["near_duplicates"]:
        a, b = _pixels(images.loc[original, "path"]), _pixels(images.loc[copy, "path"])
        assert images.loc[copy, "subset"] == "main"
        assert images.loc[original, "subject_id"] != images.loc[copy, "subject_id"]
        assert not np.array_equal(a, b)
        assert np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1] > 0.9
        src, dst = rois[rois["image_id"] == original], rois[rois["image_id"] == copy]
        assert list(src["label"]) == list(dst["label"]) and set(src["roi_id"]).isdisjoint(dst["roi_id"])


def test_planted_copies_are_not_given_away_by_the_tables(planted):
    _, t, truth = planted
    copies = {c for _, c in truth["exact_duplicates"] + truth["near_duplicates"]}
    images = t["images"]
    # copies sit among originals in ID order, and every column has ordinary values
    assert set(images.loc[images["image_id"].isin(copies), "subset"]) == {"main"}
    copy_subjects = images.loc[images["image_id"].isin(copies), "subject_id"]
    numbers = sorted(int(s[3:]) for s in t["subjects"]["subject_id"])
    assert numbers == list(range(1, len(numbers) + 1))
    assert not all(int(s[3:]) > 8 for s in copy_subjects)


def test_adapter_needs_the_top_level_seed(tmp_path):
    with pytest.raises(ValueError, match="seed"):
        ingest_synthetic(None, dict(TINY), tmp_path)
    assert not (tmp_path / "synthetic").exists()
