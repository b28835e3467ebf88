"""ROC curves on the 101-point grid with a cluster-bootstrap band, and PR curves, against scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import precision_recall_curve, roc_curve

from calcsig.model import curves, metrics


def test_roc_on_the_grid_is_the_best_true_positive_rate_within_each_false_positive_rate():
    rng = np.random.default_rng(0)
    y = (rng.random(80) < 0.4).astype(int)
    score = rng.normal(size=80) + y  # continuous: no ties
    roc = curves.roc_on_grid(y, score)
    fpr, tpr, _ = roc_curve(y, score, drop_intermediate=False)
    expected = [tpr[fpr <= g + 1e-12].max() for g in curves.FPR_GRID]
    np.testing.assert_allclose(roc["tpr"], expected, atol=1e-6)
    assert roc["tpr"][-1] == 1.0 and len(roc["fpr"]) == 101


def test_tied_probabilities_give_a_diagonal_segment():
    # one positive and one negative tied at 0.5, one positive above, one negative below:
    # vertices (0, 0), (0, 0.5), (0.5, 1), (1, 1); half way along the tie, fpr 0.25 gives tpr 0.75
    roc = curves.roc_on_grid([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1])
    assert roc["tpr"][0] == 0.5 and roc["tpr"][25] == pytest.approx(0.75) and roc["tpr"][50] == 1.0
    # the area under the grid curve is the Mann-Whitney AUC, ties counted one half
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(metrics.roc_auc([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]))


def test_the_band_resamples_clusters_contains_the_curve_and_is_reproducible():
    rng = np.random.default_rng(1)
    clusters = np.repeat(np.arange(30), 3)
    y = np.repeat(rng.random(30) < 0.4, 3).astype(int)
    score = rng.normal(size=90) + y
    a = curves.roc_with_band(y, score, clusters, n_boot=200, seed=3)
    assert a == curves.roc_with_band(y, score, clusters, n_boot=200, seed=3)
    lo, t, hi = (np.array(a[k]) for k in ("tpr_ci_low", "tpr", "tpr_ci_high"))
    assert np.all(lo <= t + 1e-9) and np.all(t <= hi + 1e-9) and np.any(hi - lo > 0.1)
    none = curves.roc_with_band(y, score, clusters, n_boot=0)
    assert none["tpr_ci_low"] == [None] * 101


def test_pr_curve_is_scikit_learns_without_its_closing_point():
    rng = np.random.default_rng(2)
    y = (rng.random(60) < 0.3).astype(int)
    score = np.round(rng.random(60), 1)  # ties
    pr = curves.pr_curve(y, score)
    precision, recall, thresholds = precision_recall_curve(y, score)
    # scikit-learn lists points by increasing threshold and closes with (recall 0, precision 1)
    np.testing.assert_allclose(pr["precision"], precision[:-1][::-1], atol=1e-6)
    np.testing.assert_allclose(pr["recall"], recall[:-1][::-1], atol=1e-6)
    np.testing.assert_allclose(pr["threshold"], thresholds[::-1], atol=1e-6)
    assert curves.pr_curve([0, 0], [0.1, 0.2]) == {"recall": [], "precision": [], "threshold": []}
