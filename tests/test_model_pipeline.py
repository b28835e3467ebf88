"""SMOTE-ENN adapting to tiny classes, and reproducible pipelines."""

import logging

import numpy as np
import pandas as pd
import pytest

from calcsig.model.aggregation import objects_by_roi
from calcsig.model.pipeline import build_pipeline
from calcsig.model.resampling import AdaptiveSMOTEENN


def _data(n_major=30, n_minor=3, seed=0):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(size=(n_major, 4)), rng.normal(size=(n_minor, 4)) + 2.0])
    y = np.r_[np.zeros(n_major, int), np.ones(n_minor, int)]
    return X, y


def test_smoteenn_balances_an_ordinary_problem():
    X, y = _data(40, 12)
    s = AdaptiveSMOTEENN(random_state=0)
    Xr, yr = s.fit_resample(X, y)
    assert s.applied_ == "smote_enn" and s.log_ == []
    assert (yr == 1).sum() > 12


def test_smoteenn_reduces_k_for_a_tiny_class(caplog):
    X, y = _data(30, 3)
    s = AdaptiveSMOTEENN(k_neighbors=5, random_state=0)
    with caplog.at_level(logging.INFO, logger="calcsig.model.resampling"):
        Xr, yr = s.fit_resample(X, y)
    assert any("reduced from 5 to 2" in m for m in s.log_)
    assert "reduced from 5 to 2" in caplog.text
    assert s.applied_ in ("smote_enn", "smote")
    assert (yr == 1).sum() > 3


def test_smoteenn_steps_aside_for_a_minority_of_one_and_refuses_what_it_cannot_resample():
    X, y = _data(20, 1)
    s = AdaptiveSMOTEENN(random_state=0)
    Xr, yr = s.fit_resample(X, y)
    assert s.applied_ == "none" and "minority class has 1 sample" in s.log_[0]
    np.testing.assert_array_equal(Xr, X)
    with pytest.raises(ValueError, match="more than 1 class"):
        AdaptiveSMOTEENN().fit_resample(X[:20], y[:20])
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):  # impute before resampling
        AdaptiveSMOTEENN().fit_resample(X_nan, np.r_[np.zeros(15, int), np.ones(6, int)])
    with pytest.raises(ValueError, match="k_neighbors must be an integer >= 1"):
        AdaptiveSMOTEENN(k_neighbors=0).fit_resample(*_data(30, 6))


def test_pipeline_is_deterministic_and_seed_matters():
    rng = np.random.default_rng(4)
    rows = [
        {
            "roi_id": f"r{i}",
            "object_id": o,
            "fg_a": rng.normal() + (i % 3 == 0),
            "rp_b": rng.normal(),
            "bg_c": rng.normal(),
        }
        for i in range(30)
        for o in range(5)
    ]
    ids = [f"r{i}" for i in range(30)]
    X = pd.DataFrame({"hc_g": rng.normal(size=30), "objects": objects_by_roi(pd.DataFrame(rows), ids)})
    y = np.array([int(i % 3 == 0) for i in range(30)])
    probs = []
    for seed in (7, 7, 8):
        pipe = build_pipeline(
            "bag_of_objects",
            n_clusters=4,
            seed=seed,
            lightgbm_params={"n_estimators": 20, "min_child_samples": 3, "subsample": 0.7, "subsample_freq": 1},
        )
        probs.append(pipe.fit(X, y).predict_proba(X)[:, 1])
    np.testing.assert_array_equal(probs[0], probs[1])
    assert not np.array_equal(probs[0], probs[2])
    steps = [name for name, _ in build_pipeline().steps]
    assert steps == ["aggregate", "impute", "resample", "classifier"]
    assert [n for n, _ in build_pipeline(resample=False).steps] == ["aggregate", "impute", "classifier"]
