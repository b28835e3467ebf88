"""Segmentation evaluation: matching rule, FROC, cluster-level metrics on hand-made cases."""

from dataclasses import replace

import numpy as np
import pytest

from calcsig.segment.evaluate import (
    ImageEval,
    candidate_pairs,
    cluster_froc,
    count_clusters,
    count_inside_circles,
    dice,
    evaluate_images,
    froc_curve,
    greedy_match,
    summarise_image,
)


def square(labels, y, x, size, value):
    labels[y : y + size, x : x + size] = value


def matching_case():
    """At 0.1 mm: truth objects 1..4; predictions designed against the rule."""
    truth = np.zeros((100, 100), np.int32)
    pred = np.zeros((100, 100), np.int32)
    square(truth, 10, 10, 3, 1)
    square(pred, 10, 13, 3, 1)  # no overlap, centroid 0.3 mm away: match by distance
    truth[40, 10:30] = 2  # long thin truth
    pred[40, 12:28] = 2  # centroid close and IoU 0.8
    square(truth, 70, 10, 3, 3)
    square(pred, 70, 14, 3, 3)  # centroid 0.4 mm away, no overlap: no match
    square(truth, 70, 70, 4, 4)
    square(pred, 70, 70, 4, 4)  # exact: match (two predictions compete for it)
    square(pred, 71, 72, 2, 5)  # overlaps truth 4; loses to the higher score
    return pred, truth


def test_candidate_pairs_follow_rule():
    pred, truth = matching_case()
    pairs = {(a, b) for a, b, _, _ in candidate_pairs(pred, truth, 0.1, 0.35, 0.3)}
    assert (1, 1) in pairs and (2, 2) in pairs and (4, 4) in pairs
    assert not any(a == 3 for a, _ in pairs)
    # IoU alone: object far by centroid but overlapping >= 0.3
    t = np.zeros((30, 30), np.int32)
    p = np.zeros((30, 30), np.int32)
    t[5, 0:20] = 1
    p[5, 0:8] = 1  # IoU 0.4, centroids 0.6 mm apart
    assert [(a, b) for a, b, _, _ in candidate_pairs(p, t, 0.1, 0.35, 0.3)] == [(1, 1)]
    assert candidate_pairs(p, t, 0.1, 0.35, 0.5) == []


def test_greedy_match_one_each_by_score():
    pred, truth = matching_case()
    pairs = candidate_pairs(pred, truth, 0.1, 0.35, 0.3)
    matched = greedy_match(np.array([0.9, 0.8, 0.7, 0.6, 0.5]), pairs)
    assert list(matched) == [1, 2, 0, 4, 0]
    matched = greedy_match(np.array([0.9, 0.8, 0.7, 0.6, 0.95]), pairs)
    assert list(matched) == [1, 2, 0, 0, 4]


def test_froc_curve_and_rate():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    is_tp = np.array([True, False, True, False, True])
    froc = froc_curve(scores, is_tp, n_truth=4, area_cm2=2.0)
    np.testing.assert_allclose(froc.sensitivity, [0, 0.25, 0.25, 0.5, 0.5, 0.75])
    np.testing.assert_allclose(froc.fp_per_cm2, [0, 0, 0.5, 0.5, 1.0, 1.0])
    assert froc.sensitivity_at(0.4) == 0.25
    assert froc.sensitivity_at(0.5) == 0.5
    assert froc.sensitivity_at(5) == 0.75
    corners = froc.corners()
    assert corners["sensitivity"] == [0.0, 0.25, 0.5, 0.75]


def test_evaluate_images_pixel_truth():
    pred, truth = matching_case()
    im = ImageEval("a", pred, np.array([0.9, 0.8, 0.7, 0.6, 0.5]), np.ones(pred.shape, bool), 0.1, truth=truth)
    metrics, froc = evaluate_images([im])
    assert metrics["n_truth_objects"] == 4
    assert metrics["breast_area_cm2"] == pytest.approx(1.0)
    assert metrics["operating_point_tpr"] == 0.75
    assert metrics["operating_point_fp_per_cm2"] == pytest.approx(2.0)
    assert metrics["tpr_at_0.4_fp_per_cm2"] == 0.5  # the two best-scored predictions match
    assert metrics["dice"] == pytest.approx(dice(pred, truth))
    assert 0 < metrics["mean_iou_matched"] < 1


def test_cluster_metrics_hand_made():
    circles = np.array([[10.0, 10.0, 3.0], [40.0, 40.0, 3.0]])  # mm
    pts = np.array([[10, 10], [11, 10], [10, 12], [40, 40], [41, 41], [60, 60]], float)
    assert list(count_inside_circles(pts, circles)) == [3, 2]
    assert count_clusters(pts, 3, 10.0) == 1
    two = np.array([[0, 0], [1, 1], [2, 0], [30, 30], [31, 30], [30, 33], [33, 33]], float)
    assert count_clusters(two, 3, 10.0) == 2
    spread = np.array([[0, 0], [8, 0], [16, 0], [24, 0], [0, 8]], float)
    assert count_clusters(spread, 3, 10.0) == 0
    assert count_clusters(spread, 2, 10.0) == 0  # neighbours 8 mm apart: no 1 cm disk holds two
    assert count_clusters(np.zeros((0, 2)), 3) == 0


def test_evaluate_images_cluster_truth():
    pred = np.zeros((300, 300), np.int32)
    for k, (y, x) in enumerate([(50, 50), (52, 55), (56, 51), (200, 200), (205, 203)], start=1):
        pred[y, x] = k
    abnormal = ImageEval(
        "ab", pred, np.ones(5), np.ones(pred.shape, bool), 0.2, circles_px=np.array([[52, 52, 10], [202, 202, 10]])
    )
    normal_pred = np.zeros((300, 300), np.int32)
    for k, (y, x) in enumerate([(10, 10), (12, 14), (15, 10), (100, 250)], start=1):
        normal_pred[y, x] = k
    normal = ImageEval("no", normal_pred, np.ones(4), np.ones(pred.shape, bool), 0.2, normal=True)
    metrics, froc = evaluate_images([abnormal, normal], cluster_min_objects=3)
    assert froc is None
    assert metrics["cluster_sensitivity"] == 0.5
    assert metrics["false_clusters_per_normal_image"] == 1.0
    keep = np.array([True, True, False, True, True])
    abnormal.keep = keep
    metrics, _ = evaluate_images([abnormal], cluster_min_objects=3)
    assert metrics["cluster_sensitivity"] == 0.0


def test_summarised_images_without_pixels_give_the_same_metrics():
    pred, truth = matching_case()
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    pixel = ImageEval("a", pred, scores, np.ones(pred.shape, bool), 0.1, truth=truth, keep=scores > 0.55)
    normal = ImageEval("n", pred, scores, np.ones(pred.shape, bool), 0.1, normal=True)
    circled = ImageEval("c", pred, scores, np.ones(pred.shape, bool), 0.1, circles_px=np.array([[5.0, 5.0, 8.0]]))
    full = [pixel, normal, circled]
    light = []
    for im in full:
        summarised = replace(im, summary=summarise_image(im))
        light.append(summarised.without_pixels())
    assert all(im.pred is None and im.truth is None and im.breast is None for im in light)
    metrics, froc = evaluate_images(full, cluster_min_objects=2)
    light_metrics, light_froc = evaluate_images(light, cluster_min_objects=2)
    assert light_metrics == metrics and light_froc.corners() == froc.corners()


def test_dropping_pixels_before_summarising_is_refused():
    pred, truth = matching_case()
    im = ImageEval("a", pred, np.ones(5), np.ones(pred.shape, bool), 0.1, truth=truth)
    with pytest.raises(ValueError, match="a: summarise the image"):
        im.without_pixels()


def test_cluster_froc_counts_the_same_with_several_workers():
    rng = np.random.default_rng(3)
    normal_images = [(rng.uniform(0, 1, 40), rng.uniform(0, 30, (40, 2))) for _ in range(5)]
    circle_images = [(rng.uniform(0, 1, 20), rng.uniform(0, 30, (20, 2)), np.array([[15.0, 15.0, 6.0]]))]
    one = cluster_froc(circle_images, normal_images, workers=1)
    two = cluster_froc(circle_images, normal_images, workers=2)
    assert one.to_json() == two.to_json()
    assert max(one.false_clusters_per_normal_image) > 0  # the counts compared are not all zero
