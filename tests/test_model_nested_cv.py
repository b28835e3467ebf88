"""Nested CV: no fitted step ever sees a held-out ROI; subjects never straddle a fold; thresholds; determinism."""

import re
from collections import Counter

import model_tables
import numpy as np
import pandas as pd
import pytest

from calcsig.model import aggregation, multiclass, nested_cv, pipeline, resampling, stage
from calcsig.model.nested_cv import inner_splits
from calcsig.model.thresholds import choose_operating_points, choose_threshold, rule


@pytest.fixture(scope="module")
def marked(tmp_path_factory):
    """Simulated stage inputs where every ROI carries its integer code in one column of every family.

    The marker survives aggregation unchanged in the globals (hc_marker) and
    in each family's raw object features (fg_/rp_/bg_marker, the last column
    of its family), so each fitted step's input tells which ROIs it saw.
    """
    t = model_tables.make_tables(n_subjects=36, rois_per_subject=2, objects_per_roi=5, n_outer=3, seed=11)
    codes = {r: float(i) for i, r in enumerate(t["rois"]["roi_id"])}
    for fam in ("fg", "rp", "bg"):
        t["objects"][f"{fam}_marker"] = t["objects"]["roi_id"].map(codes)
    t["rois"]["hc_marker"] = t["rois"]["roi_id"].map(codes)
    files = model_tables.write_tables(t, tmp_path_factory.mktemp("marked"))
    data = stage.load_model_data(
        objects=files["objects"],
        rois=files["rois"],
        assignment=files["assignment"],
        images=files["images"],
        cohort=files["cohort"],
    )
    assert data.global_columns[-1] == "hc_marker"
    # an external cohort: two subjects of each label taken out of train+dev (split external, no fold)
    cases = data.cases
    dev = cases[cases["split"] != "eval"].drop_duplicates("subject_id")
    external = [s for lab in (0, 1) for s in dev.loc[dev["label"] == lab, "subject_id"].iloc[:2]]
    ext = cases["subject_id"].isin(external)
    cases.loc[ext, "split"], cases.loc[ext, "outer_fold"] = "external", ""
    return data, files["grid"], {v: k for k, v in codes.items()}


def _instrument(monkeypatch):
    seen = {"scaler": [], "kmeans": [], "impute": [], "resample": [], "threshold": [], "splits": []}

    class RecordingScaler(aggregation.StandardScaler):
        def fit(self, X, y=None, sample_weight=None):
            super().fit(X, y, sample_weight)
            seen["scaler"].append((set(np.asarray(X)[:, -1]), self))
            return self

    class RecordingKMeans(aggregation.KMeans):
        def fit(self, X, y=None, sample_weight=None):
            seen["kmeans"].append(np.asarray(X)[:, -1].copy())
            return super().fit(X, y, sample_weight)

    class RecordingImputer(pipeline.SimpleImputer):
        def fit(self, X, y=None):
            seen["impute"].append(set(np.asarray(X)[:, -1]))
            return super().fit(X, y)

    original_resample = resampling.AdaptiveSMOTEENN.fit_resample

    def recording_resample(self, X, y):
        seen["resample"].append(set(np.asarray(X)[:, -1]))
        return original_resample(self, X, y)

    original_threshold = nested_cv.threshold_from_oof

    def recording_threshold(oof, target, margin):
        seen["threshold"].append(set(oof["roi_id"]))
        return original_threshold(oof, target, margin)

    original_splits = nested_cv.inner_splits

    def recording_splits(y, groups, n_splits=5, seed=0):
        s = original_splits(y, groups, n_splits, seed)
        seen["splits"].append(s)
        return s

    monkeypatch.setattr(aggregation, "StandardScaler", RecordingScaler)
    monkeypatch.setattr(aggregation, "KMeans", RecordingKMeans)
    monkeypatch.setattr(pipeline, "SimpleImputer", RecordingImputer)
    monkeypatch.setattr(resampling.AdaptiveSMOTEENN, "fit_resample", recording_resample)
    monkeypatch.setattr(nested_cv, "threshold_from_oof", recording_threshold)
    monkeypatch.setattr(nested_cv, "inner_splits", recording_splits)
    return seen


def assert_external_predicted_by_the_final_model_only(pred, cases, fold, external):
    """Only the final model predicts the external ROIs, under fold "external"; outer folds never see them."""
    if fold == "eval":
        assert set(pred.loc[pred["fold"] == "external", "roi_id"]) == external
        assert set(pred.loc[pred["fold"] == "eval", "roi_id"]) == set(cases.loc[cases["split"] == "eval", "roi_id"])
    else:
        assert not external & set(pred["roi_id"]) and set(pred["fold"]) == {fold}


@pytest.mark.parametrize("fold", ["2", "eval"])
def test_no_fitted_step_sees_a_held_out_roi(marked, monkeypatch, fold):
    data, grid, roi_of = marked
    cases = data.cases
    seen = _instrument(monkeypatch)
    params = {"bootstrap_repeats": 0, "inner_folds": 3}
    pred, record = stage.predict_cases(data, params, fold, "bag_of_objects", grid)

    train, test = stage.fold_cases(cases, fold)
    train_ids = train["roi_id"].tolist()
    external = set(cases.loc[cases["split"] == "external", "roi_id"])
    held_out = (
        set(test["roi_id"])
        | external
        | (set(cases.loc[cases["split"] == "eval", "roi_id"]) if fold != "eval" else set())
    )
    assert set(pred["roi_id"]) == set(test["roi_id"]) and held_out and external
    assert_external_predicted_by_the_final_model_only(pred, cases, fold, external)
    assert len(seen["splits"]) == 1
    # the sets a fitted step may see: an inner training part, or the whole outer training set (refit)
    allowed = [frozenset(train_ids)] + [frozenset(np.asarray(train_ids)[tr]) for tr, _ in seen["splits"][0]]
    with_objects = set(cases.loc[cases["n_objects"] > 0, "roi_id"])

    def rois(codes):
        return {roi_of[c] for c in codes}

    for name in ("scaler", "impute", "resample"):
        assert seen[name], f"{name} was never fitted: the instrumentation is broken"
    for codes, _ in seen["scaler"]:
        assert any(rois(codes) == (a & with_objects) for a in allowed)
    for name in ("impute", "resample"):
        for codes in seen[name]:
            assert rois(codes) in allowed, name
            assert not rois(codes) & held_out
        # every inner fit saw exactly its inner training part; only the single refit saw all training ROIs
        fitted = Counter(frozenset(rois(c)) for c in seen[name])
        assert fitted[allowed[0]] == 1, name
        assert all(fitted[a] >= 1 for a in allowed[1:]), name
        assert sum(fitted.values()) == len(allowed), name
    # k-means gets standardised markers: undo the recorded scaler's transform to name the ROIs
    assert len(seen["kmeans"]) == len(seen["scaler"])
    for z, (_, scaler) in zip(seen["kmeans"], seen["scaler"]):
        codes = np.round(z * scaler.scale_[-1] + scaler.mean_[-1]).astype(float)
        assert not rois(codes) & held_out
        assert any(rois(codes) == (a & with_objects) for a in allowed)
    # both thresholds are chosen on out-of-fold predictions of the training ROIs only
    assert seen["threshold"] and all(s == set(train_ids) for s in seen["threshold"])
    points = record["operating_points"]
    assert record["threshold"] == points["target"]["threshold"] == pred["threshold"].iloc[0]
    assert points["margin"]["threshold"] >= points["target"]["threshold"]  # the margin gives up sensitivity
    assert (pred["predicted"] == (pred["probability"] >= pred["threshold"])).all()
    assert (pred["predicted_margin"] == (pred["probability"] >= pred["threshold_margin"])).all()


def test_outer_and_inner_folds_never_split_a_subject(marked):
    cases = marked[0].cases
    for fold in ("1", "2", "3", "eval"):
        train, test = stage.fold_cases(cases, fold)
        assert not set(train["subject_id"]) & set(test["subject_id"])
        for tr, va in inner_splits(train["label"], train["subject_id"], 5, seed=3):
            g = train["subject_id"].to_numpy()
            assert not set(g[tr]) & set(g[va])
            assert set(train["label"].to_numpy()[va]) == {0, 1}
    rng = np.random.default_rng(0)
    for _ in range(20):
        groups = rng.integers(0, 25, size=80)
        y = (groups % 3 == 0).astype(int)
        for tr, va in inner_splits(y, groups, 5, seed=int(rng.integers(100))):
            assert not set(groups[tr]) & set(groups[va])
            assert len(tr) + len(va) == 80


def test_inner_splits_shrink_or_refuse_with_few_subjects():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0])
    groups = np.array([1, 1, 2, 3, 4, 5, 6, 7, 8])  # two positive subjects
    assert len(inner_splits(y, groups, 5)) == 2
    with pytest.raises(ValueError, match="subject"):
        inner_splits(y, np.array([1, 1, 1, 3, 4, 5, 6, 7, 8]), 5)


def test_inner_folds_and_fits_group_by_the_partitions_group_id(tmp_path, monkeypatch):
    t = model_tables.make_tables(n_subjects=36, rois_per_subject=2, objects_per_roi=5, n_outer=3, seed=11)
    a = t["assignment"]
    # duplicate-aware groups: subjects S000+S001, S002+S003, ... form one group each
    a["group_id"] = "G" + (a["subject_id"].str[1:].astype(int) // 2).astype(str)
    files = model_tables.write_tables(t, tmp_path)
    data = stage.load_model_data(
        objects=files["objects"],
        rois=files["rois"],
        assignment=files["assignment"],
        images=files["images"],
        cohort=files["cohort"],
    )
    assert (data.cases["group_id"] == "G" + (data.cases["subject_id"].str[1:].astype(int) // 2).astype(str)).all()
    seen = _instrument(monkeypatch)
    stage.predict_cases(data, {"inner_folds": 3}, "1", "mean_std", files["grid"])
    train, _ = stage.fold_cases(data.cases, "1")
    groups = train["group_id"].to_numpy()
    for tr, va in seen["splits"][0]:
        assert not set(groups[tr]) & set(groups[va])
    # without the column, the subject is the group
    t["assignment"] = t["assignment"].drop(columns="group_id")
    files = model_tables.write_tables(t, tmp_path / "plain")
    plain = stage.load_model_data(
        objects=files["objects"],
        rois=files["rois"],
        assignment=files["assignment"],
        images=files["images"],
        cohort=files["cohort"],
    )
    assert (plain.cases["group_id"] == plain.cases["subject_id"]).all()


def test_choose_threshold_reaches_target_with_best_specificity():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1, 0.05])
    full = choose_threshold(y, p, 1.0)
    assert full == {"threshold": 0.3, "sensitivity": 1.0, "specificity": pytest.approx(3 / 5)}
    three_quarters = choose_threshold(y, p, 0.75)
    assert three_quarters["threshold"] == 0.6 and three_quarters["specificity"] == pytest.approx(4 / 5)
    # any higher threshold misses the target
    assert np.mean(p[y == 1] >= 0.61) < 0.75


def test_same_seed_same_predictions(marked):
    data, grid, _ = marked
    params = {"bootstrap_repeats": 0, "inner_folds": 3, "seed": 5}
    a, ra = stage.predict_cases(data, params, "1", "bag_of_objects", grid)
    b, rb = stage.predict_cases(data, params, "1", "bag_of_objects", grid)
    pd.testing.assert_frame_equal(a, b)
    assert ra["best_params"] == rb["best_params"] and ra["threshold"] == rb["threshold"]


@pytest.mark.parametrize("fold", ["1", "eval"])
def test_fine_class_fits_never_see_a_held_out_roi(marked, monkeypatch, fold):
    data, grid, roi_of = marked
    cases = data.cases
    seen = _instrument(monkeypatch)
    seen["classifier"], seen["fine_splits"] = [], []

    class RecordingLGBM(pipeline.LGBMClassifier):
        def fit(self, X, y, *args, **kwargs):
            seen["classifier"].append(set(np.asarray(X)[:, -1]))
            return super().fit(X, y, *args, **kwargs)

    original_splits = multiclass.fine_class_splits

    def recording_splits(classes, groups, n_splits=5, seed=0):
        s = original_splits(classes, groups, n_splits, seed)
        seen["fine_splits"].append(s)
        return s

    monkeypatch.setattr(pipeline, "LGBMClassifier", RecordingLGBM)
    monkeypatch.setattr(multiclass, "fine_class_splits", recording_splits)
    params = {"bootstrap_repeats": 0, "inner_folds": 3}
    pred, record = stage.predict_cases(data, params, fold, "fine_class", grid)

    train, test = stage.fold_cases(cases, fold)
    external = set(cases.loc[cases["split"] == "external", "roi_id"])
    held_out = (
        set(test["roi_id"])
        | external
        | (set(cases.loc[cases["split"] == "eval", "roi_id"]) if fold != "eval" else set())
    )
    assert set(pred["roi_id"]) == set(test["roi_id"]) and held_out and external
    assert_external_predicted_by_the_final_model_only(pred, cases, fold, external)
    # the ROIs the multi-class fit uses: the training ROIs of the classes it could cross-validate
    fit_ids = train.loc[train["fine_class"].isin(record["classes"]), "roi_id"].to_numpy()
    assert len(fit_ids) == record["n_train_fit"]
    assert len(seen["fine_splits"]) == 1 and not seen["splits"] and not seen["resample"] and not seen["threshold"]
    allowed = [frozenset(fit_ids)] + [frozenset(fit_ids[tr]) for tr, _ in seen["fine_splits"][0]]
    with_objects = set(cases.loc[cases["n_objects"] > 0, "roi_id"])

    def rois(codes):
        return {roi_of[c] for c in codes}

    for name in ("scaler", "impute", "classifier"):
        assert seen[name], f"{name} was never fitted: the instrumentation is broken"
    for codes, _ in seen["scaler"]:
        assert any(rois(codes) == (a & with_objects) for a in allowed)
    for name in ("impute", "classifier"):
        for codes in seen[name]:
            assert rois(codes) in allowed, name
            assert not rois(codes) & held_out, name
        fitted = Counter(frozenset(rois(c)) for c in seen[name])
        assert fitted[allowed[0]] == 1, name  # the single refit on the whole training set
    # one classifier per grid candidate per inner fold, plus the refit
    assert len(seen["classifier"]) == len(record["candidates"]) * record["n_inner_folds"] + 1
    for z, (_, scaler) in zip(seen["kmeans"], seen["scaler"]):
        codes = np.round(z * scaler.scale_[-1] + scaler.mean_[-1]).astype(float)
        assert not rois(codes) & held_out


def test_the_margin_point_gives_up_sensitivity_for_specificity_on_the_same_predictions():
    y = np.array([1] * 20 + [0] * 20)
    p = np.r_[np.linspace(0.3, 0.95, 19), 0.05, np.linspace(0.0, 0.6, 20)]  # one actionable case scored very low
    points = choose_operating_points(y, p, target_sensitivity=1.0, margin_sensitivity=0.95)
    # the exact target sits at the lowest actionable score and calls nearly every benign case positive
    assert points["target"]["threshold"] == pytest.approx(0.05) and points["target"]["specificity"] <= 0.1
    # 19 of 20 is 0.95: the margin point drops that one case and spares half the benign ones
    assert points["margin"]["threshold"] == pytest.approx(0.3) and points["margin"]["sensitivity"] == 0.95
    assert points["margin"]["specificity"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="must give up sensitivity"):
        choose_operating_points(y, p, target_sensitivity=0.9, margin_sensitivity=0.95)
    assert "reaches 0.95" in rule("margin", 1.0, 0.95) and "reaches 1 " in rule("target", 1.0, 0.95)


def test_the_fitted_model_records_the_gain_of_each_feature_it_saw_and_the_signal_comes_first(tmp_path):
    # the label shifts feature f0 of every object family and the global features; nothing else carries it
    t = model_tables.make_tables(n_subjects=40, rois_per_subject=2, objects_per_roi=6, n_outer=3, seed=5, fine_signal=0)
    files = model_tables.write_tables(t, tmp_path)
    data = stage.load_model_data(
        objects=files["objects"],
        rois=files["rois"],
        assignment=files["assignment"],
        images=files["images"],
        cohort=files["cohort"],
    )
    params = {"inner_folds": 3, "baselines": {"mean_std": True, "mask_brf": False}}
    _, record = stage.predict_cases(data, params, "eval", "mean_std", files["grid"])
    recorded = record["feature_importance"]
    assert recorded["kind"] == "gain"
    gains = list(recorded["values"].values())
    assert gains == sorted(gains, reverse=True) and gains[0] > 0
    names = list(recorded["values"])
    # every aggregated object feature (mean_fg_f0, ...) and global feature (hc_g0, n_objects, ...), once
    assert len(names) == len(set(names)) and all(re.search(r"(fg|rp|bg)_f\d|^hc_g|^n_objects$", name) for name in names)
    assert all(name.endswith("_f0") or name.startswith("hc_g") for name in names[:3]), names[:5]
