"""Changes to the source data rerun exactly what they touch, and the results equal a clean run of the new data.

On a CSV manifest made from the micro synthetic corpus: adding one image reruns
only the batch jobs that hold it (and the stages that gather everything);
editing a label or replacing an image file after ingest is noticed (the corpus
depends on every file it is read from) and the results match a clean run.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from micro_sources import RUN, manifest_rows
from PIL import Image
from test_resume import assert_same_results
from test_workflow import deploy, snakemake

pytestmark = pytest.mark.workflow

# Given splits, so adding a subject does not reshuffle the others; no selector, so the masks of an
# image depend on its own segmentation only (with one, a retrained selector reruns every masks job,
# though each unchanged ROI is reused, not recomputed).
CONFIG = {**RUN, "segment": {"use_selector": False}, "partition": {**RUN["partition"], "split_file": "splits.tsv"}}
PER_ITEM_RULES = ("segment", "masks", "features")


def executed_jobs(output: str) -> Counter:
    """Jobs a snakemake run finished, by rule (from its console output)."""
    return Counter(re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", output))


def deploy_csv(workdir: Path, rows: pd.DataFrame, splits: pd.DataFrame) -> Path:
    deploy(workdir, {**CONFIG, "corpus": {"source": "csv", "path": "data/manifest.csv"}})
    rows.to_csv(workdir / "data" / "manifest.csv", index=False)
    splits.to_csv(workdir / "splits.tsv", sep="\t", index=False)
    return workdir


@pytest.fixture(scope="module")
def manifest(micro_corpus, tmp_path_factory):
    """The full manifest (images under data/), a split for every subject, and the image held back at first."""
    data = tmp_path_factory.mktemp("incremental") / "data"
    rows = manifest_rows(micro_corpus, data, truth=True, geometry=True)
    subjects = sorted(rows["subject_id"].unique())
    splits = pd.DataFrame(
        {"subject_id": subjects, "split": ["eval" if i % 4 == 3 else "train" for i in range(len(subjects))]}
    )
    held_back = rows.loc[rows["subject_id"] == subjects[3], "image_id"].iloc[0]  # an eval subject's image
    return data, rows, splits, held_back


def replace_with_mirror(source: Path, target: Path) -> None:
    """Write `source`'s image, mirrored left to right, over `target` (a PNG)."""
    with Image.open(source) as image:
        mirrored = np.asarray(image)[:, ::-1]
    Image.fromarray(np.ascontiguousarray(mirrored)).save(target)


def workdir_with_data(tmp_path: Path, data: Path) -> Path:
    workdir = tmp_path / "run"
    shutil.copytree(data, workdir / "data")
    return workdir


def test_adding_one_image_reruns_only_the_batches_that_hold_it(manifest, tmp_path):
    data, rows, splits, held_back = manifest
    workdir = deploy_csv(workdir_with_data(tmp_path, data), rows[rows["image_id"] != held_back], splits)
    snakemake(workdir, "--configfile", "tiny.yaml")
    rows.to_csv(workdir / "data" / "manifest.csv", index=False)
    run = snakemake(workdir, "--configfile", "tiny.yaml")
    jobs = executed_jobs(run.stdout + run.stderr)
    assert jobs["corpus"] == 1 and jobs["segment"] == 1, jobs
    added_rois = rows.loc[rows["image_id"] == held_back, "roi_id"]
    assert 1 <= jobs["masks"] <= 2 * len(added_rois) and jobs["masks"] == jobs["features"], jobs
    batches = {p.stem for p in (workdir / "results/segment/batches").glob("*.tsv")}
    assert jobs["segment"] < len(batches)  # the other images' batches did not run


def test_an_edited_label_and_a_replaced_image_are_noticed_and_end_as_a_clean_run(manifest, micro_corpus, tmp_path):
    data, rows, splits, _ = manifest
    workdir = deploy_csv(workdir_with_data(tmp_path, data), rows, splits)
    snakemake(workdir, "--configfile", "tiny.yaml")

    # after ingest: one ROI's label flipped in the manifest, and one image file replaced by another
    # image, mirrored (an exact copy would rightly stop the run: the audit finds the duplicate)
    edited = rows.copy()
    flipped = edited.index[edited["roi_id"] != ""][0]
    edited.loc[flipped, "label"] = {"benign": "actionable", "actionable": "benign"}[edited.loc[flipped, "label"]]
    first, second = sorted(edited["image_path"].unique())[:2]
    edited.to_csv(workdir / "data" / "manifest.csv", index=False)
    replace_with_mirror(workdir / "data" / second, workdir / "data" / first)
    snakemake(workdir, "--configfile", "tiny.yaml")
    corpus_rois = pd.read_csv(workdir / "results/corpus/rois.tsv", sep="\t", keep_default_na=False).set_index("roi_id")
    assert corpus_rois.at[edited.loc[flipped, "roi_id"], "label"] == edited.loc[flipped, "label"]

    clean = deploy_csv(workdir_with_data(tmp_path / "clean", data), edited, splits)
    replace_with_mirror(clean / "data" / second, clean / "data" / first)
    snakemake(clean, "--configfile", "tiny.yaml")
    assert_same_results(workdir, clean)
