"""Metrics against scikit-learn and hand values; bootstrap CI coverage."""

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from calcsig.model import metrics as M


def test_binary_metrics_hand_values_and_sklearn():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1, 0.4, 0.6])
    yhat = (p >= 0.5).astype(int)  # tp=3 (0.9, 0.8, 0.6), fn=1, fp=1 (0.7), tn=3
    m = M.binary_metrics(y, p, yhat)
    assert M.confusion(y, yhat) == {"tp": 3, "fp": 1, "tn": 3, "fn": 1}
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(3 / 4)
    assert m["ppv"] == pytest.approx(3 / 4)
    assert m["npv"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(f1_score(y, yhat))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p))


def test_auc_with_ties_matches_sklearn_and_undefined_is_nan():
    rng = np.random.default_rng(0)
    y = rng.random(100) < 0.3
    p = np.round(rng.random(100), 1)
    assert M.roc_auc(y, p) == pytest.approx(roc_auc_score(y, p))
    assert M.pr_auc(y, p) == pytest.approx(average_precision_score(y, p))
    assert np.isnan(M.roc_auc(np.ones(5), rng.random(5)))
    assert np.isnan(M.binary_metrics(np.zeros(4), rng.random(4), np.zeros(4))["sensitivity"])


def test_weighted_metrics_equal_metrics_of_repeated_cases():
    rng = np.random.default_rng(3)
    for _ in range(10):
        n = 30
        y = rng.random(n) < 0.4
        y[:2] = [True, False]
        p = np.round(rng.random(n), 1)
        yhat = rng.random(n) < 0.5
        w = rng.integers(0, 3, size=n)
        w[:2] = 1
        idx = np.repeat(np.arange(n), w)
        direct = M.binary_metrics(y[idx], p[idx], yhat[idx])
        got = M.weighted_binary_metrics(w[None, :], y, p, yhat)[0]
        np.testing.assert_allclose(got, [direct[k] for k in M.BINARY_METRICS])


def test_bootstrap_keeps_subjects_whole_and_strata_sizes():
    y = np.array([1, 1, 0, 0, 0, 0, 1, 0])
    groups = np.array(["a", "a", "b", "b", "c", "d", "e", "e"])  # positive subjects a, e; negative b, c, d
    W = M.bootstrap_weights(y, groups, n_boot=200, seed=1)
    assert np.all(W[:, 0] == W[:, 1]) and np.all(W[:, 2] == W[:, 3]) and np.all(W[:, 6] == W[:, 7])
    per_subject = {"a": W[:, 0], "b": W[:, 2], "c": W[:, 4], "d": W[:, 5], "e": W[:, 6]}
    assert np.all(per_subject["a"] + per_subject["e"] == 2)
    assert np.all(per_subject["b"] + per_subject["c"] + per_subject["d"] == 3)
    assert len({tuple(r) for r in W}) > 10


def test_bootstrap_ci_covers_true_auc_about_95_percent():
    """Binormal model: positives N(d, 1), negatives N(0, 1), AUC = Phi(d / sqrt 2)."""
    d = 1.0
    true_auc = norm.cdf(d / np.sqrt(2))
    rng = np.random.default_rng(12345)
    n_sim, covered = 200, 0
    for s in range(n_sim):
        y = np.r_[np.ones(40), np.zeros(60)].astype(int)
        score = rng.normal(size=100) + d * y
        res = M.metrics_with_ci(y, score, score > 0.5, np.arange(100), n_boot=300, seed=s)["roc_auc"]
        covered += res["ci_low"] <= true_auc <= res["ci_high"]
    coverage = covered / n_sim
    # percentile bootstrap is a little liberal at this size; 200 sims give +-3% sampling error
    assert 0.87 <= coverage <= 0.99, coverage


def test_metrics_with_ci_structure_and_order():
    rng = np.random.default_rng(2)
    y = (rng.random(80) < 0.4).astype(int)
    p = np.clip(0.3 * y + rng.random(80) * 0.7, 0, 1)
    res = M.metrics_with_ci(y, p, p > 0.5, np.arange(80) // 2, n_boot=200, seed=0)
    assert set(res) == set(M.BINARY_METRICS)
    for v in res.values():
        assert set(v) == {"value", "ci_low", "ci_high"}
        assert v["ci_low"] <= v["ci_high"]
    again = M.metrics_with_ci(y, p, p > 0.5, np.arange(80) // 2, n_boot=200, seed=0)
    assert again == res


def test_threshold_table_benign_avoided_and_brier():
    y = np.array([1, 1, 0, 0, 0, 0])
    p = np.array([0.95, 0.55, 0.6, 0.3, 0.2, 0.05])
    table = M.threshold_table(y, p)
    assert [r["threshold"] for r in table] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    at_05 = table[4]
    assert (
        at_05["sensitivity"] == 1.0
        and at_05["specificity"] == pytest.approx(3 / 4)
        and at_05["ppv"] == pytest.approx(2 / 3)
    )
    spared = M.benign_biopsies_avoided(y, p >= 0.55)
    assert spared == {"fraction": 0.75, "benign_spared": 3, "benign_total": 4, "at_sensitivity": 1.0}
    assert M.brier_score(y, p) == pytest.approx(np.mean((p - y) ** 2))


def test_net_benefit_hand_value():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.15, 0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    row = {r["threshold"]: r for r in M.net_benefit(y, p)}[0.2]
    # at t = 0.2: tp = 1, fp = 1 (0.3), n = 10, odds 0.25
    assert row["model"] == pytest.approx(1 / 10 - 1 / 10 * 0.25)
    assert row["treat_all"] == pytest.approx(0.2 - 0.8 * 0.25)
    assert row["treat_none"] == 0.0


def test_reliability_curve_bins():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.05, 0.15, 0.85, 0.95])
    rows = M.reliability_curve(y, p, n_bins=2)
    assert [(r["n"], r["observed_fraction"]) for r in rows] == [(2, 0.0), (2, 1.0)]
    assert rows[0]["mean_predicted"] == pytest.approx(0.1)


def test_multiclass_macro_and_per_class():
    t = ["benign", "dcis", "invasive", "benign", "dcis", "invasive"]
    p = ["benign", "dcis", "dcis", "benign", "invasive", "invasive"]
    res = M.multiclass_metrics(t, p, labels=["benign", "dcis", "invasive"])
    assert res["per_class"]["benign"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert res["per_class"]["dcis"]["recall"] == pytest.approx(0.5)
    assert res["macro"]["recall"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert res["confusion"] == [[2, 0, 0], [0, 1, 1], [0, 1, 1]]
