"""Every source runs the default target to the report, on tiny inputs made from the micro synthetic corpus.

The synthetic generator writes real images and per-calcification truth; the
tests rewrite them as a user would bring them: CSV manifests (with pixel truth,
with boxes only, with image-level labels only), a folder of compressed DICOMs
with a label table, and the CBIS-DDSM tables without their images.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dicom_files import write_mammogram
from micro_sources import RUN, manifest_rows
from pydicom import uid
from test_workflow import deploy, snakemake

from calcsig.imageio import read_image

pytestmark = pytest.mark.workflow


def run_to_report(workdir: Path, corpus_config: dict) -> Path:
    deploy(workdir, {**RUN, "corpus": corpus_config})
    snakemake(workdir, "--configfile", "tiny.yaml")
    assert (workdir / "results/report/index.html").stat().st_size > 0
    return workdir


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_a_csv_manifest_with_pixel_truth_trains_the_selector_and_fits_the_models(micro_corpus, tmp_path):
    data = tmp_path / "data"
    manifest_rows(micro_corpus, data, truth=True, geometry=True).to_csv(data / "manifest.csv", index=False)
    workdir = run_to_report(tmp_path / "run", {"source": "csv", "path": str(data / "manifest.csv")})
    segmentation = read_json(workdir / "results/metrics/segmentation.json")
    assert segmentation["selector"]["used"] and segmentation["n_truth_objects"] > 0
    assert "tpr_at_0.4_fp_per_cm2" in segmentation and (workdir / "results/segment/selector/train.joblib").exists()
    models = read_json(workdir / "results/metrics/models.json")
    assert (
        models["cohort"]["n_included"] > 0 and "roc_auc" in models["models"]["bag_of_objects"]["roi"]["cv"]["metrics"]
    )


def test_a_csv_manifest_with_boxes_and_no_truth_runs_to_the_report_with_plain_hdog(micro_corpus, tmp_path):
    data = tmp_path / "data"
    manifest_rows(micro_corpus, data, truth=False, geometry=True).to_csv(data / "manifest.csv", index=False)
    workdir = run_to_report(tmp_path / "run", {"source": "csv", "path": str(data / "manifest.csv")})
    segmentation = read_json(workdir / "results/metrics/segmentation.json")
    assert segmentation["selector"]["used"] is False and "nothing to learn from" in segmentation["selector"]["reason"]
    assert not (workdir / "results/segment/selector/train.joblib").exists()
    assert (workdir / "results/metrics/models.json").exists()


def test_a_csv_manifest_with_image_level_labels_only_counts_every_roi_and_leaves_the_models_out(micro_corpus, tmp_path):
    data = tmp_path / "data"
    manifest_rows(micro_corpus, data, truth=False, geometry=False).to_csv(data / "manifest.csv", index=False)
    workdir = run_to_report(tmp_path / "run", {"source": "csv", "path": str(data / "manifest.csv")})
    summary = read_json(workdir / "results/cohort/summary.json")
    assert summary["n_included"] == 0 and summary["excluded"] == {"no_location": summary["n_corpus_rois"]}
    assert (workdir / "results/metrics/segmentation.json").exists()  # images are segmented all the same
    assert not (workdir / "results/metrics/models.json").exists()
    assert "not available because" in (workdir / "results/report/index.html").read_text()


def test_a_dicom_folder_of_compressed_files_runs_to_the_report(micro_corpus, tmp_path):
    archive, data = tmp_path / "archive", tmp_path / "data"
    images = micro_corpus["images"].set_index("image_id")
    syntaxes = [uid.JPEGLSLossless, uid.JPEG2000Lossless, uid.RLELossless, uid.JPEGLosslessSV1]
    files = {}
    for n, (image_id, image) in enumerate(images.iterrows()):
        pixels = read_image(image["path"]).pixels
        files[image_id] = f"{image['subject_id']}/{image_id}.dcm"
        write_mammogram(
            archive / files[image_id],
            pixels.astype(np.uint16),
            syntaxes[n % len(syntaxes)],
            bits_stored=14,
            PatientID=image["subject_id"],
            ImageLaterality=image["laterality"],
            ViewPosition=image["view"],
            PatientAge=f"{int(float(image['age'])):03d}Y",
            PixelSpacing=[image["pixel_spacing_mm"]] * 2,
            SOPInstanceUID=f"1.2.826.0.1.3680043.10.{n + 1}",
        )
    labels = manifest_rows(micro_corpus, data, truth=True, geometry=True)
    labels.insert(0, "file", labels["image_id"].map(files))
    labels = labels.drop(columns=["image_id", "subject_id", "image_path", "pixel_spacing_mm", "laterality", "view"])
    labels = labels.drop(columns=["age", "site"])
    labels.to_csv(data / "labels.csv", index=False)
    workdir = run_to_report(
        tmp_path / "run",
        {"source": "dicom_dir", "path": str(archive), "dicom_dir": {"labels": str(data / "labels.csv")}},
    )
    corpus_images = pd.read_csv(workdir / "results/corpus/images.tsv", sep="\t")
    assert len(corpus_images) == len(images) and (corpus_images["pixel_spacing_mm"] == 0.1).all()
    assert (workdir / "results/metrics/models.json").exists()


def test_cbis_ddsm_tables_without_images_run_to_a_report_that_says_what_is_missing(shared_data, tmp_path):
    workdir = run_to_report(
        tmp_path / "run",
        {"source": "cbis_ddsm", "path": str(shared_data / "cbis-ddsm"), "cbis_ddsm": {"subsets": ["calc"]}},
    )
    summary = read_json(workdir / "results/cohort/summary.json")
    assert summary["n_corpus_rois"] == 1872 and summary["excluded"] == {"no_pixels": 1872}
    assert read_json(workdir / "results/splits/audit.json")["subject_overlap"] == []
    assert not (workdir / "results/segment").exists() and not (workdir / "results/metrics/models.json").exists()
    page = (workdir / "results/report/index.html").read_text()
    assert "not available because" in page and "metadata" in page
