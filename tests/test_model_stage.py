"""Stage entry points end to end on small simulated files: contract, cohort, metric keys, comparisons, config."""

import json

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml
from model_stage_runs import job_inputs, run_every_job
from model_tables import cohort_table, make_tables, roi_splits, write_tables

from calcsig.errors import TableError
from calcsig.model import flat_table, stage
from calcsig.model.baselines import MaskSource, mask_pixels, resize_nearest
from calcsig.paths import RESOURCE_DIR, SCHEMA_DIR

CONTRACT = [
    "roi_id",
    "subject_id",
    "group_id",
    "image_id",
    "model",
    "fold",
    "label",
    "probability",
    "predicted",
    "threshold",
    "predicted_margin",
    "threshold_margin",
]
FAST = {
    "bootstrap_repeats": 100,
    "inner_folds": 3,
    "mask_size": 32,
    "brf_n_estimators": 10,
    "baselines": {"enrichment_ablation": True},
}  # the simulated corpus has an enrichment subset
MODELS = ["bag_of_objects", "mean_std", "mask_brf", "no_enrichment", "fine_class"]
# excluded by the cohort: two ROIs without detected objects, one that failed QC and has no feature row at all
EXCLUDED = {"S005_r0": "no_detected_object", "S011_r1": "no_detected_object", "S017_r0": "failed_qc"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("model_stage")
    t = make_tables(n_subjects=30, rois_per_subject=2, objects_per_roi=6, n_outer=3, seed=2)
    t["cohort"] = cohort_table(
        t["corpus_rois"], t["images"].set_index("image_id")["subject_id"], EXCLUDED, roi_splits(t["assignment"])
    )
    t["rois"] = t["rois"][t["rois"]["roi_id"] != "S017_r0"]
    f = write_tables(t, d)
    masks = d / "masks"
    masks.mkdir()
    rng = np.random.default_rng(0)
    for rid in t["rois"]["roi_id"]:
        fg = (rng.random((20 + len(rid), 30)) > 0.8).astype(np.int32)
        np.savez(masks / f"{rid}.npz", foreground=fg, offset_yx=np.array([0, 0]))
    f["masks"] = masks
    f["dir"] = d
    f["tables"] = t
    return f


@pytest.fixture(scope="module")
def run(files):
    return run_every_job(files, FAST, masks_dir=files["masks"])


def test_predictions_follow_the_contract_and_cover_the_cohort_only(files, run):
    pred, _, _ = run
    assert list(pred.columns) == CONTRACT + stage.MULTICLASS_COLUMNS
    assert set(pred["model"]) == set(MODELS)
    # the multi-class columns survive concatenation: set for fine_class rows, null for the others
    fine = pred["model"] == "fine_class"
    assert pred.loc[fine, stage.MULTICLASS_COLUMNS].notna().all().all()
    assert pred.loc[~fine, stage.MULTICLASS_COLUMNS].isna().all().all()
    assert pred["predicted"].dtype == np.int64 and pred["predicted_margin"].dtype == np.int64
    assert set(pred["fold"]) == {"1", "2", "3", "eval"}
    assert stage.outer_folds(files["assignment"]) == ["1", "2", "3"]
    assert pred["label"].isin([0, 1]).all() and pred["predicted"].isin([0, 1]).all()
    assert (pred["group_id"] == pred["subject_id"]).all()  # the simulated partition has no group_id
    a = pd.read_csv(files["assignment"], sep="\t", dtype=str, keep_default_na=False)
    a = a[(a["level"] == "roi") & ~a["roi_id"].isin(EXCLUDED)]
    fold_of = dict(zip(a["roi_id"], a["outer_fold"]))
    for _model, g in pred.groupby("model"):
        # every included ROI predicted exactly once out of fold, and eval ROIs once by the final model
        cv = g[g["fold"] != "eval"]
        assert sorted(cv["roi_id"]) == sorted(a.loc[a["split"] != "eval", "roi_id"])
        assert sorted(g.loc[g["fold"] == "eval", "roi_id"]) == sorted(a.loc[a["split"] == "eval", "roi_id"])
        assert all(fold_of[r] == f for r, f in zip(cv["roi_id"], cv["fold"]))
    thresholded = pred[~fine]
    assert (thresholded["predicted"] == (thresholded["probability"] >= thresholded["threshold"])).all()
    assert (thresholded["predicted_margin"] == (thresholded["probability"] >= thresholded["threshold_margin"])).all()


def test_search_records_and_enrichment_ablation(run):
    _, searches, _ = run
    rec = searches[("bag_of_objects", "1")]
    assert rec["best_params"]["aggregate__n_clusters"] == 15
    assert len(rec["candidates"]) == 2 and rec["n_inner_folds"] == 3
    assert set(rec["operating_points"]) == {"target", "margin"}
    assert rec["operating_points"]["target"]["sensitivity"] == 1.0  # the exact published target, out of fold
    assert rec["operating_points"]["margin"]["sensitivity"] >= 0.95
    assert "0.95" in rec["operating_point_rules"]["margin"]
    abl = searches[("no_enrichment", "eval")]
    assert abl["enrichment_removed"] > 0
    assert abl["n_train"] == searches[("bag_of_objects", "eval")]["n_train"]
    assert searches[("mask_brf", "1")]["best_params"] == {}
    fine = searches[("fine_class", "eval")]
    assert fine["selection"] == "macro_f1" and "threshold" not in fine
    assert fine["best_params"]["aggregate__n_clusters"] == 15 and len(fine["candidates"]) == 2


def test_models_json_has_the_cohort_counts(run):
    _, _, result = run
    cohort = result["cohort"]
    assert cohort["n_corpus_rois"] == 60 and cohort["n_included"] == 57
    assert cohort["excluded"] == {"failed_qc": 1, "no_detected_object": 2}
    assert sum(cohort["included"]["by_label"].values()) == 57
    assert set(cohort["included"]["by_split"]) == {"train", "eval"}  # the simulated partition has no dev split
    assert sum(cohort["included"]["by_split"].values()) == 57


def test_models_json_writes_the_agreed_keys(files, run):
    _, _, result = run
    on_disk = json.loads((files["dir"] / "models.json").read_text())
    assert on_disk == result
    for name in MODELS:
        entry = on_disk["models"][name]
        for level in ("roi", "image", "breast"):
            for s in ("cv", "eval"):
                block = entry[level][s]
                m = block["metrics"]
                assert set(m) == {"accuracy", "sensitivity", "specificity", "f1", "ppv", "npv", "roc_auc", "pr_auc"}
                assert m["roc_auc"]["ci_low"] <= m["roc_auc"]["value"] <= m["roc_auc"]["ci_high"]
                roc = block["roc"]
                assert roc["fpr"] == pytest.approx(np.linspace(0, 1, 101).tolist())
                for key in ("tpr", "tpr_ci_low", "tpr_ci_high"):
                    assert len(roc[key]) == 101 and np.all(np.diff(roc[key]) >= -1e-12), key
                assert all(
                    lo <= t + 1e-9 and t <= hi + 1e-9
                    for lo, t, hi in zip(*(roc[k] for k in ("tpr_ci_low", "tpr", "tpr_ci_high")))
                )
                assert len(block["pr"]["recall"]) == len(block["pr"]["precision"]) > 0
                points = block["operating_points"]
                assert set(points) == {"target", "margin"}
                for point in points.values():
                    assert {
                        "threshold",
                        "rule",
                        "sensitivity",
                        "specificity",
                        "benign_biopsies_avoided",
                        "confusion",
                    } <= set(point)
                    assert set(point["benign_biopsies_avoided"]) == {"value", "ci_low", "ci_high"}
                    assert set(point["confusion"]) == {"tp", "fp", "tn", "fn"}
                    assert sum(point["confusion"].values()) == block["n"]
                if name != "fine_class":
                    # cv pools folds that chose their own thresholds: listed per fold, no single value
                    assert (points["target"]["threshold"] is None) == (s == "cv")
                    assert (s == "cv") == ("thresholds_by_fold" in points["target"])
        assert set(entry["roi"]["folds"]) == {"1", "2", "3"}
        for fold in entry["roi"]["folds"].values():
            assert set(fold["roc"]) == {"fpr", "tpr"} and len(fold["roc"]["tpr"]) == 101
        assert "threshold_table" in entry["roi"]["eval"] and "net_benefit" in entry["roi"]["eval"]
        assert entry["roi"]["eval"]["benign_biopsies_avoided"]["benign_total"] > 0
    settings = on_disk["settings"]
    assert settings["ci_level"] == 0.95 and settings["target_sensitivity"] == 1.0
    assert settings["margin_sensitivity"] == 0.95 and settings["p_adjustment"] == "holm"
    assert "family" in settings["p_adjustment_family"] or "per set" in settings["p_adjustment_family"]


def test_operating_points_on_eval_match_the_final_models_thresholds(run):
    pred, searches, result = run
    for name in ("bag_of_objects", "mean_std", "mask_brf"):
        points = result["models"][name]["roi"]["eval"]["operating_points"]
        chosen = searches[(name, "eval")]["operating_points"]
        ev = pred[(pred["model"] == name) & (pred["fold"] == "eval")]
        for point, column in (("target", "predicted"), ("margin", "predicted_margin")):
            assert points[point]["threshold"] == pytest.approx(chosen[point]["threshold"])
            y, called = ev["label"].to_numpy(), ev[column].to_numpy()
            assert points[point]["sensitivity"] == pytest.approx(called[y == 1].mean())
            assert points[point]["benign_biopsies_avoided"]["value"] == pytest.approx(1 - called[y == 0].mean())
        # the margin point gives up sensitivity for specificity, never the reverse
        assert points["margin"]["specificity"] >= points["target"]["specificity"]
        assert points["margin"]["sensitivity"] <= points["target"]["sensitivity"]


def test_every_pair_of_models_is_compared_with_clustered_and_naive_tests(run):
    _, _, result = run
    comps = result["comparisons"]
    pairs = {(c["a"], c["b"]) for c in comps}
    assert pairs == {(a, b) for i, a in enumerate(MODELS) for b in MODELS[i + 1 :]}
    for c in comps:
        assert c["level"] in ("roi", "image", "breast") and c["set"] in ("cv", "eval")
        assert c["quote"] == "clustered" and c["n"] > 0 and c["n_subjects"] > 0
        assert set(c["clustered"]) >= {
            "auc_difference",
            "accuracy_difference",
            "sensitivity_difference",
            "specificity_difference",
        }
        assert c["delong"]["assumes_independent_cases"] is True
        assert c["mcnemar"]["assumes_independent_cases"] is True
        for r in [*c["clustered"].values(), c["delong"], c["mcnemar"]]:
            if r.get("p_value") is not None:
                assert r["p_value"] <= r["p_adjusted"] <= 1.0
    # pooled outer folds hold 2+ subjects of each class: Obuchowski applies at every level there
    assert all("obuchowski" in c["clustered"] for c in comps if c["set"] == "cv")


def test_holm_adjusts_within_one_set_level_statistic_and_reference_model(run):
    _, _, result = run
    from calcsig.model.stats import holm

    family = [
        c for c in result["comparisons"] if c["a"] == "bag_of_objects" and c["set"] == "eval" and c["level"] == "roi"
    ]
    assert len(family) == 4  # the main model against each other model
    raw = [c["clustered"]["auc_difference"]["p_value"] for c in family]
    adjusted = [c["clustered"]["auc_difference"]["p_adjusted"] for c in family]
    assert adjusted == pytest.approx(list(holm(raw)))


def test_the_flat_tsv_says_which_test_to_quote(files, run):
    tsv = pd.read_csv(files["dir"] / "models.tsv", sep="\t", keep_default_na=False)
    assert list(tsv.columns) == flat_table.TSV_COLUMNS
    assert flat_table.TSV_COLUMNS[:2] == ["model", "versus"] and flat_table.TSV_COLUMNS[-4:] == [
        "test",
        "p_value",
        "p_adjusted",
        "quote",
    ]
    metrics = tsv[(tsv["versus"] == "") & (tsv["level"] != "roi_multiclass") & ~tsv["metric"].str.contains(":")]
    assert len(metrics) == 5 * 3 * 2 * 8
    points = tsv[tsv["metric"].str.startswith(("target:", "margin:"))]
    assert len(points) == 5 * 3 * 2 * 2 * 4
    tests = tsv[tsv["versus"] != ""]
    assert set(tests["test"]) == {"clustered_bootstrap", "obuchowski", "delong", "mcnemar"}
    assert set(tests.loc[tests["test"].isin(["delong", "mcnemar"]), "quote"]) == {"no"}
    quoted = tests[tests["quote"] == "yes"]
    # one quoted test per comparison and difference: Obuchowski for AUC where it applies
    assert not quoted.duplicated(["model", "versus", "level", "set", "metric"]).any()
    cv_auc = quoted[(quoted["set"] == "cv") & (quoted["metric"] == "auc_difference")]
    assert set(cv_auc["test"]) == {"obuchowski"}
    eval_auc = quoted[(quoted["set"] == "eval") & (quoted["metric"] == "auc_difference")]
    assert len(eval_auc) == len(tests[(tests["set"] == "eval") & (tests["test"] == "delong")])


def test_gather_refuses_duplicates(files, run, tmp_path):
    p = files["dir"] / "predictions.parquet"
    with pytest.raises(ValueError, match="duplicate"):
        stage.gather_predictions([p, p], tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()


def test_unknown_fold_model_and_grid_are_errors(files):
    inputs = {**job_inputs(files), "params": FAST, "out_dir": files["dir"] / "bad"}
    with pytest.raises(ValueError, match="outer fold"):
        stage.run_outer_fold(**inputs, fold="9", model_name="bag_of_objects")
    with pytest.raises(ValueError, match="unknown model"):
        stage.run_outer_fold(**inputs, fold="1", model_name="svm")
    with pytest.raises(ValueError, match="unknown model parameter"):
        stage.resolve_params({"nope": 1})
    with pytest.raises(ValueError, match="margin_sensitivity"):
        stage.resolve_params({"target_sensitivity": 0.9, "margin_sensitivity": 0.95})
    with pytest.raises(FileNotFoundError, match="grid file"):
        stage.run_outer_fold(**{**inputs, "grid": files["dir"] / "none.yaml"}, fold="1", model_name="mean_std")
    assert not (files["dir"] / "bad").exists()


def test_the_grid_comes_from_the_file_the_caller_names(files, tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        yaml.safe_dump({"small": {"mean_std": {"classifier__n_estimators": [7], "classifier__num_leaves": [3]}}})
    )
    paths = stage.run_outer_fold(
        **{**job_inputs(files), "grid": grid},
        params=FAST,
        fold="1",
        model_name="mean_std",
        out_dir=tmp_path / "job",
    )
    record = json.loads(paths["search"].read_text())
    assert record["best_params"] == {"classifier__n_estimators": 7, "classifier__num_leaves": 3}


def test_an_included_roi_without_features_is_an_error_naming_it(files, tmp_path):
    cohort = pd.read_csv(files["cohort"], sep="\t", dtype=str, keep_default_na=False)
    cohort.loc[cohort["roi_id"] == "S017_r0", ["included", "reason"]] = ["true", ""]
    cohort.to_csv(tmp_path / "cohort.tsv", sep="\t", index=False)
    inputs = {**job_inputs(files), "cohort": tmp_path / "cohort.tsv"}
    with pytest.raises(TableError, match="S017_r0 is included in the cohort") as err:
        stage.load_model_data(**{k: inputs[k] for k in ("objects", "rois", "assignment", "images", "cohort")})
    assert "rois.parquet" in str(err.value)


def test_a_bad_cohort_table_is_an_error_naming_the_rows(files, tmp_path):
    cohort = pd.read_csv(files["cohort"], sep="\t", dtype=str, keep_default_na=False)
    cohort.loc[0, "included"] = "maybe"
    cohort.loc[1, ["included", "reason"]] = ["false", ""]
    cohort.loc[2, "label"] = "unknown"
    cohort.to_csv(tmp_path / "cohort.tsv", sep="\t", index=False)
    with pytest.raises(TableError) as err:
        stage.load_model_data(
            **{k: v for k, v in job_inputs(files).items() if k != "grid"} | {"cohort": tmp_path / "cohort.tsv"}
        )
    message = str(err.value)
    assert "cohort.tsv: 3 problem(s)" in message
    assert "row 2" in message and "row 3 (ROI" in message and "excluded without a reason" in message
    assert "included with label 'unknown'" in message


def test_mask_pixels_from_files_mappings_and_callables(files):
    m = np.zeros((4, 6), dtype=np.int32)
    m[0, 0] = 3
    small = resize_nearest(m, 8)
    assert small.shape == (8, 8) and small[0, 0] and small.sum() == 2 * 1  # 8/4 rows x 8/6 cols -> 2 x 1 pixels
    by_map = mask_pixels(["a", "b"], {"a": m, "b": np.ones((3, 3))}, size=8)
    by_call = mask_pixels(["a", "b"], lambda r: m if r == "a" else np.ones((3, 3)), size=8)
    np.testing.assert_array_equal(by_map, by_call)
    assert by_map.shape == (2, 64) and by_map.dtype == np.float32 and by_map[1].sum() == 64
    rid = files["tables"]["rois"]["roi_id"].iloc[0]
    assert mask_pixels([rid], files["masks"], 16).shape == (1, 256)
    with pytest.raises(FileNotFoundError, match="mask of ROI missing"):
        MaskSource(files["masks"]).mask("missing")


def _walk(schema, path="model"):
    yield path, schema
    for key, prop in schema.get("properties", {}).items():
        yield from _walk(prop, f"{path}.{key}")


def test_config_schema_documents_every_key_and_defaults_validate():
    with open(SCHEMA_DIR / "config" / "model.schema.yaml") as fh:
        schema = yaml.safe_load(fh)
    for path, node in list(_walk(schema))[1:]:
        assert "default" in node and "description" in node, path
        if node.get("type") == "object":
            assert node.get("additionalProperties") is False, path
    assert schema["additionalProperties"] is False
    defaults = stage.resolve_params({})
    jsonschema.validate(defaults, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**defaults, "typo": 1}, schema)
    grid = yaml.safe_load((RESOURCE_DIR / "model_grid.yaml").read_text())
    assert defaults["grid"] in grid
    assert stage.model_names({}) == ["bag_of_objects", "mean_std", "mask_brf", "fine_class"]
    assert stage.model_names({"multiclass": False}) == ["bag_of_objects", "mean_std", "mask_brf"]
    assert stage.model_names({"baselines": {"enrichment_ablation": True}, "multiclass": False})[-1] == "no_enrichment"
    assert stage.model_names({"baselines": {"mask_brf": False, "enrichment_ablation": False}, "multiclass": False}) == [
        "bag_of_objects",
        "mean_std",
    ]


def test_global_features_are_numeric_non_qc_columns(files, tmp_path):
    rois = pd.read_parquet(files["rois"])
    rois["hc_note"] = "text"
    rois["qc_nan_features"] = "fg_x=1"
    rois.to_parquet(tmp_path / "rois.parquet", index=False)
    inputs = {k: v for k, v in job_inputs(files).items() if k != "grid"}
    data = stage.load_model_data(**{**inputs, "rois": tmp_path / "rois.parquet"})
    assert "n_objects" in data.global_columns and any(c.startswith("hc_g") for c in data.global_columns)
    assert not any(c.startswith("qc_") for c in data.global_columns) and "hc_note" not in data.global_columns
    assert sum(len(f) for f in data.objects) == files["tables"]["objects"]["roi_id"].isin(data.cases["roi_id"]).sum()
    assert set(data.cases["label"]) == {0, 1}
    with_qc = stage.load_model_data(**inputs, global_prefixes=["n_objects", "qc_"])
    assert with_qc.global_columns == ["n_objects", "qc_n_dropped"]


def test_evaluate_maps_images_from_the_corpus_when_predictions_lack_them(files, run, tmp_path):
    pred, _, result = run
    slim = pred.drop(columns=["image_id"])
    slim.to_parquet(tmp_path / "p.parquet", index=False)
    with pytest.raises(ValueError, match="image_id"):
        stage.evaluate_models(tmp_path / "p.parquet", files["images"], FAST, tmp_path / "m.json", tmp_path / "m.tsv")
    again = stage.evaluate_models(
        tmp_path / "p.parquet",
        files["images"],
        FAST,
        tmp_path / "m.json",
        tmp_path / "m.tsv",
        corpus_rois_tsv=files["corpus_rois"],
    )
    assert again["models"]["bag_of_objects"]["breast"] == result["models"]["bag_of_objects"]["breast"]
    assert "cohort" not in again  # a gathered file has no search records beside it
