"""Stage entry points end to end on small simulated files; the config schema."""

import json

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml
from model_stage_runs import run_every_job

from calcsig.model import simulate, stage
from calcsig.model.baselines import MaskPixels, MaskSource, resize_nearest
from calcsig.paths import RESOURCE_DIR, SCHEMA_DIR

CONTRACT = ["roi_id", "subject_id", "model", "fold", "label", "probability", "predicted"]
FAST = {
    "bootstrap_repeats": 100,
    "inner_folds": 3,
    "mask_size": 32,
    "brf_n_estimators": 10,
    "baselines": {"enrichment_ablation": True},
}  # the simulated corpus has an enrichment subset


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("model_stage")
    t = simulate.make_tables(n_subjects=30, rois_per_subject=2, objects_per_roi=6, n_outer=3, seed=2)
    f = simulate.write_tables(t, d)
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


def test_predictions_follow_the_contract(files, run):
    pred, _, _ = run
    assert set(CONTRACT) <= set(pred.columns)
    assert set(pred["model"]) == {"bag_of_objects", "mean_std", "mask_brf", "no_enrichment", "fine_class"}
    # the multi-class columns survive concatenation: set for fine_class rows, null for the others
    fine = pred["model"] == "fine_class"
    assert pred.loc[fine, stage.MULTICLASS_COLUMNS].notna().all().all()
    assert pred.loc[~fine, stage.MULTICLASS_COLUMNS].isna().all().all()
    assert pred["predicted"].dtype == np.int64
    assert set(pred["fold"]) == {"1", "2", "3", "eval"}
    assert stage.outer_folds(files["assignment"]) == ["1", "2", "3"]
    assert pred["label"].isin([0, 1]).all() and pred["predicted"].isin([0, 1]).all()
    assert pred["probability"].between(0, 1).all()
    a = pd.read_csv(files["assignment"], sep="\t", dtype=str, keep_default_na=False)
    a = a[a["level"] == "roi"]
    for _model, g in pred.groupby("model"):
        # every ROI predicted exactly once out of fold, and eval ROIs once by the final model
        cv = g[g["fold"] != "eval"]
        assert sorted(cv["roi_id"]) == sorted(a.loc[a["split"] != "eval", "roi_id"])
        assert sorted(g.loc[g["fold"] == "eval", "roi_id"]) == sorted(a.loc[a["split"] == "eval", "roi_id"])
        fold_of = dict(zip(a["roi_id"], a["outer_fold"]))
        assert all(fold_of[r] == f for r, f in zip(cv["roi_id"], cv["fold"]))


def test_search_records_and_enrichment_ablation(run):
    _, searches, _ = run
    rec = searches[("bag_of_objects", "1")]
    assert rec["best_params"]["aggregate__n_clusters"] == 15
    assert len(rec["candidates"]) == 2 and rec["n_inner_folds"] == 3
    abl = searches[("no_enrichment", "eval")]
    assert abl["enrichment_removed"] > 0
    assert abl["n_train"] == searches[("bag_of_objects", "eval")]["n_train"]
    assert searches[("mask_brf", "1")]["best_params"] == {}
    fine = searches[("fine_class", "eval")]
    assert fine["selection"] == "macro_f1" and "threshold" not in fine
    assert fine["best_params"]["aggregate__n_clusters"] == 15 and len(fine["candidates"]) == 2


def test_models_json_metrics_and_comparisons(files, run):
    _, _, result = run
    on_disk = json.loads((files["dir"] / "models.json").read_text())
    assert on_disk == json.loads(json.dumps(result))
    for entry in on_disk["models"].values():
        for level in ("roi", "image", "breast"):
            for s in ("cv", "eval"):
                m = entry[level][s]["metrics"]
                assert set(m) == {"accuracy", "sensitivity", "specificity", "f1", "ppv", "npv", "roc_auc", "pr_auc"}
                assert m["roc_auc"]["ci_low"] <= m["roc_auc"]["value"] <= m["roc_auc"]["ci_high"]
        assert set(entry["roi"]["folds"]) == {"1", "2", "3"}
        assert "threshold_table" in entry["roi"]["eval"] and "net_benefit" in entry["roi"]["eval"]
        assert entry["roi"]["eval"]["benign_biopsies_avoided"]["benign_total"] > 0
    comps = on_disk["comparisons"]
    pairs = {(c["b"], c["level"], c["set"]) for c in comps}
    for other in ("mean_std", "mask_brf", "no_enrichment", "fine_class"):
        for level in ("roi", "image", "breast"):
            assert (other, level, "eval") in pairs and (other, level, "cv") in pairs
    roi_eval = [c for c in comps if c["level"] == "roi" and c["set"] == "eval"]
    assert all(c["a"] == "bag_of_objects" and "delong" in c and "mcnemar" in c for c in roi_eval)
    tsv = pd.read_csv(files["dir"] / "models.tsv", sep="\t")
    assert list(tsv.columns) == ["model", "level", "set", "metric", "value", "ci_low", "ci_high"]
    binary = tsv[tsv["level"] != "roi_multiclass"]
    assert len(binary) == 5 * 3 * 2 * 8
    assert "multiclass" not in on_disk["models"]["bag_of_objects"]
    mc = on_disk["models"]["fine_class"]["multiclass"]
    assert set(mc) == {"cv", "eval"}
    for s, block in mc.items():
        k = len(block["labels"])
        assert np.array(block["confusion"]).shape == (k, k)
        assert sum(map(sum, block["confusion"])) == block["n"] == sum(c["support"] for c in block["per_class"].values())
        assert set(block["macro"]) == {"precision", "recall", "f1"}
        rows = tsv[(tsv["level"] == "roi_multiclass") & (tsv["set"] == s)]
        assert (rows["model"] == "fine_class").all() and len(rows) == 4 + 3 * k
        f1 = rows.set_index("metric").loc["macro_f1"]
        assert f1["value"] == pytest.approx(block["macro"]["f1"]["value"])


def test_gather_refuses_duplicates(files, run, tmp_path):
    p = files["dir"] / "predictions.parquet"
    with pytest.raises(ValueError, match="duplicate"):
        stage.gather_predictions([p, p], tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()


def test_unknown_fold_and_model_are_errors(files):
    args = (files["objects"], files["rois"], files["corpus_rois"], files["images"], files["assignment"], FAST)
    with pytest.raises(ValueError, match="outer fold"):
        stage.run_outer_fold(*args, "9", "bag_of_objects", files["dir"] / "bad")
    with pytest.raises(ValueError, match="unknown model"):
        stage.run_outer_fold(*args, "1", "svm", files["dir"] / "bad")
    with pytest.raises(ValueError, match="unknown model parameter"):
        stage.resolve_params({"nope": 1})


def test_mask_pixels_from_files_mappings_and_callables(files):
    m = np.zeros((4, 6), dtype=np.int32)
    m[0, 0] = 3
    small = resize_nearest(m, 8)
    assert small.shape == (8, 8) and small[0, 0] and small.sum() == 2 * 1  # 8/4 rows x 8/6 cols -> 2 x 1 pixels
    X = pd.DataFrame({"roi_id": ["a", "b"]})
    by_map = MaskPixels(masks={"a": m, "b": np.ones((3, 3))}, size=8).fit(X).transform(X)
    by_call = MaskPixels(masks=lambda r: m if r == "a" else np.ones((3, 3)), size=8).fit(X).transform(X)
    np.testing.assert_array_equal(by_map, by_call)
    assert by_map.shape == (2, 64) and by_map[1].sum() == 64
    rid = files["tables"]["rois"]["roi_id"].iloc[0]
    flat = MaskSource(files["masks"], 16).flat(rid)
    assert flat.shape == (256,)
    with pytest.raises(FileNotFoundError):
        MaskSource(files["masks"], 16).flat("missing")


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
    cases, objects, _, globals_ = stage.load_model_data(
        files["objects"], tmp_path / "rois.parquet", files["corpus_rois"], files["images"], files["assignment"]
    )
    assert "n_objects" in globals_ and any(c.startswith("hc_g") for c in globals_)
    assert not any(c.startswith("qc_") for c in globals_) and "hc_note" not in globals_
    assert len(objects) == len(files["tables"]["objects"])
    assert set(cases["label"]) == {0, 1}
    _, _, _, with_qc = stage.load_model_data(
        files["objects"],
        files["rois"],
        files["corpus_rois"],
        files["images"],
        files["assignment"],
        global_prefixes=["n_objects", "qc_"],
    )
    assert with_qc == ["n_objects", "qc_n_dropped"]


def test_evaluate_maps_images_from_the_corpus_when_predictions_lack_them(files, run, tmp_path):
    pred, _, result = run
    slim = pred[CONTRACT]
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
