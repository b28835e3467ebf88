"""The fine-class (multi-class) model: predictions, determinism, metrics against scikit-learn, skipping."""

import json

import model_tables
import numpy as np
import pandas as pd
import pytest
from model_stage_runs import job_inputs
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from calcsig.model import metrics as M
from calcsig.model import stage
from calcsig.model.multiclass import TooFewClasses, fine_class_splits, trainable_classes

PARAMS = {"bootstrap_repeats": 50, "inner_folds": 3, "baselines": {"mean_std": False, "mask_brf": False}}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    t = model_tables.make_tables(n_subjects=48, rois_per_subject=2, objects_per_roi=6, n_outer=3, seed=4)
    files = model_tables.write_tables(t, tmp_path_factory.mktemp("multiclass"))
    return files, t, _load(files)


def _load(files):
    inputs = job_inputs(files)
    return stage.load_model_data(**{k: inputs[k] for k in ("objects", "rois", "assignment", "images", "cohort")})


def test_simulated_corpus_has_fine_classes_consistent_with_the_label():
    t = model_tables.make_tables(n_subjects=40, seed=0)
    c = t["corpus_rois"]
    assert set(c["fine_class"]) == {"benign", "high_risk", "dcis", "invasive"}
    assert ((c["fine_class"] == "benign") == (c["label"] == "benign")).all()
    assert c.groupby(c["roi_id"].str[:4])["fine_class"].nunique().max() == 1  # one class per subject
    # the fine classes come from their own random stream: the binary corpus is unchanged by them
    plain = model_tables.make_tables(n_subjects=40, seed=0, fine_signal=0.0)
    pd.testing.assert_frame_equal(plain["corpus_rois"], c)
    assert plain["objects"]["fg_f0"].equals(t["objects"]["fg_f0"])


@pytest.mark.parametrize("fold", ["1", "eval"])
def test_fine_class_predictions_have_the_columns_and_valid_probabilities(data, fold):
    files, t, loaded = data
    pred, record = stage.predict_cases(loaded, PARAMS, fold, "fine_class", files["grid"])
    _, test = stage.fold_cases(loaded.cases, fold)
    assert list(pred.columns) == stage.PREDICTION_COLUMNS + stage.MULTICLASS_COLUMNS
    assert sorted(pred["roi_id"]) == sorted(test["roi_id"]) and (pred["model"] == "fine_class").all()
    truth = t["corpus_rois"].set_index("roi_id")["fine_class"]
    assert (pred["true_class"] == pred["roi_id"].map(truth)).all()
    assert (pred["label"] == (pred["true_class"] != "benign")).all()
    proba = pd.DataFrame([json.loads(s) for s in pred["class_probabilities"]])
    assert set(proba.columns) == set(record["classes"]) and "benign" in proba.columns
    assert ((proba >= 0) & (proba <= 1)).all().all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    # argmax prediction; the binary view is the actionable classes' share of the probability
    assert (proba.idxmax(axis=1).to_numpy() == pred["predicted_class"].to_numpy()).all()
    np.testing.assert_allclose(pred["probability"], 1.0 - proba["benign"], atol=1e-9)
    assert (pred["predicted"] == (pred["predicted_class"] != "benign").astype(int)).all()
    # no threshold: both operating points are the most probable class's call
    assert (pred["predicted_margin"] == pred["predicted"]).all() and pred["threshold"].isna().all()
    assert record["binary_of_class"]["benign"] == 0
    assert all(v == 1 for c, v in record["binary_of_class"].items() if c != "benign")
    assert record["selection"] == "macro_f1" and len(record["candidates"]) == 2
    best = max(record["candidates"], key=lambda c: (c["macro_f1"], -c["log_loss"]))
    assert record["best_params"] == best["params"]


def test_fine_class_is_deterministic(data):
    files, _, loaded = data
    a, ra = stage.predict_cases(loaded, PARAMS, "2", "fine_class", files["grid"])
    b, rb = stage.predict_cases(loaded, PARAMS, "2", "fine_class", files["grid"])
    pd.testing.assert_frame_equal(a, b)
    assert ra["best_params"] == rb["best_params"] and ra["candidates"] == rb["candidates"]


def test_fine_class_learns_the_simulated_classes(tmp_path):
    # a clear per-class signal: on the shared fixture's weak one, 24 eval ROIs give
    # macro recall anywhere from 0.42 to 0.75 depending on the seed alone
    t = model_tables.make_tables(
        n_subjects=48, rois_per_subject=2, objects_per_roi=6, n_outer=3, seed=4, fine_signal=3.0
    )
    files = model_tables.write_tables(t, tmp_path)
    pred, _ = stage.predict_cases(_load(files), PARAMS, "eval", "fine_class", files["grid"])
    m = M.multiclass_metrics(pred["true_class"], pred["predicted_class"])
    chance = 1.0 / len(m["labels"])
    assert m["macro"]["recall"] > chance + 0.1


def test_inner_folds_group_subjects_and_rare_classes_are_left_out():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(30), 2)
    classes = np.array(["a", "b", "c"])[np.repeat(rng.integers(0, 3, 30), 2)]
    for tr, va in fine_class_splits(classes, groups, 4, seed=2):
        assert not set(groups[tr]) & set(groups[va])
    keep, left = trainable_classes(["a", "a", "b", "c", None, ""], [1, 2, 3, 3, 4, 5])
    assert keep == ["a"] and left == {"b": 1, "c": 1}
    with pytest.raises(TooFewClasses):
        fine_class_splits(["a", "a", "b"], [1, 2, 3], 3)


def test_weighted_multiclass_scores_match_sklearn_and_repeated_cases():
    rng = np.random.default_rng(0)
    labels = ["benign", "dcis", "high_risk", "invasive"]
    y = rng.choice(labels, 60)
    yhat = np.where(rng.random(60) < 0.6, y, rng.choice(labels, 60))
    p, r, f, s = precision_recall_fscore_support(y, yhat, labels=labels, zero_division=np.nan)
    w = M.weighted_multiclass_scores(np.ones(60), y, yhat, labels)
    np.testing.assert_allclose(w["precision"][0], p)
    np.testing.assert_allclose(w["recall"][0], r)
    np.testing.assert_allclose(w["f1"][0], f)
    assert w["accuracy"][0] == pytest.approx(np.mean(y == yhat))
    mult = rng.integers(0, 3, 60)
    rep = np.repeat(np.arange(60), mult)
    pw, rw, fw, _ = precision_recall_fscore_support(y[rep], yhat[rep], labels=labels, zero_division=np.nan)
    wm = M.weighted_multiclass_scores(mult[None, :], y, yhat, labels)
    np.testing.assert_allclose(wm["precision"][0], pw)
    np.testing.assert_allclose(wm["f1"][0], fw)


def test_multiclass_metrics_with_ci_known_case():
    y = np.array(["benign"] * 5 + ["dcis"] * 3 + ["invasive"] * 2)
    yhat = np.array(["benign", "benign", "benign", "benign", "dcis", "dcis", "dcis", "benign", "invasive", "dcis"])
    groups = np.arange(10).astype(str)
    out = M.multiclass_metrics_with_ci(y, yhat, groups, (y != "benign").astype(int), n_boot=300, seed=1)
    p, r, f, s = precision_recall_fscore_support(y, yhat, labels=out["labels"], zero_division=np.nan)
    mp, mr, mf, _ = precision_recall_fscore_support(y, yhat, average="macro", zero_division=np.nan)
    assert out["labels"] == ["benign", "dcis", "invasive"]
    # benign: 4 of 5 right, 1 of 5 called benign wrongly; dcis: 2 of 3, precision 2/4; invasive 1 of 2, precision 1/1
    assert out["per_class"]["benign"]["precision"]["value"] == pytest.approx(4 / 5)
    assert out["per_class"]["dcis"]["precision"]["value"] == pytest.approx(2 / 4)
    assert out["per_class"]["invasive"]["recall"]["value"] == pytest.approx(1 / 2)
    for j, c in enumerate(out["labels"]):
        assert out["per_class"][c]["precision"]["value"] == pytest.approx(p[j])
        assert out["per_class"][c]["recall"]["value"] == pytest.approx(r[j])
        assert out["per_class"][c]["f1"]["value"] == pytest.approx(f[j])
        assert out["per_class"][c]["support"] == s[j]
    assert out["macro"]["precision"]["value"] == pytest.approx(mp)
    assert out["macro"]["recall"]["value"] == pytest.approx(mr)
    assert out["macro"]["f1"]["value"] == pytest.approx(mf)
    assert out["confusion"] == confusion_matrix(y, yhat, labels=out["labels"]).tolist()
    assert out["accuracy"]["value"] == pytest.approx(0.7)
    for m in ("precision", "recall", "f1"):
        v = out["macro"][m]
        assert v["ci_low"] <= v["value"] <= v["ci_high"] and v["ci_low"] < v["ci_high"]
    none = M.multiclass_metrics_with_ci(y, yhat, groups, (y != "benign").astype(int), n_boot=0)
    assert none["macro"]["f1"]["ci_low"] is None and none["macro"]["f1"]["value"] == pytest.approx(mf)


def _run_jobs(files, params, models, out):
    paths = []
    for model in models:
        for fold in ("1", "2", "3", "eval"):
            written = stage.run_outer_fold(
                **job_inputs(files), params=params, fold=fold, model_name=model, out_dir=out / model / fold
            )
            paths.append(written["predictions"])
    return paths


@pytest.mark.parametrize("corpus", ["one_class", "no_column"])
def test_a_single_fine_class_skips_the_model_with_a_reason(data, tmp_path, corpus):
    files, t, _ = data
    rois, cohort = t["corpus_rois"].copy(), t["cohort"].copy()
    if corpus == "one_class":
        rois["fine_class"] = cohort["fine_class"] = "calcification"
    else:
        rois = rois.drop(columns="fine_class")
        cohort["fine_class"] = ""
    files = {**files, "corpus_rois": tmp_path / "rois.tsv", "cohort": tmp_path / "cohort.tsv"}
    rois.to_csv(files["corpus_rois"], sep="\t", index=False)
    cohort.to_csv(files["cohort"], sep="\t", index=False)
    params = {**PARAMS, "bootstrap_repeats": 20}
    paths = _run_jobs(files, params, ["bag_of_objects", "fine_class"], tmp_path)
    for p in paths[4:]:
        assert len(pd.read_parquet(p)) == 0
        rec = json.loads(p.with_name("search.json").read_text())
        assert "fine class" in rec["skipped"]
    gathered = stage.gather_predictions(paths, tmp_path / "predictions.parquet")
    assert set(gathered["model"]) == {"bag_of_objects"}
    assert gathered["predicted"].dtype == np.int64 and gathered["label"].dtype == np.int64
    result = stage.evaluate_models(
        paths, files["images"], params, tmp_path / "m.json", tmp_path / "m.tsv", corpus_rois_tsv=files["corpus_rois"]
    )
    assert set(result["models"]["fine_class"]) == {"skipped"}
    assert "fold eval" in result["models"]["fine_class"]["skipped"]
    assert "multiclass" not in result["models"]["bag_of_objects"]
    assert {c["b"] for c in result["comparisons"]} == set()
    tsv = pd.read_csv(tmp_path / "m.tsv", sep="\t")
    assert set(tsv["model"]) == {"bag_of_objects"}
