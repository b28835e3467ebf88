"""Paired model comparisons that treat cases as independent, and Holm's multiplicity adjustment.

DeLong, DeLong & Clarke-Pearson (Biometrics 1988): the AUC is the mean of
placement values; their covariance across two models gives the variance of
the AUC difference. McNemar: only the discordant cases (one model right, the
other wrong) carry information; exact binomial test when they are few,
chi-square with continuity correction otherwise.

Both assume independent cases. ROIs and images of one subject are not, so
their p-values come out too small; the comparisons to quote are the clustered
ones of :mod:`calcsig.model.clustered`, and these two are kept, labelled as
assuming independent cases, for comparison with the literature.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom, chi2, norm, rankdata


def placement_values(y, score) -> tuple[float, np.ndarray, np.ndarray]:
    """(AUC, V10 per positive, V01 per negative) with ties counted one half.

    V10 of a positive = fraction of negatives it outranks; V01 of a negative
    = fraction of positives that outrank it. Computed with mid-ranks in
    O(n log n).
    """
    y = np.asarray(y).astype(bool)
    s = np.asarray(score, dtype=float)
    pos, neg = s[y], s[~y]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        raise ValueError("DeLong needs both positive and negative cases")
    r_all = rankdata(np.concatenate([pos, neg]))
    r_pos, r_neg = rankdata(pos), rankdata(neg)
    v10 = (r_all[:m] - r_pos) / n
    v01 = 1.0 - (r_all[m:] - r_neg) / m
    return float(v10.mean()), v10, v01


def delong_test(y, score_a, score_b, level: float = 0.95) -> dict:
    """DeLong's test of AUC(a) = AUC(b) for two scores of the same cases.

    Returns the AUCs, their difference (a - b) with its standard error and
    `level` CI, z and the two-sided p-value.
    """
    auc_a, v10a, v01a = placement_values(y, score_a)
    auc_b, v10b, v01b = placement_values(y, score_b)
    m, n = len(v10a), len(v01a)
    s10 = np.cov(np.vstack([v10a, v10b])) if m > 1 else np.zeros((2, 2))
    s01 = np.cov(np.vstack([v01a, v01b])) if n > 1 else np.zeros((2, 2))
    cov = s10 / m + s01 / n
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    diff = auc_a - auc_b
    se = float(np.sqrt(max(var, 0.0)))
    if se > 0:
        z = diff / se
        p = float(2 * norm.sf(abs(z)))
    else:
        z = 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
        p = 1.0 if diff == 0 else 0.0
    q = norm.ppf(0.5 + level / 2)
    return {
        "test": "delong",
        "auc_a": auc_a,
        "auc_b": auc_b,
        "auc_a_se": float(np.sqrt(cov[0, 0])),
        "auc_b_se": float(np.sqrt(cov[1, 1])),
        "difference": diff,
        "se": se,
        "ci_low": diff - q * se,
        "ci_high": diff + q * se,
        "z": float(z),
        "p_value": p,
        "n_positive": m,
        "n_negative": n,
    }


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: binomial(b + c, 1/2) on the discordant counts."""
    n = b + c
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * binom.cdf(min(b, c), n, 0.5)))


def mcnemar_asymptotic(b: int, c: int) -> tuple[float, float]:
    """(chi-square statistic with continuity correction, p-value) on 1 degree of freedom."""
    n = b + c
    if n == 0:
        return 0.0, 1.0
    stat = (abs(b - c) - 1.0) ** 2 / n if abs(b - c) >= 1 else 0.0
    return float(stat), float(chi2.sf(stat, 1))


def mcnemar_test(y, pred_a, pred_b, *, exact_below: int = 25, level: float = 0.95) -> dict:
    """McNemar's test for two classifiers' predictions on the same cases.

    b = cases a gets right and b wrong, c = the reverse. The exact test is
    used when b + c < `exact_below`, the asymptotic one otherwise; both are
    reported. The accuracy difference (a - b) = (b - c) / n comes with a Wald
    CI for paired proportions, se = sqrt(b + c - (b - c)^2 / n) / n.
    """
    y = np.asarray(y).astype(bool)
    ra = np.asarray(pred_a).astype(bool) == y
    rb = np.asarray(pred_b).astype(bool) == y
    return mcnemar_from_counts(
        int(np.sum(ra & rb)),
        int(np.sum(ra & ~rb)),
        int(np.sum(~ra & rb)),
        int(np.sum(~ra & ~rb)),
        exact_below=exact_below,
        level=level,
    )


def mcnemar_from_counts(
    both_right: int, b: int, c: int, both_wrong: int, *, exact_below: int = 25, level: float = 0.95
) -> dict:
    n = both_right + b + c + both_wrong
    p_exact = mcnemar_exact(b, c)
    stat, p_asym = mcnemar_asymptotic(b, c)
    diff = (b - c) / n if n else float("nan")
    se = np.sqrt(max(b + c - (b - c) ** 2 / n, 0.0)) / n if n else float("nan")
    q = norm.ppf(0.5 + level / 2)
    use_exact = (b + c) < exact_below
    return {
        "test": "mcnemar",
        "table": {"both_right": both_right, "a_right_b_wrong": b, "a_wrong_b_right": c, "both_wrong": both_wrong},
        "method": "exact" if use_exact else "asymptotic",
        "p_value": p_exact if use_exact else p_asym,
        "p_exact": p_exact,
        "chi2": stat,
        "p_asymptotic": p_asym,
        "accuracy_difference": float(diff),
        "ci_low": float(diff - q * se),
        "ci_high": float(diff + q * se),
        "n": n,
    }


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (same order; None/NaN entries stay NaN).

    Sort the m finite p-values ascending, multiply the k-th smallest by
    (m - k + 1), make the sequence non-decreasing, cap at 1. It controls the
    family-wise error rate under any dependence between the tests.
    """
    p = np.array([np.nan if v is None else float(v) for v in p_values], dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    if len(finite) == 0:
        return out
    order = finite[np.argsort(p[finite], kind="mergesort")]
    m = len(order)
    scaled = p[order] * (m - np.arange(m))
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out
