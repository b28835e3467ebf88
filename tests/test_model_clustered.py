"""Clustered comparisons: Obuchowski by hand and by brute force, the paired cluster bootstrap, type-I error."""

import numpy as np
import pytest

from calcsig.model import clustered, stats


def _psi(x, z):
    return 1.0 if x > z else 0.5 if x == z else 0.0


def _obuchowski_brute(y, scores, clusters):
    """Obuchowski (1997) written out from the definitions with loops: AUCs and their covariance matrix."""
    y = np.asarray(y).astype(bool)
    ids = sorted(set(clusters))
    M, N = int(y.sum()), int((~y).sum())
    terms = []
    for s in scores:
        s = np.asarray(s, dtype=float)
        pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
        v10 = {i: np.mean([_psi(s[i], s[j]) for j in neg]) for i in pos}
        v01 = {j: np.mean([_psi(s[i], s[j]) for i in pos]) for j in neg}
        auc = np.mean(list(v10.values()))
        a, b = [], []
        for c in ids:
            members = [i for i in range(len(y)) if clusters[i] == c]
            m_c = sum(y[i] for i in members)
            n_c = len(members) - m_c
            a.append(sum(v10[i] for i in members if y[i]) - m_c * auc)
            b.append(sum(v01[i] for i in members if not y[i]) - n_c * auc)
        terms.append((auc, np.array(a), np.array(b)))
    i10 = len({clusters[i] for i in range(len(y)) if y[i]})
    i01 = len({clusters[i] for i in range(len(y)) if not y[i]})
    k = len(ids)
    cov = np.zeros((len(scores), len(scores)))
    for r, (_, ar, br) in enumerate(terms):
        for q, (_, aq, bq) in enumerate(terms):
            s10 = i10 / ((i10 - 1) * M) * sum(ar * aq)
            s01 = i01 / ((i01 - 1) * N) * sum(br * bq)
            s11 = k / (k - 1) * sum(ar * bq)
            s11t = k / (k - 1) * sum(aq * br)
            cov[r, q] = s10 / M + s01 / N + (s11 + s11t) / (M * N)
    return [t[0] for t in terms], cov


def test_obuchowski_variance_of_a_small_case_by_hand():
    # clusters A: positive 0.9, negative 0.2; B: positive 0.6, negative 0.7; C: negatives 0.1, 0.4.
    # V10: 0.9 beats all four negatives (1), 0.6 beats three (3/4); AUC = 7/8.
    # V01: 0.2 -> 1, 0.7 -> 1/2, 0.1 -> 1, 0.4 -> 1.
    # a = (1 - 7/8, 3/4 - 7/8, 0) = (1/8, -1/8, 0); b = (1 - 7/8, 1/2 - 7/8, 2 - 2 * 7/8) = (1/8, -3/8, 1/4)
    # S10 = 2/(1*2) * (1/64 + 1/64) = 1/32; S01 = 3/(2*4) * (1/64 + 9/64 + 4/64) = 21/256
    # S11 = 3/2 * (1/64 + 3/64) = 3/32; var = S10/2 + S01/4 + 2 S11/8 = 1/64 + 21/1024 + 3/128 = 61/1024
    y = [1, 0, 1, 0, 0, 0]
    score = [0.9, 0.2, 0.6, 0.7, 0.1, 0.4]
    clusters = ["A", "A", "B", "B", "C", "C"]
    terms = clustered.cluster_terms(y, score, clusters)
    assert terms.auc == pytest.approx(7 / 8)
    np.testing.assert_allclose(terms.a, [1 / 8, -1 / 8, 0])
    np.testing.assert_allclose(terms.b, [1 / 8, -3 / 8, 1 / 4])
    assert clustered.obuchowski_covariance(terms, terms) == pytest.approx(61 / 1024)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_obuchowski_matches_a_brute_force_implementation_of_the_formula(seed):
    rng = np.random.default_rng(seed)
    clusters = [f"s{i}" for i in rng.integers(0, 9, size=36)]
    y = (rng.random(36) < 0.45).astype(int)
    y[:2] = [1, 0]
    sa = np.round(rng.normal(size=36) + y, 1)  # rounded: ties between and within clusters
    sb = np.round(0.6 * sa + rng.normal(size=36), 1)
    (auc_a, auc_b), cov = _obuchowski_brute(y, [sa, sb], clusters)
    res = clustered.obuchowski_test(y, sa, sb, clusters)
    assert (res["auc_a"], res["auc_b"]) == pytest.approx((auc_a, auc_b))
    assert res["se"] == pytest.approx(np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]))
    assert res["difference"] == pytest.approx(auc_a - auc_b)
    ta, tb = clustered.cluster_terms(y, sa, clusters), clustered.cluster_terms(y, sb, clusters)
    assert clustered.obuchowski_covariance(ta, tb) == pytest.approx(cov[0, 1])
    assert clustered.obuchowski_covariance(tb, ta) == pytest.approx(cov[1, 0])


def test_obuchowski_with_one_case_per_cluster_is_delong():
    rng = np.random.default_rng(5)
    y = (rng.random(50) < 0.4).astype(int)
    sa = rng.normal(size=50) + y
    sb = 0.5 * sa + rng.normal(size=50)
    obu = clustered.obuchowski_test(y, sa, sb, np.arange(50))
    dl = stats.delong_test(y, sa, sb)
    assert (obu["se"], obu["z"], obu["p_value"]) == pytest.approx((dl["se"], dl["z"], dl["p_value"]))


def test_obuchowski_needs_two_clusters_of_each_class():
    y = [1, 1, 0, 0]
    assert not clustered.obuchowski_applies(y, ["a", "a", "b", "c"])
    assert clustered.obuchowski_applies(y, ["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="2\\+ clusters"):
        clustered.obuchowski_test(y, [0.9, 0.8, 0.1, 0.2], [0.7, 0.6, 0.5, 0.4], ["a", "a", "b", "c"])


def test_paired_bootstrap_resamples_clusters_and_scores_both_models_on_the_same_resamples():
    y = np.array([1, 1, 0, 0, 1, 0, 0, 0])
    pa = np.array([0.9, 0.8, 0.3, 0.1, 0.7, 0.6, 0.2, 0.4])
    clusters = np.array(["a", "a", "b", "b", "c", "c", "d", "e"])
    ya = (pa >= 0.5).astype(int)
    same = clustered.paired_bootstrap(y, pa, pa, ya, ya, clusters, n_boot=200, seed=3)
    for key in clustered.DIFFERENCES:
        # identical models: every resample gives a difference of exactly 0, and p = 1
        assert same[key] == {"value": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p_value": 1.0}
    pb = pa[::-1].copy()
    yb = (pb >= 0.5).astype(int)
    out = clustered.paired_bootstrap(y, pa, pb, ya, yb, clusters, n_boot=300, seed=3)
    assert out["accuracy_difference"]["value"] == pytest.approx(np.mean(ya == y) - np.mean(yb == y))
    assert out["sensitivity_difference"]["value"] == 1.0  # a calls all three positives, b none
    for key, r in out.items():
        assert r["ci_low"] <= r["value"] <= r["ci_high"], key
        assert 1 / 301 <= r["p_value"] <= 1.0, key
    assert clustered.paired_bootstrap(y, pa, pb, ya, yb, clusters, n_boot=300, seed=3) == out
    none = clustered.paired_bootstrap(y, pa, pb, ya, yb, clusters, n_boot=0)
    assert none["auc_difference"]["ci_low"] is None and none["auc_difference"]["p_value"] is None


def test_centred_bootstrap_p_value_counts_resamples_as_far_from_the_estimate_as_it_is_from_zero():
    # observed 0.2; resampled differences stray 0.3, 0.1, 0.2, 0.05 from it: two reach 0.2
    assert clustered.centred_bootstrap_p(0.2, [0.5, 0.1, 0.0, 0.25]) == pytest.approx((1 + 2) / 5)
    assert clustered.centred_bootstrap_p(0.0, [0.1, -0.2]) == 1.0
    assert np.isnan(clustered.centred_bootstrap_p(float("nan"), [0.1]))


def _null_subjects(rng, n_subjects=40, rois=6, subject_sd=1.0, roi_sd=0.5, shift=1.0):
    """Two models of equal AUC whose errors are shared by the ROIs of a subject (labels per subject)."""
    subject = np.repeat(np.arange(n_subjects), rois)
    y = (rng.random(n_subjects) < 0.4).astype(int)[subject]
    y[:rois], y[rois : 2 * rois] = 0, 1
    score_a = shift * y + rng.normal(0, subject_sd, n_subjects)[subject] + rng.normal(0, roi_sd, len(subject))
    score_b = shift * y + rng.normal(0, subject_sd, n_subjects)[subject] + rng.normal(0, roi_sd, len(subject))
    return y, score_a, score_b, subject


def _rejection_rates(replicates, n_boot, seed, alpha=0.05):
    rng = np.random.default_rng(seed)
    hits = dict.fromkeys(["delong", "mcnemar", "obuchowski", "bootstrap_auc", "bootstrap_accuracy"], 0)
    for r in range(replicates):
        y, sa, sb, subject = _null_subjects(rng)
        ya, yb = (sa >= 0.5).astype(int), (sb >= 0.5).astype(int)
        boot = clustered.paired_bootstrap(y, sa, sb, ya, yb, subject, n_boot=n_boot, seed=r)
        p = {
            "delong": stats.delong_test(y, sa, sb)["p_value"],
            "mcnemar": stats.mcnemar_test(y, ya, yb)["p_value"],
            "obuchowski": clustered.obuchowski_test(y, sa, sb, subject)["p_value"],
            "bootstrap_auc": boot["auc_difference"]["p_value"],
            "bootstrap_accuracy": boot["accuracy_difference"]["p_value"],
        }
        for k, v in p.items():
            hits[k] += v < alpha
    return {k: v / replicates for k, v in hits.items()}


def test_clustered_tests_hold_the_nominal_level_where_naive_tests_do_not():
    # 200 null replicates: a rejection rate near 0.05 has a standard error of about 0.015, so
    # 0.11 is four standard errors above nominal; the naive tests sit near 0.3-0.4 on this design
    rates = _rejection_rates(replicates=200, n_boot=100, seed=11)
    for name in ("obuchowski", "bootstrap_auc", "bootstrap_accuracy"):
        assert rates[name] <= 0.11, rates
    assert rates["obuchowski"] + rates["bootstrap_auc"] + rates["bootstrap_accuracy"] > 0, rates  # not degenerate
    assert rates["delong"] >= 0.2 and rates["mcnemar"] >= 0.2, rates


@pytest.mark.slow
def test_clustered_tests_type_one_error_thoroughly():
    # 2000 replicates: standard error about 0.005 at 0.05
    rates = _rejection_rates(replicates=2000, n_boot=400, seed=12)
    assert 0.03 <= rates["obuchowski"] <= 0.07, rates
    for name in ("bootstrap_auc", "bootstrap_accuracy"):
        assert 0.03 <= rates[name] <= 0.085, rates
    assert rates["delong"] >= 0.25 and rates["mcnemar"] >= 0.2, rates
