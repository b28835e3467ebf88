"""calcsig's estimators follow scikit-learn (and imbalanced-learn) conventions: the library's own checks pass."""

import pickle

import numpy as np
import pandas as pd
import pytest
from imblearn.pipeline import Pipeline
from imblearn.utils.estimator_checks import estimator_checks_generator
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedKFold, cross_validate
from sklearn.utils.estimator_checks import parametrize_with_checks

from calcsig.model.aggregation import BagOfObjects, MeanStd, objects_by_roi
from calcsig.model.pipeline import build_pipeline
from calcsig.model.resampling import AdaptiveSMOTEENN

# Every scikit-learn check runs, none is expected to fail. The checks pass numeric arrays, i.e. ROI
# tables without an `objects` column: the transformers then see ROIs without objects and pass the
# global features through, so the checks exercise input validation, cloning, fitted state and
# feature names; the object path is tested below and in test_model_aggregation.py.
ESTIMATORS = [BagOfObjects(n_clusters=3), MeanStd(), AdaptiveSMOTEENN(random_state=0)]


@parametrize_with_checks(ESTIMATORS)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


# imbalanced-learn's own sampler checks (listed here: its decorator hands pytest a generator)
SAMPLER_CHECKS = list(estimator_checks_generator(AdaptiveSMOTEENN(random_state=0)))


@pytest.mark.parametrize("estimator, check", SAMPLER_CHECKS, ids=[check.func.__name__ for _, check in SAMPLER_CHECKS])
def test_imbalanced_learn_sampler_checks(estimator, check):
    check(estimator)


def _data(n_rois=40, seed=0):
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1, 0, 0], n_rois // 4)
    rows = [
        {"roi_id": f"r{i}", "object_id": o, "fg_a": rng.normal() + 2 * y[i], "rp_b": rng.normal(), "bg_c": rng.normal()}
        for i in range(n_rois)
        for o in range(int(rng.integers(0, 6)))
    ]
    objects = pd.DataFrame(rows)
    ids = [f"r{i}" for i in range(n_rois)]
    X = pd.DataFrame({"n_objects": objects.groupby("roi_id").size().reindex(ids).fillna(0).to_numpy()})
    X["hc_g"] = rng.normal(size=n_rois)
    X["objects"] = objects_by_roi(objects, ids)
    return X, y


def test_parameters_are_settings_and_clone_copies_nothing_else():
    pipe = build_pipeline("bag_of_objects", n_clusters=4, lightgbm_params={"n_estimators": 5})
    for name, value in pipe.get_params(deep=True).items():
        if name.startswith("aggregate__"):
            assert isinstance(value, (int, float, str, tuple, type(None))), name
    X, y = _data()
    pipe.fit(X, y)
    twin = clone(pipe)
    assert not hasattr(twin.named_steps["aggregate"], "codebooks_")  # a clone is unfitted
    assert twin.get_params()["aggregate__n_clusters"] == 4
    # neither the clone nor the fitted pipeline drags the training objects along
    assert len(pickle.dumps(twin)) < len(pickle.dumps(X["objects"]))
    assert len(pickle.dumps(pipe.named_steps["aggregate"])) < len(pickle.dumps(X["objects"]))


def test_grid_search_scores_and_slices_the_objects_with_the_rows():
    X, y = _data(48)
    pipe = build_pipeline("bag_of_objects", n_clusters=3, lightgbm_params={"n_estimators": 5, "min_child_samples": 2})
    search = GridSearchCV(pipe, {"aggregate__n_clusters": [2, 3]}, cv=GroupKFold(3), scoring="roc_auc")
    search.fit(X, y, groups=np.arange(48) // 2)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()  # the scorer's predictions got their objects
    assert search.best_params_["aggregate__n_clusters"] in (2, 3)
    assert search.predict_proba(X.iloc[:5]).shape == (5, 2)
    fitted = search.best_estimator_.named_steps["aggregate"]
    assert fitted.n_objects_fit_ == sum(len(f) for f in X["objects"])  # the refit saw every ROI's objects


def test_cross_validation_fits_each_fold_on_its_own_rows_objects():
    X, y = _data(40)
    pipe = build_pipeline("mean_std", lightgbm_params={"n_estimators": 5, "min_child_samples": 2})
    cv = StratifiedKFold(4)
    res = cross_validate(pipe, X, y, cv=cv, return_estimator=True, scoring="roc_auc")
    assert np.isfinite(res["test_score"]).all()
    for est, (train, _) in zip(res["estimator"], cv.split(X, y)):
        assert est.named_steps["aggregate"].n_objects_fit_ == sum(len(X["objects"].iloc[i]) for i in train)


def test_transform_refuses_objects_missing_or_unexpected():
    X, y = _data()
    with_objects = BagOfObjects(n_clusters=2).fit(X)
    with pytest.raises(ValueError, match="needs its 'objects' column"):
        with_objects.transform(X.drop(columns="objects"))
    without = MeanStd().fit(X.drop(columns="objects"))
    with pytest.raises(ValueError, match="fitted without an 'objects' column"):
        without.transform(X)
    broken = X.copy()
    broken.loc[0, "objects"] = "not a table"
    with pytest.raises(TypeError, match="DataFrame of one ROI's objects"):
        MeanStd().fit(broken)


def test_adaptive_smoteenn_composes_in_an_imblearn_pipeline_like_any_sampler():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(40, 3)), rng.normal(size=(8, 3)) + 1.5])
    y = np.r_[np.zeros(40, int), np.ones(8, int)]
    pipe = Pipeline([("resample", AdaptiveSMOTEENN(random_state=0)), ("classifier", LogisticRegression())])
    pipe.fit(X, y)
    sampler = pipe.named_steps["resample"]
    assert sampler.applied_ == "smote_enn" and sampler.sampling_strategy_
    # the sampler is skipped at prediction time: one probability per given case
    assert pipe.predict_proba(X).shape == (48, 2)
    Xr, yr = pipe[:-1].fit_resample(X, y)
    assert (yr == 1).sum() > 8 and len(Xr) == len(yr)
