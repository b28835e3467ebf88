"""Paired comparisons of two models that respect clusters of correlated cases (subjects).

ROIs and images of one subject (or of one duplicate-aware group of the
partition) share anatomy, acquisition and reader, so they are not independent
cases. Two methods here treat the cluster, not the case, as the unit:

- :func:`obuchowski_test`: Obuchowski's nonparametric analysis of clustered
  ROC data (Biometrics 1997; 53:567-578). The AUC is the Mann-Whitney
  statistic over all positive/negative pairs; its variance comes from the
  per-cluster sums of the DeLong placement values, V10_i (over the cluster's
  positive cases) and V01_i (over its negative cases). With m_i positive and
  n_i negative cases in cluster i, M and N their totals, I the clusters,
  I10 / I01 the clusters with a positive / negative case, and for models r, s::

      a_i = V10_i - m_i AUC,  b_i = V01_i - n_i AUC
      S10(r,s) = I10 / ((I10 - 1) M) sum_i a_i(r) a_i(s)
      S01(r,s) = I01 / ((I01 - 1) N) sum_i b_i(r) b_i(s)
      S11(r,s) = I / (I - 1) sum_i a_i(r) b_i(s)
      cov(AUC_r, AUC_s) = S10(r,s) / M + S01(r,s) / N + (S11(r,s) + S11(s,r)) / (M N)

  and z = (AUC_a - AUC_b) / sqrt(var_a + var_b - 2 cov_ab). With one case per
  cluster it is DeLong's test exactly.
- :func:`paired_bootstrap`: differences between two models in AUC and in
  accuracy, sensitivity and specificity at their operating point, with a
  paired cluster bootstrap: clusters are drawn with replacement (stratified
  by whether the cluster has a positive case), every case of a drawn
  cluster comes along, and both models are scored on the same resamples.
  The interval is the percentile interval of the resampled differences;
  the two-sided p-value is that of the centred bootstrap statistic,
  (1 + #{b : |d*_b - d| >= |d|}) / (1 + B), i.e. how often a resample
  strays from the observed difference d at least as far as d strays from
  zero (the resampled differences shifted to the null).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from .metrics import (
    BINARY_METRICS,
    binary_metrics,
    bootstrap_weights,
    finite_or_none,
    percentile_ci,
    weighted_binary_metrics,
)
from .stats import placement_values

DIFFERENCES = {
    "auc_difference": "roc_auc",
    "accuracy_difference": "accuracy",
    "sensitivity_difference": "sensitivity",
    "specificity_difference": "specificity",
}


@dataclass(frozen=True)
class ClusterTerms:
    """Per-cluster centred sums of placement values of one model (see the module docstring)."""

    auc: float
    a: np.ndarray  # V10_i - m_i AUC
    b: np.ndarray  # V01_i - n_i AUC
    m: np.ndarray  # positive cases per cluster
    n: np.ndarray  # negative cases per cluster


def cluster_terms(y, score, clusters) -> ClusterTerms:
    """AUC and the per-cluster terms a_i, b_i of one model's scores."""
    y = np.asarray(y).astype(bool)
    _, index = np.unique(np.asarray(clusters).astype(str), return_inverse=True)
    k = index.max() + 1 if len(index) else 0
    auc, v10, v01 = placement_values(y, score)
    V10 = np.zeros(k)
    V01 = np.zeros(k)
    np.add.at(V10, index[y], v10)
    np.add.at(V01, index[~y], v01)
    m = np.bincount(index[y], minlength=k).astype(float)
    n = np.bincount(index[~y], minlength=k).astype(float)
    return ClusterTerms(auc, V10 - m * auc, V01 - n * auc, m, n)


def obuchowski_covariance(r: ClusterTerms, s: ClusterTerms) -> float:
    """Obuchowski's covariance of two AUCs on the same clustered cases (variance when r is s)."""
    M, N = r.m.sum(), r.n.sum()
    # I10, I01 and I of the module docstring
    with_pos, with_neg, clusters = int((r.m > 0).sum()), int((r.n > 0).sum()), len(r.m)
    if with_pos < 2 or with_neg < 2:
        raise ValueError(
            f"Obuchowski's variance needs 2+ clusters with each class ({with_pos} with a positive, "
            f"{with_neg} with a negative)"
        )
    s10 = with_pos / ((with_pos - 1) * M) * np.sum(r.a * s.a)
    s01 = with_neg / ((with_neg - 1) * N) * np.sum(r.b * s.b)
    s11 = clusters / (clusters - 1) * np.sum(r.a * s.b)
    s11_t = clusters / (clusters - 1) * np.sum(s.a * r.b)
    return float(s10 / M + s01 / N + (s11 + s11_t) / (M * N))


def obuchowski_applies(y, clusters) -> bool:
    """True when there are at least two clusters with a positive case and two with a negative one."""
    y = np.asarray(y).astype(bool)
    clusters = np.asarray(clusters).astype(str)
    return len(np.unique(clusters[y])) >= 2 and len(np.unique(clusters[~y])) >= 2


def obuchowski_test(y, score_a, score_b, clusters, level: float = 0.95) -> dict:
    """Obuchowski's clustered test of AUC(a) = AUC(b) for two scores of the same cases.

    Returns both AUCs, their difference (a - b) with its standard error,
    Wald `level` interval, z, the two-sided p-value and the cluster count.
    """
    ta = cluster_terms(y, score_a, clusters)
    tb = cluster_terms(y, score_b, clusters)
    var = obuchowski_covariance(ta, ta) + obuchowski_covariance(tb, tb) - 2 * obuchowski_covariance(ta, tb)
    diff = ta.auc - tb.auc
    se = float(np.sqrt(max(var, 0.0)))
    if se > 0:
        z = diff / se
        p = float(2 * norm.sf(abs(z)))
    else:
        z = 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
        p = 1.0 if diff == 0 else 0.0
    q = norm.ppf(0.5 + level / 2)
    return {
        "test": "obuchowski",
        "auc_a": ta.auc,
        "auc_b": tb.auc,
        "difference": diff,
        "se": se,
        "ci_low": diff - q * se,
        "ci_high": diff + q * se,
        "z": float(z),
        "p_value": p,
        "n_clusters": len(ta.m),
    }


def centred_bootstrap_p(observed: float, resampled: np.ndarray) -> float:
    """Two-sided p-value of the centred bootstrap statistic (module docstring); NaN resamples ignored."""
    d = np.asarray(resampled, dtype=float)
    d = d[np.isfinite(d)]
    if not np.isfinite(observed) or len(d) == 0:
        return float("nan")
    # a tolerance so that resamples equal to the observed value up to rounding count as "as far"
    extreme = np.abs(d - observed) >= abs(observed) - 1e-12
    return float((1 + extreme.sum()) / (1 + len(d)))


def paired_bootstrap(
    y, probability_a, probability_b, predicted_a, predicted_b, clusters, *, n_boot=1000, level=0.95, seed=0
) -> dict[str, dict]:
    """Differences (a - b) in AUC, accuracy, sensitivity and specificity with a paired cluster bootstrap.

    Each entry of the result (keys of ``DIFFERENCES``) is {value, ci_low,
    ci_high, p_value}; the method is in the module docstring. Both models
    are scored on the same resamples (one matrix of cluster multiplicities).
    A difference undefined on the cases (e.g. sensitivity without positives)
    is None, as are the interval and p-value without resamples.
    """
    y = np.asarray(y).astype(int)
    point_a = binary_metrics(y, probability_a, predicted_a)
    point_b = binary_metrics(y, probability_b, predicted_b)
    if n_boot > 0 and len(y):
        W = bootstrap_weights(y, clusters, n_boot, seed)
        diff = weighted_binary_metrics(W, y, probability_a, predicted_a) - weighted_binary_metrics(
            W, y, probability_b, predicted_b
        )
    else:
        diff = np.empty((0, len(BINARY_METRICS)))
    out = {}
    for key, metric in DIFFERENCES.items():
        value = point_a[metric] - point_b[metric]
        column = diff[:, BINARY_METRICS.index(metric)]
        lo, hi = percentile_ci(column, level) if len(column) else (np.nan, np.nan)
        out[key] = {
            "value": finite_or_none(value),
            "ci_low": finite_or_none(lo),
            "ci_high": finite_or_none(hi),
            "p_value": finite_or_none(centred_bootstrap_p(value, column)),
        }
    return out
