"""External cohort through the model stage: predicted once by the final models, never fitted, evaluated as a set."""

import model_tables
import pandas as pd
import pytest
from model_stage_runs import run_every_job

from calcsig.model import stage

FAST = {
    "bootstrap_repeats": 50,
    "inner_folds": 3,
    "baselines": {"mean_std": False, "mask_brf": False, "enrichment_ablation": True},
    "multiclass": False,
}
MODELS = ["bag_of_objects", "no_enrichment"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Simulated stage inputs where three subjects of each label left train+dev for an external cohort."""
    d = tmp_path_factory.mktemp("model_external")
    t = model_tables.make_tables(n_subjects=36, rois_per_subject=2, objects_per_roi=6, n_outer=3, seed=4)
    a, rois = t["assignment"], t["corpus_rois"]
    actionable = set(
        rois.loc[rois["label"] == "actionable", "image_id"].map(t["images"].set_index("image_id")["subject_id"])
    )
    dev = a[(a["level"] == "subject") & (a["split"] == "train")]["subject_id"]
    external = [s for s in dev if s in actionable][:3] + [s for s in dev if s not in actionable][:3]
    ext = a["subject_id"].isin(external)
    a.loc[ext, "split"], a.loc[ext, "outer_fold"] = "external", ""
    f = model_tables.write_tables(t, d)
    f["dir"], f["external_rois"] = d, set(a.loc[ext & (a["level"] == "roi"), "roi_id"])
    return f


@pytest.fixture(scope="module")
def run(files):
    return run_every_job(files, FAST)


def test_external_rois_are_predicted_once_by_the_final_model_only(files, run):
    pred, searches, _ = run
    assert stage.model_names(FAST) == MODELS
    assert stage.outer_folds(files["assignment"]) == ["1", "2", "3"]
    for _, g in pred.groupby("model"):
        assert sorted(g.loc[g["fold"] == "external", "roi_id"]) == sorted(files["external_rois"])
        # no outer fold and no eval row carries an external ROI
        assert not set(g.loc[g["fold"] != "external", "roi_id"]) & files["external_rois"]
    for model in MODELS:
        final = pd.read_parquet(files["dir"] / model / "eval" / "predictions.parquet")
        assert set(final["fold"]) == {"eval", "external"}
        assert searches[(model, "eval")]["n_external"] == len(files["external_rois"])
        for fold in ("1", "2", "3"):
            outer = pd.read_parquet(files["dir"] / model / fold / "predictions.parquet")
            assert set(outer["fold"]) == {fold} and "n_external" not in searches[(model, fold)]
    # the training sets never hold an external ROI: their sizes add up without them
    a = pd.read_csv(files["assignment"], sep="\t", dtype=str, keep_default_na=False)
    n_dev = int(((a["level"] == "roi") & a["split"].isin(["train", "dev"])).sum())
    assert searches[("bag_of_objects", "eval")]["n_train"] == n_dev


def test_evaluate_reports_an_external_set_and_the_ablation_on_it(files, run):
    _, _, result = run
    for name in MODELS:
        entry = result["models"][name]
        for level in ("roi", "image", "breast"):
            assert set(entry[level]) - {"folds"} == {"cv", "eval", "external"}
            m = entry[level]["external"]["metrics"]
            assert m["sensitivity"]["ci_low"] <= m["sensitivity"]["value"] <= m["sensitivity"]["ci_high"]
        assert entry["roi"]["external"]["n"] == len(files["external_rois"])
        assert set(entry["roi"]["folds"]) == {"1", "2", "3"}
        assert set(entry["by_fine_class"]) == {"cv", "eval", "external"}
    ablation = [c for c in result["comparisons"] if c["b"] == "no_enrichment" and c["set"] == "external"]
    assert {c["level"] for c in ablation} == {"roi", "image", "breast"}
    roi = next(c for c in ablation if c["level"] == "roi")
    assert roi["n"] == len(files["external_rois"]) and "mcnemar" in roi
    tsv = pd.read_csv(files["dir"] / "models.tsv", sep="\t")
    assert set(tsv["set"]) == {"cv", "eval", "external"}
    external = tsv[tsv["set"] == "external"]
    metrics = external[external["versus"].isna() & ~external["metric"].str.contains(":")]
    assert len(metrics) == len(MODELS) * 3 * 8
    # both operating points on the external cohort, four figures each
    assert len(external[external["metric"].str.startswith(("target:", "margin:"))]) == len(MODELS) * 3 * 2 * 4
    for level in ("roi", "image", "breast"):
        assert set(result["models"]["bag_of_objects"][level]["external"]["operating_points"]) == {"target", "margin"}
