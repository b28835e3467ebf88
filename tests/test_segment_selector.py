"""Candidate selector: estimator behaviour, weak labels, and that it beats plain HDoG."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from calcsig.segment.candidates import FEATURE_NAMES, detect_candidates
from calcsig.segment.evaluate import candidate_pairs, froc_curve, greedy_match
from calcsig.segment.params import CANDIDATE_KEYS
from calcsig.segment.selector import (
    CandidateSelector,
    bounded_training_sample,
    labels_from_circles,
    labels_from_truth,
    train_selector,
    training_set,
)

SPACING = 0.1


def scene(seed, shape=(160, 170)):
    """Breast (left) and air (right); small faint disks (truth) and brighter bars (distractors)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = np.full(shape, 0.05)
    breast = xx < 150
    image[breast] = 0.4 + 0.1 * np.sin(yy[breast] / 25.0)
    truth = np.zeros(shape, np.int32)
    for k in range(1, 9):
        cy, cx = rng.uniform(20, 140), rng.uniform(20, 130)
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= rng.uniform(1.4, 2.2) ** 2
        image[disk] += rng.uniform(0.04, 0.07)
        truth[disk] = k
    for _ in range(8):
        cy, cx, angle = rng.uniform(20, 140), rng.uniform(20, 130), rng.uniform(0, np.pi)
        along = (yy - cy) * np.sin(angle) + (xx - cx) * np.cos(angle)
        across = -(yy - cy) * np.cos(angle) + (xx - cx) * np.sin(angle)
        bar = (np.abs(along) <= 7) & (np.abs(across) <= 1.0) & (truth == 0)
        image[bar] += rng.uniform(0.08, 0.12)
    image += rng.normal(0, 0.006, shape)
    return (np.clip(image, 0, 1) * 40000).astype(np.uint16), truth


PARAMS = {"selector_max_iter": 60, "selector_min_samples_leaf": 5, "border_margin_mm": 1.0, "skin_margin_mm": 0.5}


def test_estimator_api_and_determinism():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, len(FEATURE_NAMES)))
    y = (X[:, 0] + 0.3 * rng.normal(size=200) > 0).astype(int)
    a = CandidateSelector(max_iter=30).fit(X, y)
    b = clone(a).fit(X, y)
    assert clone(a).get_params()["max_iter"] == 30
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert (a.predict(X) == y).mean() > 0.85
    assert a.predict_proba(np.zeros((0, len(FEATURE_NAMES)))).shape == (0, 2)
    with pytest.raises(ValueError, match="both positive and negative"):
        CandidateSelector().fit(X, np.zeros(200, int))


def test_weak_labels_from_circles():
    centroids = np.array([[10.0, 10.0], [50.0, 52.0], [80.0, 20.0]])  # (y, x)
    circles = [(52.0, 50.0, 5.0)]  # (x, y, r)
    assert list(labels_from_circles(centroids, circles, normal=False)) == [-1, 1, -1]
    assert list(labels_from_circles(centroids, None, normal=True)) == [0, 0, 0]


def test_labels_from_truth_use_matching_rule():
    image, truth = scene(1)
    cand = detect_candidates(image, SPACING, PARAMS)
    y = labels_from_truth(cand.labels, truth, SPACING)
    assert y.sum() >= 6  # most planted disks are candidates
    assert (y == 0).sum() >= 8  # the bars and noise are not


def tpr_at(scores_per_image, labels_per_image, truths, fp_per_cm2):
    scores, tps, n_truth, area = [], [], 0, 0.0
    for s, (labels, breast), truth in zip(scores_per_image, labels_per_image, truths):
        matched = greedy_match(s, candidate_pairs(labels, truth, SPACING))
        scores.append(s)
        tps.append(matched > 0)
        n_truth += truth.max()
        area += breast.sum() * SPACING**2 / 100
    return froc_curve(np.concatenate(scores), np.concatenate(tps), n_truth, area).sensitivity_at(fp_per_cm2)


def test_selector_improves_over_plain_hdog():
    train = [scene(s) for s in range(10, 16)]
    test = [scene(s) for s in range(20, 23)]
    samples = [{"image": im, "pixel_spacing_mm": SPACING, "truth": t} for im, t in train]
    X, y = training_set(samples, PARAMS)
    assert X.shape[1] == len(FEATURE_NAMES) and 0 < y.mean() < 1
    selector = train_selector(samples, PARAMS)
    plain, chosen, geometry, truths = [], [], [], []
    for im, t in test:
        cand = detect_candidates(im, SPACING, {k: v for k, v in PARAMS.items() if k in CANDIDATE_KEYS})
        plain.append(cand.hdog.dog_response)
        chosen.append(selector.score_candidates(cand.features))
        geometry.append((cand.labels, cand.breast))
        truths.append(t)
    rate = 1.0  # FP per cm2
    plain_tpr = tpr_at(plain, geometry, truths, rate)
    selector_tpr = tpr_at(chosen, geometry, truths, rate)
    assert selector_tpr >= 0.7
    assert selector_tpr >= plain_tpr + 0.2


def test_the_training_sample_is_bounded_by_whole_subjects_in_a_seeded_order():
    subject_of = pd.Series([f"s{k // 2}" for k in range(40)] + ["big"] * 7, index=[f"im{k}" for k in range(47)])
    assert list(bounded_training_sample(subject_of, 47, seed=0)) == list(subject_of.index)
    sample = bounded_training_sample(subject_of, 9, seed=0)
    assert len(sample) in (8, 9)  # filled with whole subjects up to the bound
    taken = subject_of[sample]
    assert (taken.value_counts() == subject_of[subject_of.isin(taken)].value_counts()).all()
    assert list(bounded_training_sample(subject_of, 9, seed=0)) == list(sample)
    assert set(bounded_training_sample(subject_of, 9, seed=1)) != set(sample)
    # a subject larger than the bound is skipped rather than split
    assert "big" not in set(subject_of[bounded_training_sample(subject_of, 6, seed=0)])
    assert bounded_training_sample(subject_of[subject_of == "big"], 6, seed=0).empty
