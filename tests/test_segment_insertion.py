"""Lesion insertion: simulated clusters in real-like normal films, matched to the film, with exact truth."""

import json

import joblib
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage as ndi

from calcsig.errors import CalcsigError
from calcsig.segment.inserted import insert_lesions_file
from calcsig.segment.insertion import (
    HIGHPASS_SIGMA_PX,
    film_rng,
    insert_clusters,
    local_noise,
)
from calcsig.segment.insertion_evaluation import evaluate_lesion_insertion, held_out_normal_films
from calcsig.segment.selector import CandidateSelector, train_selector_for_scope
from calcsig.segment.store import SELECTOR_FEATURE_COLUMNS, segment_image_file
from calcsig.synthetic.calcifications import render_cluster


def film(seed, shape=(200, 170), noise=1.5, dtype=np.uint8):
    """A film-like image at 0.2 mm: a rounded breast of smooth tissue, air on the right, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    breast = ((yy - shape[0] / 2) / (0.48 * shape[0])) ** 2 + (xx / (0.85 * shape[1])) ** 2 <= 1
    tissue = ndi.gaussian_filter(rng.normal(0, 1, shape), 8) * 60
    image = np.where(breast, 110 + tissue, 3.0) + rng.normal(0, noise, shape)
    if dtype == np.uint8:
        image = np.clip(np.rint(image), 0, 255)
    return image.astype(dtype), breast


def test_local_noise_measures_the_pixel_noise_of_a_textured_film():
    for sigma in (1.0, 4.0):
        image, breast = film(1, noise=sigma, dtype=np.float64)
        residual = image - ndi.gaussian_filter(image, HIGHPASS_SIGMA_PX)
        assert local_noise(residual, breast, (100, 60), 0.2) == pytest.approx(sigma, rel=0.15)


def test_inserted_clusters_peak_at_their_contrast_times_the_local_noise():
    for sigma in (1.0, 3.0):
        image, breast = film(2, noise=sigma, dtype=np.float64)
        out, truth, clusters = insert_clusters(image, 0.2, breast, np.random.default_rng(5), 2, (6.0, 6.0))
        assert len(clusters) == 2
        added = out - image
        residual = image - ndi.gaussian_filter(image, HIGHPASS_SIGMA_PX)
        for cluster in clusters:
            first, last = cluster.labels
            peaks = ndi.maximum(added, truth, np.arange(first, last + 1))
            assert np.median(peaks) == pytest.approx(6.0 * cluster.local_noise, rel=1e-6)
            assert cluster.local_noise == pytest.approx(local_noise(residual, breast, cluster.centre_yx_px, 0.2))
            assert cluster.local_noise == pytest.approx(sigma, rel=0.2)
        # the signal added is the cluster as rendered at the film's spacing, only scaled
        assert np.all(added >= 0) and np.all(added[~breast] < 1e-9)


def test_inserted_clusters_lie_inside_the_breast_apart_with_consecutive_truth_labels():
    image, breast = film(3, shape=(400, 300))
    out, truth, clusters = insert_clusters(image, 0.2, breast, film_rng(7, "img"), 3, max_radius_mm=6.0)
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert len(clusters) == 3 and not (truth[~breast] > 0).any()
    assert [c.labels[0] for c in clusters] == [1, clusters[0].labels[1] + 1, clusters[1].labels[1] + 1]
    assert set(np.unique(truth)) == set(range(int(truth.max()) + 1))
    centres = np.array([c.centre_yx_px for c in clusters]) * 0.2
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.hypot(*(centres[i] - centres[j])) > clusters[i].radius_mm + clusters[j].radius_mm
    # the same seed and image give the same film; another image another one
    again, truth_again, _ = insert_clusters(image, 0.2, breast, film_rng(7, "img"), 3, max_radius_mm=6.0)
    np.testing.assert_array_equal(out, again)
    np.testing.assert_array_equal(truth, truth_again)
    other, _, _ = insert_clusters(image, 0.2, breast, film_rng(7, "other"), 3, max_radius_mm=6.0)
    assert not np.array_equal(out, other)


def test_insertion_stops_when_the_breast_has_no_room_and_clips_to_the_stored_range():
    image, breast = film(4, shape=(80, 60))
    _, _, clusters = insert_clusters(image, 0.2, breast, np.random.default_rng(0), 10, max_radius_mm=4.0)
    assert 1 <= len(clusters) < 10
    bright = np.full((120, 120), 250, np.uint8)
    out, truth, _ = insert_clusters(bright, 0.2, np.ones_like(bright, bool), np.random.default_rng(0), 1, (50.0, 50.0))
    assert out.dtype == np.uint8 and out.max() == 255 and (truth > 0).any()


def test_rendering_at_the_film_spacing_conserves_the_cluster_in_millimetres():
    # the same design rendered at 0.1 and 0.2 mm: the same integrated attenuation per mm2
    from calcsig.synthetic.calcifications import design_cluster

    design = design_cluster("dcis", np.random.default_rng(1), max_radius_mm=3.0)
    fine = render_cluster(design, (100.0, 100.0), (200, 200), 0.1, 0.06)
    coarse = render_cluster(design, (50.0, 50.0), (100, 100), 0.2, 0.06)
    assert fine.attenuation.sum() * 0.01 == pytest.approx(coarse.attenuation.sum() * 0.04, rel=0.05)


def corpus(tmp_path, n_normal=3):
    """A tiny film corpus: normal films (some held out) and one abnormal film, so the source annotates findings."""
    rows, rois, assignment = [], [], []
    for i in range(n_normal + 1):
        image, _ = film(10 + i)
        path = tmp_path / f"f{i}.png"
        Image.fromarray(image).save(path)
        image_id = f"f{i}"
        rows.append(
            {
                "image_id": image_id,
                "subject_id": f"s{i}",
                "source": "films",
                "subset": "main",
                "has_pixels": True,
                "path": str(path),
                "pixel_spacing_mm": 0.2,
            }
        )
        split = "train" if i in (0, n_normal) else "eval"
        assignment.append({"level": "image", "subject_id": f"s{i}", "image_id": image_id, "roi_id": ""})
        assignment[-1].update(split=split, outer_fold="1" if split == "train" else "")
    rois.append(
        {
            "roi_id": "r0",
            "image_id": f"f{n_normal}",
            "label": "benign",
            "shape": "circle",
            "abnormality": "calcification",
            "source": "films",
            "center_x": 50.0,
            "center_y": 100.0,
            "radius_px": 40.0,
            "x_min": 10,
            "y_min": 60,
            "x_max": 91,
            "y_max": 141,
        }
    )
    pd.DataFrame(rows).to_csv(tmp_path / "images.tsv", sep="\t", index=False)
    pd.DataFrame(rois).to_csv(tmp_path / "rois.tsv", sep="\t", index=False)
    pd.DataFrame(assignment).to_csv(tmp_path / "assignment.tsv", sep="\t", index=False)
    return [tmp_path / f"{name}.tsv" for name in ("images", "rois", "assignment")]


def insert_all(tmp_path, tables, params, seed, folder="inserted"):
    images = pd.read_csv(tables[0], sep="\t")
    normal = images[images["image_id"] != images["image_id"].iloc[-1]]  # the last film has a finding
    out = {}
    for _, row in normal.iterrows():
        npz, tsv = tmp_path / folder / f"{row['image_id']}.npz", tmp_path / folder / f"{row['image_id']}.tsv"
        insert_lesions_file(row["path"], row["image_id"], 0.2, params, seed, npz, tsv)
        out[row["image_id"]] = (npz, tsv)
    return out


def test_lesion_insertion_evaluates_the_held_out_normal_films_and_repeats_exactly(tmp_path):
    tables = corpus(tmp_path)
    assert held_out_normal_films(*tables) == ["f1", "f2"]  # f0 is a train film, f3 has a finding
    params = {"insertion_clusters_per_image": 2, "insertion_max_radius_mm": 4.0, "border_margin_mm": 1.0}
    inserted = insert_all(tmp_path, tables, params, 11)
    with np.load(inserted["f1"][0]) as stored:
        assert stored["truth"].max() == stored["cluster_labels"][-1, 1] and len(stored["cluster_radius_mm"]) == 2
        assert stored["labels"].shape == stored["truth"].shape
    # a selector that learned "bright, high-contrast candidates are calcifications"
    rng = np.random.default_rng(0)
    X = rng.normal(0, 10, (400, len(SELECTOR_FEATURE_COLUMNS)))
    peak = SELECTOR_FEATURE_COLUMNS.index("sel_peak_snr")
    selector = CandidateSelector(max_iter=30, min_samples_leaf=5).fit(X, (X[:, peak] > 8).astype(int))
    joblib.dump(selector, tmp_path / "selector.joblib")
    (tmp_path / "point.json").write_text(json.dumps({"threshold": 0.5, "rule": "fixed"}))
    kwargs = dict(selector_path=tmp_path / "selector.joblib", operating_point_path=tmp_path / "point.json")
    result = evaluate_lesion_insertion(*tables, inserted, params, 11, tmp_path / "a.json", tmp_path / "a.png", **kwargs)
    assert result["n_images"] == 2 and result["n_clusters"] == 4  # the held-out films only
    assert result["contrast_snr"] == [4.0, 12.0] and result["local_noise"]["median"] == pytest.approx(1.5, rel=0.3)
    plain, chosen = result["plain_hdog"], result["selector"]
    assert plain["n_truth_objects"] == chosen["n_truth_objects"] > 8
    assert plain["tpr_at_0.4_fp_per_cm2"] > 0 and plain["froc"]["sensitivity"][-1] >= 0.5
    assert plain["inserted_cluster_sensitivity"] >= 0.5
    assert chosen["threshold"] == 0.5 and chosen["operating_point_tpr"] <= plain["operating_point_tpr"]
    assert (tmp_path / "a.png").stat().st_size > 0
    # the same seed gives the same bytes; another seed other lesions
    again = insert_all(tmp_path, tables, params, 11, "again")
    # the same bytes again, and from two worker processes
    evaluate_lesion_insertion(*tables, again, params, 11, tmp_path / "b.json", None, **kwargs, workers=2)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert inserted["f1"][1].read_bytes() == again["f1"][1].read_bytes()
    other = insert_all(tmp_path, tables, params, 12, "other")
    assert inserted["f1"][1].read_bytes() != other["f1"][1].read_bytes()


def test_the_selector_also_trains_on_the_training_films_with_inserted_lesions(tmp_path):
    tables = corpus(tmp_path, n_normal=4)
    params = {"insertion_max_radius_mm": 4.0, "border_margin_mm": 1.0}
    inserted = insert_all(tmp_path, tables, params, 3)
    segment_dir = tmp_path / "seg"
    images = pd.read_csv(tables[0], sep="\t")
    for _, row in images.iterrows():
        segment_image_file(
            row["path"], params, segment_dir / f"{row['image_id']}.npz", segment_dir / f"{row['image_id']}.tsv", 0.2
        )
    # every film in train so that the train split holds normal films, the abnormal one, and their inserted copies
    assignment = pd.read_csv(tables[2], sep="\t", dtype=str, keep_default_na=False).assign(
        split="train", outer_fold="1"
    )
    assignment.to_csv(tables[2], sep="\t", index=False)
    train = {**params, "selector_max_iter": 20, "selector_min_samples_leaf": 2, "selector_threshold": 0.5}
    args = (*tables, segment_dir, train)
    # these smooth films give no candidate inside the annotated circle: nothing to learn from ...
    with pytest.raises(CalcsigError, match="0 positive and .* negative candidates"):
        train_selector_for_scope(*args, tmp_path / "a.joblib", tmp_path / "a.json", "train")
    # ... but their copies with inserted lesions do
    chosen = train_selector_for_scope(*args, tmp_path / "b.joblib", tmp_path / "b.json", "train", inserted)
    assert chosen["n_inserted_images"] == 4 and chosen["n_images"] == 5
    assert chosen["n_positive_candidates"] > 8 and chosen["threshold"] == 0.5
    # a bound on the training images: whole subjects, and only the inserted copies of the films taken
    bounded_args = (*tables, segment_dir, {**train, "selector_max_training_images": 3})
    bounded = train_selector_for_scope(*bounded_args, tmp_path / "c.joblib", tmp_path / "c.json", "train", inserted)
    assert bounded["n_images"] == 3 and bounded["n_images_with_truth"] == 5
    assert 2 <= bounded["n_inserted_images"] <= 3
    assert json.loads((tmp_path / "c.json").read_text())["n_images"] == 3
