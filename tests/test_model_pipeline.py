"""SMOTE-ENN adapting to tiny classes, and reproducible pipelines."""

import logging

import numpy as np
import pandas as pd

from calcsig.model.aggregation import ObjectTable
from calcsig.model.pipeline import AdaptiveSMOTEENN, build_pipeline


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
    with caplog.at_level(logging.INFO, logger="calcsig.model.pipeline"):
        Xr, yr = s.fit_resample(X, y)
    assert any("reduced from 5 to 2" in m for m in s.log_)
    assert "reduced from 5 to 2" in caplog.text
    assert s.applied_ in ("smote_enn", "smote")
    assert (yr == 1).sum() > 3


def test_smoteenn_skips_with_a_reason_when_it_cannot_run():
    X, y = _data(20, 1)
    s = AdaptiveSMOTEENN(random_state=0)
    Xr, yr = s.fit_resample(X, y)
    assert s.applied_ == "none" and "minority class has 1 sample" in s.log_[0]
    np.testing.assert_array_equal(Xr, X)
    s2 = AdaptiveSMOTEENN()
    _, y2 = s2.fit_resample(X[:20], y[:20])
    assert "only one class" in s2.log_[0] and len(y2) == 20
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    y3 = np.r_[np.zeros(15, int), np.ones(6, int)]
    s3 = AdaptiveSMOTEENN()
    s3.fit_resample(X_nan, y3)
    assert "non-finite" in s3.log_[0]


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
    objects = ObjectTable(pd.DataFrame(rows))
    X = pd.DataFrame({"roi_id": [f"r{i}" for i in range(30)], "hc_g": rng.normal(size=30)})
    y = np.array([int(i % 3 == 0) for i in range(30)])
    probs = []
    for seed in (7, 7, 8):
        pipe = build_pipeline(
            objects,
            "bag_of_objects",
            n_clusters=4,
            seed=seed,
            lightgbm_params={"n_estimators": 20, "min_child_samples": 3, "subsample": 0.7, "subsample_freq": 1},
        )
        probs.append(pipe.fit(X, y).predict_proba(X)[:, 1])
    np.testing.assert_array_equal(probs[0], probs[1])
    assert not np.array_equal(probs[0], probs[2])
    steps = [name for name, _ in build_pipeline(objects).steps]
    assert steps == ["aggregate", "impute", "resample", "classifier"]
    assert [n for n, _ in build_pipeline(objects, resample=False).steps] == ["aggregate", "impute", "classifier"]
