"""Optimiser: exact group sizes and strata, pinned subjects, determinism, SMD arithmetic, multi-class."""

from __future__ import annotations

import numpy as np
import pytest

from calcsig.partition.covariates import age_band
from calcsig.partition.optimiser import cell_targets, optimise_groups, pairwise_smd, worst_abs_smd

SEARCH = {"n_restarts": 2, "max_iter": 400, "patience": 150}


def random_subjects(n: int, seed: int, n_strata: int = 3):
    rng = np.random.default_rng(seed)
    strata = rng.choice(
        [f"class_{k}" for k in range(n_strata)],
        size=n,
        p=np.linspace(2, 1, n_strata) / np.linspace(2, 1, n_strata).sum(),
    )
    site = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    density = rng.choice(4, size=n)
    age = rng.normal(57, 10, size=n)
    X = np.column_stack([site == k for k in range(3)] + [density == k for k in range(4)] + [age]).astype(float)
    return strata, X


def test_pairwise_smd_matches_hand_computation():
    # group 0: values 1, 2, 3 (mean 2, var 2/3); group 1: 3, 4, 5 (mean 4, var 2/3)
    x = np.array([1, 2, 3, 3, 4, 5], float)[:, None]
    groups = np.array([0, 0, 0, 1, 1, 1])
    sums = np.array([[x[groups == g].sum()] for g in (0, 1)])
    sq = np.array([[(x[groups == g] ** 2).sum()] for g in (0, 1)])
    smd = pairwise_smd(sums, sq, np.array([3, 3]))
    assert smd.shape == (1, 1)
    assert smd[0, 0] == pytest.approx((2 - 4) / np.sqrt(2 / 3))
    # indicator: proportions 0.5 and 0.25 -> (0.25) / sqrt((0.25 + 0.1875) / 2)
    ind = np.array([1, 0, 1, 0, 1, 0, 0, 0], float)[:, None]
    g2 = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert worst_abs_smd(ind, g2, 2) == pytest.approx(0.25 / np.sqrt((0.25 + 0.1875) / 2))


def test_cell_targets_meet_both_margins():
    strata = np.array(["a"] * 55 + ["b"] * 51 + ["c"] * 14)
    fixed = np.full(len(strata), -1)
    targets = cell_targets(strata, np.array([0.6, 0.15, 0.25]), fixed)
    assert targets.sum(axis=1).tolist() == [55, 51, 14]
    assert targets.sum(axis=0).tolist() == [72, 18, 30]
    assert np.abs(targets - np.outer([55, 51, 14], [0.6, 0.15, 0.25])).max() < 1.0


def test_sizes_and_strata_exact_and_pinned_respected():
    strata, X = random_subjects(100, seed=1)
    fixed = np.full(100, -1)
    fixed[:6] = 0
    result = optimise_groups(strata, X, [0.6, 0.15, 0.25], seed=3, fixed=fixed, **SEARCH)
    assert (result.groups[:6] == 0).all()
    assert np.bincount(result.groups, minlength=3).tolist() == [60, 15, 25]
    for level in np.unique(strata):
        counts = np.bincount(result.groups[strata == level], minlength=3)
        assert np.abs(counts - (strata == level).sum() * np.array([0.6, 0.15, 0.25])).max() < 1.0


def test_multiclass_strata_and_folds():
    strata, X = random_subjects(90, seed=2, n_strata=5)
    result = optimise_groups(strata, X, np.ones(4), seed=1, **SEARCH)
    assert sorted(np.bincount(result.groups).tolist()) == [22, 22, 23, 23]
    for level in np.unique(strata):
        counts = np.bincount(result.groups[strata == level], minlength=4)
        assert counts.max() - counts.min() <= 1


def test_deterministic_and_seed_dependent():
    strata, X = random_subjects(80, seed=5)
    first = optimise_groups(strata, X, [0.6, 0.15, 0.25], seed=9, **SEARCH)
    again = optimise_groups(strata, X, [0.6, 0.15, 0.25], seed=9, **SEARCH)
    other = optimise_groups(strata, X, [0.6, 0.15, 0.25], seed=10, **SEARCH)
    assert np.array_equal(first.groups, again.groups)
    assert not np.array_equal(first.groups, other.groups)


def test_search_improves_on_its_own_starting_point():
    strata, X = random_subjects(120, seed=6)
    start = optimise_groups(strata, X, [0.6, 0.15, 0.25], seed=4, n_restarts=1, max_iter=0, patience=1)
    searched = optimise_groups(strata, X, [0.6, 0.15, 0.25], seed=4, n_restarts=1, max_iter=800, patience=200)
    assert searched.worst_abs_smd < start.worst_abs_smd
    assert searched.worst_abs_smd <= 0.1


def test_age_band_edges():
    import pandas as pd

    bands = age_band(pd.Series([39.9, 40, 49.5, 70, 85, None]), [40, 50, 60, 70])
    assert bands.tolist() == ["<40", "40-50", "40-50", ">=70", ">=70", None]
