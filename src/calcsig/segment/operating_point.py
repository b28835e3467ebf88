"""The selector's operating point, chosen per corpus on out-of-fold scores of its training images.

A threshold fixed once (0.5) means different things on different corpora: the
selector's scores depend on how its training labels were made (pixel truth,
weak cluster labels) and on how hard the corpus is. So the threshold is chosen
where it is used, for a target sensitivity, on scores the selector gave to
candidates it was not trained on: the training images are split into
subject-grouped folds, a selector is trained on all folds but one and scores
the held-out fold's candidates. The target is a cluster sensitivity when the
training images carry cluster annotations (circles), else a calcification
sensitivity (pixel truth). The threshold is the highest whose out-of-fold
sensitivity reaches the target, which keeps the fewest false positives that do.
"""

from __future__ import annotations

import hashlib

import numpy as np

from calcsig.errors import CalcsigError
from calcsig.parallel import ordered_map
from calcsig.segment.evaluate import cluster_froc, froc_curve, greedy_match
from calcsig.segment.params import OPERATING_POINT_KEYS, segment_params


def subject_folds(subject_ids, has_positive, n_folds: int, seed: int) -> np.ndarray:
    """Fold (0..n_folds-1) of each image: whole subjects per fold, subjects with positives spread evenly.

    subject_ids : (n,) subject of each image; has_positive : (n,) bool, the image
    carries calcification truth (circles or non-empty pixel truth). Subjects are
    ordered by a hash of (seed, subject) within each stratum (with / without
    positives) and dealt round robin, continuing across strata, so the same
    inputs and seed give the same folds. n_folds is capped at the number of subjects.
    """
    subject_ids = np.asarray([str(s) for s in subject_ids])
    has_positive = np.asarray(has_positive, dtype=bool)
    subjects = sorted(set(subject_ids))
    n_folds = min(int(n_folds), len(subjects))
    if n_folds < 2:
        raise CalcsigError(
            f"out-of-fold selector scores need at least 2 subjects among the training images, got {len(subjects)}; "
            "set segment.selector_threshold to fix the operating point instead"
        )
    positive_subjects = set(subject_ids[has_positive])

    def order(subject):
        return hashlib.sha256(f"{seed}:{subject}".encode()).hexdigest()

    fold_of, position = {}, 0
    for stratum in (sorted(positive_subjects, key=order), sorted(set(subjects) - positive_subjects, key=order)):
        for subject in stratum:
            fold_of[subject] = position % n_folds
            position += 1
    return np.array([fold_of[s] for s in subject_ids], dtype=int)


def out_of_fold_scores(images, folds: np.ndarray, fit, workers: int = 1) -> list[np.ndarray | None]:
    """Per image, the scores of a selector trained on the other folds' images (None when that
    fold's training part lacks positives or negatives, so no selector could be trained).

    images : training images (`features`, `y` with -1 for unknown); fit(list of images) -> selector;
    workers : processes fitting the folds' selectors side by side (the scores do not depend on it).
    """
    return fit_with_out_of_fold_scores(images, folds, fit, workers, final=False)[1]


def fit_with_out_of_fold_scores(images, folds: np.ndarray, fit, workers: int = 1, final: bool = True):
    """(fit(images), `out_of_fold_scores`), the final fit (None unless `final`) and the folds' fits
    made by up to `workers` processes side by side."""

    def task(fold):
        if fold is None:
            return fit(images)
        train = [im for im, f in zip(images, folds) if f != fold]
        y = np.concatenate([im.y[im.y >= 0] for im in train] + [np.zeros(0, int)])
        if np.unique(y).size < 2:
            return None
        selector = fit(train)
        return [selector.score_candidates(images[i].features) for i in np.flatnonzero(folds == fold)]

    tasks = ([None] if final else []) + [int(f) for f in np.unique(folds)]
    done = ordered_map(task, tasks, workers)
    selector = done.pop(0) if final else None
    scores: list[np.ndarray | None] = [None] * len(images)
    for fold, fold_scores in zip(tasks[int(final) :], done):
        if fold_scores is not None:
            for i, score in zip(np.flatnonzero(folds == fold), fold_scores):
                scores[i] = score
    return selector, scores


def _chosen_index(sensitivity: np.ndarray, reached: np.ndarray) -> int:
    """Index (thresholds descending) of the highest threshold reaching the target; when none
    does, of the highest reaching the best sensitivity, or the lowest (keep all) when that is 0."""
    if reached.any():
        return int(np.argmax(reached))
    if sensitivity.max() <= 0:
        return len(sensitivity) - 1
    return int(np.argmax(sensitivity >= sensitivity.max() - 1e-12))


def _cluster_rule(images, scores, p: dict) -> dict:
    circle_images = [
        (s, im.centroids_mm, im.circles_mm)
        for im, s in zip(images, scores)
        if s is not None and im.circles_mm is not None and len(im.circles_mm)
    ]
    normal_images = [(s, im.centroids_mm) for im, s in zip(images, scores) if s is not None and im.normal]
    froc = cluster_froc(circle_images, normal_images, p["cluster_min_objects"], p["cluster_diameter_mm"])
    target = p["target_cluster_sensitivity"]
    sens = froc.cluster_sensitivity
    reached = sens >= target - 1e-12
    index = _chosen_index(sens, reached)
    threshold = float(froc.thresholds[index])
    point = froc.point(threshold)
    n_circles = sum(len(c) for _, _, c in circle_images)
    if reached.any():
        rule = (
            f"highest threshold whose out-of-fold cluster sensitivity on the training images reaches {target:g} "
            f"(reached {point['cluster_sensitivity']:.3f} of {n_circles} clusters"
        )
    else:
        rule = (
            f"target cluster sensitivity {target:g} not reached on the training images' out-of-fold scores; "
            f"highest threshold reaching their best, {point['cluster_sensitivity']:.3f} of {n_circles} clusters"
        )
    if point["false_clusters_per_normal_image"] is not None:
        rule += f", {point['false_clusters_per_normal_image']:.2f} false clusters per normal image)"
    else:
        rule += ")"
    return {
        "threshold": threshold,
        "rule": rule,
        "target_cluster_sensitivity": target,
        "reached": bool(reached.any()),
        "out_of_fold": {
            "cluster_sensitivity": point["cluster_sensitivity"],
            "false_clusters_per_normal_image": point["false_clusters_per_normal_image"],
            "n_annotated_clusters": n_circles,
            "n_normal_images": len(normal_images),
        },
    }


def _calcification_rule(images, scores, p: dict) -> dict:
    all_scores, all_tp, n_truth, area = [], [], 0, 0.0
    for im, s in zip(images, scores):
        if s is None or im.truth_pairs is None:
            continue
        all_scores.append(s)
        all_tp.append(greedy_match(s, im.truth_pairs) > 0)
        n_truth += im.n_truth
        area += im.breast_area_cm2
    froc = froc_curve(np.concatenate(all_scores), np.concatenate(all_tp), n_truth, area)
    target = p["target_sensitivity"]
    sens = froc.sensitivity
    reached = sens >= target - 1e-12
    index = _chosen_index(sens, reached)
    threshold = float(froc.thresholds[index])
    if reached.any():
        rule = (
            f"highest threshold whose out-of-fold calcification sensitivity on the training images reaches "
            f"{target:g} (reached {sens[index]:.3f} of {n_truth} calcifications at {froc.fp_per_cm2[index]:.2f} "
            "false positives per cm2)"
        )
    else:
        rule = (
            f"target sensitivity {target:g} not reached on the training images' out-of-fold scores; highest "
            f"threshold reaching their best, {sens[index]:.3f} of {n_truth} calcifications"
        )
    return {
        "threshold": threshold,
        "rule": rule,
        "target_sensitivity": target,
        "reached": bool(reached.any()),
        "out_of_fold": {
            "sensitivity": float(sens[index]),
            "fp_per_cm2": float(froc.fp_per_cm2[index]),
            "n_truth_objects": n_truth,
        },
    }


def choose_operating_point(images, scores, params: dict | None = None) -> dict:
    """The operating point from out-of-fold `scores` (one array or None per training image).

    Cluster target when any scored image carries circles, else calcification target
    when any carries pixel truth. Returns {threshold, rule, target_cluster_sensitivity
    or target_sensitivity, reached, out_of_fold}.
    """
    p = segment_params(params, OPERATING_POINT_KEYS)
    scored = [(im, s) for im, s in zip(images, scores) if s is not None]
    if any(im.circles_mm is not None and len(im.circles_mm) for im, _ in scored):
        chosen = _cluster_rule(images, scores, p)
    elif any(im.truth_pairs is not None and im.n_truth for im, _ in scored):
        chosen = _calcification_rule(images, scores, p)
    else:
        raise CalcsigError(
            "no out-of-fold scores on training images with calcification truth (circles or pixel masks), so no "
            "operating point can be chosen; set segment.selector_threshold to fix it"
        )
    return chosen
