"""The workflow on the real development data (../shared/data), skipped when it is absent."""

import json

import pandas as pd
import pytest
from test_workflow import deploy, snakemake

pytestmark = pytest.mark.workflow


def test_mini_mias_is_segmented_and_scored_against_its_cluster_annotations(mini_mias_run):
    workdir = mini_mias_run
    images = pd.read_csv(workdir / "results/corpus/images.tsv", sep="\t")
    assert len(images) == 104 and images["subject_id"].nunique() == 52
    manifests = sorted((workdir / "results/segment/batches").glob("*.tsv"))
    segmented = pd.concat([pd.read_csv(m, sep="\t") for m in manifests])
    assert sorted(segmented["image_id"]) == sorted(images["image_id"])
    metrics = json.loads((workdir / "results/metrics/segmentation.json").read_text())
    # 0.2 mm films are detected upsampled to 0.1 mm, and the evaluation says so
    assert metrics["spacing"]["resampled"] and metrics["spacing"]["working_spacing_mm"] == 0.1
    # the operating point was chosen for a cluster sensitivity on the train split's out-of-fold scores
    chosen = metrics["operating_point"]
    assert chosen["chosen_on"] == "train split out-of-fold scores" and chosen["target_cluster_sensitivity"] == 0.9
    # the cluster FROC holds the operating point, and its numbers are the ones reported
    froc = metrics["cluster_froc"]
    at = froc["threshold"].index(chosen["threshold"])
    assert froc["cluster_sensitivity"][at] == metrics["cluster_sensitivity"]
    assert froc["false_clusters_per_normal_image"][at] == metrics["false_clusters_per_normal_image"]
    plain = metrics["plain_hdog"]["cluster_froc"]
    assert plain["cluster_sensitivity"][-1] == metrics["plain_hdog"]["cluster_sensitivity"]
    # the held-out normal films with inserted clusters give a pixel-level FROC on real parenchyma
    inserted = metrics["lesion_insertion"]
    assert inserted["n_images"] == metrics["n_normal_images"] and inserted["n_clusters"] > inserted["n_images"]
    assert inserted["plain_hdog"]["n_truth_objects"] > 100 and "froc" in inserted["selector"]


def test_mini_mias_runs_to_the_report_with_a_calcification_cohort_and_its_flow(mini_mias_run):
    summary = json.loads((mini_mias_run / "results/cohort/summary.json").read_text())
    # 41 annotated ROIs: one without a location, 22 masses and other findings, the rest calcifications
    assert summary["n_corpus_rois"] == 41
    assert summary["excluded"]["no_location"] == 1 and summary["excluded"]["abnormality_not_selected"] == 22
    # mdb212's annotation lies outside the breast: recorded, not scored
    qc = summary["excluded"].get("failed_qc", 0)
    assert qc >= 1 and summary["n_included"] == 41 - 1 - 22 - qc
    cohort = pd.read_csv(mini_mias_run / "results/cohort/rois.tsv", sep="\t").set_index("roi_id")
    assert cohort.at["mdb212_1", "reason"] == "failed_qc"
    predictions = pd.read_parquet(mini_mias_run / "results/model/predictions.parquet")
    included = set(cohort.index[cohort["included"].astype(bool)])
    assert set(predictions["roi_id"]) == included
    # the report's cohort flow counts the quality gate's exclusions and names them
    page = (mini_mias_run / "results/report/index.html").read_text()
    assert f"failed quality control: {qc}" in page and "mdb212_1" in page


def test_cbis_ddsm_official_split_is_honoured_and_audited_without_images(tmp_path, shared_data):
    workdir = deploy(
        tmp_path / "cbis",
        {
            "corpus": {"source": "cbis_ddsm", "path": str(shared_data / "cbis-ddsm")},
            "partition": {"use_given_split": True},
        },
    )
    snakemake(workdir, "results/splits/audit.json", "--configfile", "tiny.yaml")
    rois = pd.read_csv(workdir / "results/corpus/rois.tsv", sep="\t")
    assert len(rois) == 1872
    assignment = pd.read_csv(workdir / "results/splits/assignment.tsv", sep="\t", dtype=str)
    images = pd.read_csv(workdir / "results/corpus/images.tsv", sep="\t", dtype=str).set_index("image_id")
    image_rows = assignment[assignment["level"] == "image"]
    given = image_rows["image_id"].map(images["given_split"])
    assert (image_rows.loc[given == "test", "split"] == "eval").all()
    assert set(image_rows.loc[given == "train", "split"]) == {"train", "dev"}
    audit = json.loads((workdir / "results/splits/audit.json").read_text())
    assert audit["subject_overlap"] == []
