# ruff: noqa: E501  (the Markdown table rows printed below are long by nature)
"""Cluster-level operating points of a finished run: what each target would choose, and what it reaches.

Reads a working directory where the workflow has produced
results/metrics/segmentation.json on a corpus with cluster annotations (e.g.
mini-MIAS with the default segment settings). For each target cluster
sensitivity it repeats the workflow's choice on the train split's out-of-fold
scores (the same training images, inserted lesions, folds and seed), then
measures the held-out images at that threshold. It also lists, per held-out
annotated cluster, the false clusters per normal film at which the selector
(and plain HDoG) first find it, which shows what limits the held-out
sensitivity.

Usage: python benchmarks/segment_operating_points.py WORKDIR [--seed 20261122]
Prints Markdown tables (nothing is written).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from calcsig.batch import read_manifests
from calcsig.segment.evaluate import circle_detection_thresholds, cluster_froc
from calcsig.segment.operating_point import choose_operating_point, out_of_fold_scores, subject_folds
from calcsig.segment.params import OPERATING_POINT_KEYS, SELECTOR_KEYS, segment_params
from calcsig.segment.selector import (
    fit_selector,
    load_selector,
    load_training_image,
    load_training_images,
    score_candidates,
    training_image_ids,
)
from calcsig.segment.store import read_candidates
from calcsig.segment.truth import image_splits, truth_kinds
from calcsig.tables import read_table

TARGETS = (0.5, 0.6, 0.7, 0.8, 0.9)


def corpus(workdir: Path, train: bool):
    """The train-split (or held-out) images with truth, and their truth kinds."""
    images = read_table(workdir / "results/corpus/images.tsv", "images")
    rois = read_table(workdir / "results/corpus/rois.tsv", "rois")
    if train:
        wanted = set(training_image_ids(workdir / "results/splits/assignment.tsv", "train"))
    else:
        splits = image_splits(workdir / "results/splits/assignment.tsv")
        wanted = set(splits.index[splits != "train"])
    images = images[images["image_id"].astype(str).isin(wanted)]
    kinds = truth_kinds(images, rois)
    used = kinds["truth_path"].notna() | kinds["circles"].notna() | kinds["normal"]
    return images[used], kinds[used]


def training_images(workdir: Path, params: dict) -> list:
    images, kinds = corpus(workdir, train=True)
    out = load_training_images(images, kinds, workdir / "results/segment", params)
    manifests = sorted((workdir / "results/segment/inserted/batches").glob("*.tsv"))
    if params["selector_inserted_lesions"] and manifests:
        stored = read_manifests(manifests).set_index("image_id")
        for _, row in images.iterrows():
            if row["image_id"] not in stored.index:
                continue
            npz, tsv = workdir / stored.at[row["image_id"], "npz"], workdir / stored.at[row["image_id"], "tsv"]
            with np.load(npz) as z:
                truth = z["truth"]
            image = load_training_image(
                npz, tsv, row["image_id"], row["subject_id"], truth, params=params, inserted=True
            )
            out.append(image)
    return out


def held_out(workdir: Path):
    """Per held-out image with circles (id, selector scores, DoG, centroids mm, circles mm), and per normal film."""
    images, kinds = corpus(workdir, train=False)
    selector = load_selector(workdir / "results/segment/selector/train.joblib")
    circle_images, normal_images = [], []
    for i in images.index:
        image_id = images.at[i, "image_id"]
        table = read_candidates(workdir / f"results/segment/{image_id}.tsv")
        centroids = table[["centroid_x_mm", "centroid_y_mm"]].to_numpy()
        entry = (image_id, score_candidates(table, selector), table["dog_response"].to_numpy(), centroids)
        if kinds.at[i, "circles"]:
            circle_images.append((*entry, np.asarray(kinds.at[i, "circles"], float) * images.at[i, "pixel_spacing_mm"]))
        elif kinds.at[i, "normal"]:
            normal_images.append(entry)
    return circle_images, normal_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--seed", type=int, default=20261122)
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    os.chdir(workdir)  # the corpus tables give paths relative to the working directory
    params = segment_params({"selector_random_state": args.seed})
    images = training_images(workdir, params)
    selector_params = {k: params[k] for k in SELECTOR_KEYS}
    folds = subject_folds(
        [im.subject_id for im in images], [im.has_positive for im in images], params["selector_cv_folds"], args.seed
    )
    scores = out_of_fold_scores(images, folds, lambda part: fit_selector(part, selector_params))
    chosen = {
        target: choose_operating_point(
            images, scores, {**{k: params[k] for k in OPERATING_POINT_KEYS}, "target_cluster_sensitivity": target}
        )
        for target in TARGETS
    }
    circle_images, normal_images = held_out(workdir)
    n_objects, diameter = params["cluster_min_objects"], params["cluster_diameter_mm"]
    curve = cluster_froc(
        [(s, c, circles) for _, s, _, c, circles in circle_images],
        [(s, c) for _, s, _, c in normal_images],
        n_objects,
        diameter,
        extra_thresholds=[point["threshold"] for point in chosen.values()],
    )
    print(
        "| target cluster sensitivity | threshold | train split, out of fold: sensitivity, false clusters / normal film | held out: sensitivity, false clusters / normal film |"
    )
    print("|---|---|---|---|")
    for target, point in chosen.items():
        oof = point["out_of_fold"]
        at = curve.point(point["threshold"])
        print(
            f"| {target:g} | {point['threshold']:.3g} | {oof['cluster_sensitivity']:.3f}, "
            f"{oof['false_clusters_per_normal_image']:.2f} | {at['cluster_sensitivity']:.3f}, "
            f"{at['false_clusters_per_normal_image']:.2f} |"
        )
    plain = cluster_froc(
        [(d, c, circles) for _, _, d, c, circles in circle_images],
        [(d, c) for _, _, d, c in normal_images],
        n_objects,
        diameter,
    )
    print()
    print(
        "| held-out cluster | radius (mm) | candidates inside | selector finds it at (false clusters / normal film) | plain HDoG finds it at |"
    )
    print("|---|---|---|---|---|")
    for image_id, selected, dog, centroids, circles in circle_images:
        selector_at = circle_detection_thresholds(selected, centroids, circles, n_objects)
        plain_at = circle_detection_thresholds(dog, centroids, circles, n_objects)
        for k, circle in enumerate(circles):
            inside = int((np.hypot(centroids[:, 0] - circle[0], centroids[:, 1] - circle[1]) <= circle[2]).sum())
            print(
                f"| {image_id} #{k + 1} | {circle[2]:.1f} | {inside} | {rate(curve, selector_at[k])} | {rate(plain, plain_at[k])} |"
            )


def rate(curve, threshold: float) -> str:
    """False clusters per normal film where a circle found at `threshold` is first found (listed exactly)."""
    if not np.isfinite(threshold):
        return "never (fewer than 3 candidates inside)"
    return f"{curve.point(threshold)['false_clusters_per_normal_image']:.2f}"


if __name__ == "__main__":
    main()
