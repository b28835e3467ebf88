"""DeLong and McNemar against values computed independently (brute force) or by hand."""

import itertools

import numpy as np
import pytest
from scipy.stats import norm

from calcsig.model.stats import (
    delong_test,
    holm,
    mcnemar_exact,
    mcnemar_from_counts,
    mcnemar_test,
    placement_values,
)


def _psi(a, b):
    return 1.0 if a > b else 0.5 if a == b else 0.0


def _delong_brute(y, s1, s2):
    """DeLong et al. (1988) written out from the definitions, O(m n) loops."""
    y = np.asarray(y).astype(bool)
    out = []
    for s in (s1, s2):
        pos, neg = np.asarray(s)[y], np.asarray(s)[~y]
        v10 = np.array([np.mean([_psi(x, z) for z in neg]) for x in pos])
        v01 = np.array([np.mean([_psi(x, z) for x in pos]) for z in neg])
        out.append((v10.mean(), v10, v01))
    (a1, v10a, v01a), (a2, v10b, v01b) = out
    m, n = len(v10a), len(v01a)
    s10 = np.cov(v10a, v10b)
    s01 = np.cov(v01a, v01b)
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    z = (a1 - a2) / np.sqrt(var)
    return a1, a2, z, 2 * norm.sf(abs(z))


# A small rating-scale example with ties (five-point ratings, the kind of data
# DeLong et al. analysed): 6 diseased, 7 non-diseased cases, two readers.
Y = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
R1 = np.array([5, 4, 4, 3, 5, 2, 1, 2, 3, 1, 2, 1, 3])
R2 = np.array([4, 3, 5, 2, 3, 3, 2, 1, 3, 2, 2, 3, 1])


def test_placement_values_give_mann_whitney_auc_with_ties():
    auc, v10, v01 = placement_values(Y, R1)
    pairs = [_psi(a, b) for a, b in itertools.product(R1[Y == 1], R1[Y == 0])]
    assert auc == pytest.approx(np.mean(pairs))
    # by hand: 5s and 4s beat all 7 negatives (4 x 7 = 28), the 3 beats five and ties two (6),
    # the 2 beats three and ties two (4): reader 1's AUC is 38 / 42
    assert auc == pytest.approx(38 / 42)
    assert v10.mean() == pytest.approx(v01.mean())


def test_delong_matches_brute_force_on_textbook_table():
    res = delong_test(Y, R1, R2)
    a1, a2, z, p = _delong_brute(Y, R1, R2)
    assert res["auc_a"] == pytest.approx(a1)
    assert res["auc_b"] == pytest.approx(a2)
    assert res["z"] == pytest.approx(z)
    assert res["p_value"] == pytest.approx(p)
    assert res["ci_low"] < res["difference"] < res["ci_high"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delong_matches_brute_force_on_random_continuous_scores(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(40) < 0.4
    y[:2] = [True, False]
    s1 = rng.normal(size=40) + y
    s2 = 0.5 * s1 + rng.normal(size=40)
    res = delong_test(y, s1, s2)
    a1, a2, z, p = _delong_brute(y, s1, s2)
    assert (res["auc_a"], res["auc_b"], res["z"], res["p_value"]) == pytest.approx((a1, a2, z, p))


def test_delong_identical_scores_have_no_difference():
    res = delong_test(Y, R1, R1)
    assert res["difference"] == 0 and res["p_value"] == 1.0


def test_delong_needs_both_classes():
    with pytest.raises(ValueError):
        delong_test([1, 1, 1], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1])


def test_mcnemar_exact_known_values():
    # b=1, c=6: two-sided binomial p = 2 * P(X <= 1 | n=7, 1/2) = 2 * 8/128 = 0.125
    assert mcnemar_exact(1, 6) == pytest.approx(0.125)
    # b=0, c=5: 2 / 32
    assert mcnemar_exact(0, 5) == pytest.approx(0.0625)
    # symmetric counts: p capped at 1
    assert mcnemar_exact(4, 4) == 1.0
    assert mcnemar_exact(0, 0) == 1.0


def test_mcnemar_asymptotic_with_continuity_correction_known_value():
    # b=10, c=25: chi2 = (|10 - 25| - 1)^2 / 35 = 196 / 35 = 5.6, p = 0.01796
    res = mcnemar_from_counts(50, 10, 25, 15, exact_below=25)
    assert res["chi2"] == pytest.approx(5.6)
    assert res["p_asymptotic"] == pytest.approx(0.017960, abs=1e-5)
    assert res["method"] == "asymptotic" and res["p_value"] == res["p_asymptotic"]
    # accuracy difference (b - c) / n and its paired Wald CI
    n = 100
    se = np.sqrt(35 - 15**2 / n) / n
    assert res["accuracy_difference"] == pytest.approx(-0.15)
    assert res["ci_low"] == pytest.approx(-0.15 - 1.959964 * se, abs=1e-5)
    assert res["ci_high"] == pytest.approx(-0.15 + 1.959964 * se, abs=1e-5)


def test_mcnemar_uses_exact_when_discordant_counts_are_small():
    y = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    a = y.copy()  # always right
    b = y.copy()
    b[:3] = 1 - b[:3]  # wrong on 3 cases a gets right
    res = mcnemar_test(y, a, b)
    assert res["table"] == {"both_right": 5, "a_right_b_wrong": 3, "a_wrong_b_right": 0, "both_wrong": 0}
    assert res["method"] == "exact"
    assert res["p_value"] == pytest.approx(0.25)
    assert res["accuracy_difference"] == pytest.approx(3 / 8)


def test_holm_adjustment_by_hand():
    # sorted 0.01, 0.02, 0.03, 0.04 times 4, 3, 2, 1 -> 0.04, 0.06, 0.06, 0.04 -> monotone 0.04, 0.06, 0.06, 0.06
    adjusted = holm([0.03, 0.01, None, 0.04, 0.02])
    np.testing.assert_allclose(adjusted, [0.06, 0.04, np.nan, 0.06, 0.06])
    assert holm([0.5, 0.9]).tolist() == [1.0, 1.0]  # capped at 1
    assert holm([]).size == 0
