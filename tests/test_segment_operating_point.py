"""The selector's operating point: subject folds, out-of-fold scores, cluster-level FROC, the chosen threshold."""

import numpy as np
import pytest

from calcsig.errors import CalcsigError
from calcsig.segment.evaluate import ClusterFROC, cluster_froc, count_clusters
from calcsig.segment.operating_point import choose_operating_point, out_of_fold_scores, subject_folds
from calcsig.segment.selector import CandidateSelector, TrainingImage, train_with_operating_point


def test_subject_folds_keep_subjects_whole_spread_positives_and_repeat_with_the_seed():
    subjects = [f"s{i // 2}" for i in range(40)]  # two images per subject
    positive = [i // 2 < 6 for i in range(40)]  # subjects s0..s5 carry calcifications
    folds = subject_folds(subjects, positive, 3, seed=7)
    for s in set(subjects):
        assert len({f for f, t in zip(folds, subjects) if t == s}) == 1
    positives_per_fold = np.bincount([f for f, t, p in zip(folds, subjects, positive) if p], minlength=3)
    assert list(positives_per_fold) == [4, 4, 4]  # 6 positive subjects x 2 images, 2 subjects per fold
    np.testing.assert_array_equal(folds, subject_folds(subjects, positive, 3, seed=7))
    assert not np.array_equal(folds, subject_folds(subjects, positive, 3, seed=8))
    assert set(subject_folds(["a", "b", "a"], [True, False, True], 5, seed=0)) == {0, 1}  # capped at 2 subjects
    with pytest.raises(CalcsigError, match="selector_threshold"):
        subject_folds(["a", "a"], [True, False], 5, seed=0)


def image(name, subject, y, scores=None, circles=None, normal=False, centroids=None):
    y = np.asarray(y)
    return TrainingImage(
        image_id=name,
        subject_id=subject,
        features=np.column_stack([np.asarray(scores if scores is not None else y, float)] * 11),
        y=y,
        centroids_mm=np.asarray(centroids, float) if centroids is not None else np.zeros((len(y), 2)),
        circles_mm=None if circles is None else np.asarray(circles, float),
        normal=normal,
    )


def test_out_of_fold_scores_come_from_selectors_that_never_saw_the_image():
    images = [image(f"i{k}", f"s{k}", [1, 0, 0] if k % 2 else [0, 0, 0]) for k in range(6)]
    folds = np.array([0, 0, 1, 1, 2, 2])
    trained_on = []

    class Recorder:
        def __init__(self, part):
            self.names = {im.image_id for im in part}
            trained_on.append(self.names)

        def score_candidates(self, features):
            return np.full(len(features), float(len(self.names)))

    scores = out_of_fold_scores(images, folds, Recorder)
    assert len(trained_on) == 3
    for fold, names in zip(range(3), trained_on):
        held_out = {im.image_id for im, f in zip(images, folds) if f == fold}
        assert names.isdisjoint(held_out) and len(names) == 4
    assert all(s is not None and list(s) == [4.0, 4.0, 4.0] for s in scores)
    # a fold whose training part lacks negatives gets no scores
    lonely = [image("n", "s0", [0]), image("p1", "s1", [1]), image("p2", "s2", [1])]
    scores = out_of_fold_scores(lonely, np.array([0, 1, 2]), Recorder)
    assert scores[0] is None and scores[1] is not None and scores[2] is not None


def test_cluster_froc_counts_found_circles_and_false_clusters_at_every_threshold():
    # one circle at the origin (radius 5 mm) holding detections scored 0.9, 0.8, 0.3
    circle_image = (np.array([0.9, 0.8, 0.3, 0.95]), np.array([[0, 0], [1, 1], [2, 0], [50, 50]]), [[0, 0, 5]])
    # a normal image: a tight trio scored 0.6, 0.5, 0.2 and a lone detection at 0.99
    normal_image = (np.array([0.6, 0.5, 0.2, 0.99]), np.array([[0, 0], [1, 0], [0, 1], [40, 40]]))
    froc = cluster_froc([circle_image], [normal_image], min_objects=3, diameter_mm=10.0, extra_thresholds=(0.55,))
    assert froc.thresholds[0] == np.inf and froc.cluster_sensitivity[0] == 0
    assert 0.55 in froc.thresholds and 0.3 in froc.thresholds  # the circle is found exactly at 0.3
    for t, sens, fc in zip(froc.thresholds, froc.cluster_sensitivity, froc.false_clusters_per_normal_image):
        assert sens == (1.0 if t <= 0.3 else 0.0)
        assert fc == (1.0 if t <= 0.2 else 0.0)
        assert fc == count_clusters(normal_image[1][normal_image[0] >= t], 3, 10.0)
    assert froc.point(0.55) == {"threshold": 0.55, "cluster_sensitivity": 0.0, "false_clusters_per_normal_image": 0.0}
    as_json = froc.to_json()
    assert as_json["threshold"][0] is None and len(as_json["cluster_sensitivity"]) == len(froc.thresholds)
    without_normals = cluster_froc([circle_image], [], 3)
    assert without_normals.false_clusters_per_normal_image is None


def test_the_cluster_operating_point_is_the_highest_threshold_reaching_the_target():
    # three abnormal images, each with one circle holding three detections; its weakest scores 0.8, 0.6, 0.4
    images, scores = [], []
    for k, weakest in enumerate((0.8, 0.6, 0.4)):
        images.append(image(f"a{k}", f"a{k}", [1, 1, 1], circles=[[0, 0, 5]], centroids=[[0, 0], [1, 0], [0, 1]]))
        scores.append(np.array([0.95, 0.9, weakest]))
    # a normal image whose trio scores 0.5: kept at thresholds <= 0.5, a false cluster
    images.append(image("n", "n", [0, 0, 0], normal=True, centroids=[[0, 0], [1, 0], [0, 1]]))
    scores.append(np.array([0.5, 0.5, 0.5]))
    chosen = choose_operating_point(images, scores, {"target_cluster_sensitivity": 0.6})
    assert chosen["threshold"] == 0.6 and chosen["reached"]
    assert chosen["out_of_fold"]["cluster_sensitivity"] == pytest.approx(2 / 3)
    assert chosen["out_of_fold"]["false_clusters_per_normal_image"] == 0.0
    assert "reaches 0.6" in chosen["rule"] and chosen["target_cluster_sensitivity"] == 0.6
    chosen = choose_operating_point(images, scores, {"target_cluster_sensitivity": 0.9})
    assert chosen["threshold"] == 0.4 and chosen["out_of_fold"]["false_clusters_per_normal_image"] == 1.0
    # unreachable: a circle never holds three detections
    scores[2] = np.array([0.95, 0.9, 0.4])
    images[2].centroids_mm[2] = [30, 30]
    chosen = choose_operating_point(images, scores, {"target_cluster_sensitivity": 0.9})
    assert not chosen["reached"] and chosen["threshold"] == 0.6 and "not reached" in chosen["rule"]


def test_the_calcification_operating_point_uses_pixel_truth_matches():
    # candidates 1..4 of one image; truth objects 1 and 2 matched by candidates 1 and 3
    pairs = [(1, 1, 0.1, 0.5), (3, 2, 0.1, 0.5)]
    im = image("p", "s", [1, 0, 1, 0])
    im.truth_pairs, im.n_truth, im.breast_area_cm2 = pairs, 2, 1.0
    chosen = choose_operating_point([im], [np.array([0.9, 0.8, 0.7, 0.6])], {"target_sensitivity": 1.0})
    assert chosen["threshold"] == 0.7 and chosen["reached"]
    assert chosen["out_of_fold"] == {"sensitivity": 1.0, "fp_per_cm2": 1.0, "n_truth_objects": 2}
    assert "target_sensitivity" in chosen and "target_cluster_sensitivity" not in chosen


def test_a_fixed_threshold_overrides_the_chosen_one():
    rng = np.random.default_rng(0)
    images = []
    for k in range(6):
        y = (rng.uniform(size=40) < 0.3).astype(int)
        images.append(image(f"i{k}", f"s{k}", y, scores=y + rng.normal(0, 0.3, 40)))
    params = {"selector_max_iter": 10, "selector_min_samples_leaf": 2}
    selector, chosen = train_with_operating_point(images, {**params, "selector_threshold": 0.3})
    assert isinstance(selector, CandidateSelector)
    assert chosen == {"threshold": 0.3, "rule": "fixed by segment.selector_threshold", "chosen_on": "configuration"}
    with pytest.raises(CalcsigError, match="no out-of-fold scores on training images with calcification truth"):
        train_with_operating_point(images, params)  # labels but neither circles nor pixel truth


def test_cluster_froc_is_a_dataclass_with_json_lists():
    froc = ClusterFROC(np.array([np.inf, 0.5]), np.array([0.0, 1.0]), None)
    assert froc.to_json() == {
        "threshold": [None, 0.5],
        "cluster_sensitivity": [0.0, 1.0],
        "false_clusters_per_normal_image": None,
    }
