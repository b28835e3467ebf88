"""The workflow end to end on a tiny synthetic config, in a fresh working directory."""

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from calcsig.report import strip_volatile

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run snakemake on the repository's Snakefile in `workdir`, as a user would."""
    result = subprocess.run(
        [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--cores", "2", *args],
        capture_output=True,
        text=True,
        cwd=workdir,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")
    return result


def deploy(workdir: Path, overrides: dict) -> Path:
    """A working directory holding config.yaml and a partial override config."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(overrides))
    return workdir


TINY = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())

# Outputs a person or a later stage reads; the same config and seed must give the same bytes.
REPRODUCIBLE = [
    "results/corpus/images.tsv",
    "results/corpus/rois.tsv",
    "results/corpus/subjects.tsv",
    "results/splits/assignment.tsv",
    "results/splits/balance.tsv",
    "results/splits/audit.json",
    "results/metrics/segmentation.json",
    "results/features/objects.parquet",
    "results/features/rois.parquet",
    "results/model/predictions.parquet",
    "results/metrics/models.json",
    "results/report/index.html",
]


def digest(workdir: Path, outputs) -> dict:
    """SHA-256 of each output (relative to `workdir`), keyed by its relative path; HTML pages without their
    volatile block (run date, per-rule timings), which differs between runs by nature."""

    def content(path: Path) -> bytes:
        if path.suffix == ".html":
            return strip_volatile(path.read_text(encoding="utf-8")).encode()
        return path.read_bytes()

    return {o: hashlib.sha256(content(workdir / o)).hexdigest() for o in outputs}


def jobs_planned(dry_run_output: str) -> set[str]:
    """Rule names in the job-stats table of a dry run."""
    lines = dry_run_output.split("Job stats:")[1].splitlines()[3:] if "Job stats:" in dry_run_output else []
    names = set()
    for line in lines:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        names.add(parts[0])
    return names - {"total", "all"}


@pytest.fixture(scope="module")
def tiny_runs(finished_tiny_run, tmp_path_factory):
    """The whole workflow on the tiny config, twice, in two fresh working directories."""
    second = deploy(tmp_path_factory.mktemp("tiny") / "second", TINY)
    snakemake(second, "--configfile", "tiny.yaml")
    return [finished_tiny_run, second]


def test_every_stage_runs_end_to_end_on_a_tiny_corpus(tiny_runs):
    workdir = tiny_runs[0]
    for output in REPRODUCIBLE:
        assert (workdir / output).stat().st_size > 0, output
    rois = pd.read_csv(workdir / "results/corpus/rois.tsv", sep="\t")
    assert set(rois["label"]) == {"benign", "actionable"}
    predictions = pd.read_parquet(workdir / "results/model/predictions.parquet")
    assert set(predictions["fold"]) == {"1", "2", "eval"}
    assert predictions["probability"].between(0, 1).all()
    report = (workdir / "results/report/index.html").read_text()
    assert '<img alt="Detection gallery" src="data:image/png;base64,' in report
    assert '<img alt="Worst cases" src="data:image/png;base64,' in report
    assert not re.search(r'(src|href)="(?!#|data:)', report)  # nothing loaded from elsewhere


def test_the_same_config_and_seed_give_the_same_outputs(tiny_runs):
    first, second = tiny_runs
    assert digest(first, REPRODUCIBLE) == digest(second, REPRODUCIBLE)
    pngs = sorted(str(p.relative_to(first)) for p in (first / "results/corpus/synthetic").rglob("*.png"))
    assert pngs and digest(first, pngs) == digest(second, pngs)


def test_a_finished_run_has_nothing_left_to_do(tiny_runs):
    # every key's rerun scope is checked in test_reruns.py
    assert jobs_planned(snakemake(tiny_runs[0], "--configfile", "tiny.yaml", "-n").stdout) == set()


def test_segmentation_json_records_the_operating_point_and_spacing_it_used(tiny_runs):
    metrics = json.loads((tiny_runs[0] / "results/metrics/segmentation.json").read_text())
    chosen = json.loads((tiny_runs[0] / "results/segment/selector/train.json").read_text())
    assert metrics["operating_point"]["threshold"] == chosen["threshold"]
    assert metrics["operating_point"]["chosen_on"] == "train split out-of-fold scores"
    assert "target_sensitivity" in metrics["operating_point"]  # pixel truth, no cluster annotations
    assert metrics["spacing"]["resampled"] is False  # the synthetic corpus is at 0.1 mm


def test_a_bad_config_stops_before_anything_runs_naming_the_key(tmp_path):
    workdir = deploy(tmp_path / "bad", {"corpus": {"sourse": "synthetic"}})
    result = snakemake(workdir, "--configfile", "tiny.yaml", "-n", check=False)
    assert result.returncode != 0
    assert "config key 'corpus.sourse': unknown key" in result.stderr + result.stdout
    assert not (workdir / "results").exists()


def test_the_dry_run_shows_the_dag_and_lint_is_clean(tmp_path):
    workdir = deploy(tmp_path / "dry", TINY)
    dry = snakemake(workdir, "--configfile", "tiny.yaml", "-n")
    assert "corpus" in dry.stdout
    lint = subprocess.run(
        [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--lint"], capture_output=True, text=True, cwd=workdir
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Lints for" not in lint.stdout + lint.stderr, lint.stdout + lint.stderr


def test_the_audit_finds_exactly_the_overlap_and_duplicates_the_generator_planted(tmp_path):
    extras = yaml.safe_load(yaml.safe_dump(TINY))
    extras["corpus"]["synthetic"].update(
        {"enrichment": {"enabled": True, "n_subjects": 6}, "duplicates": {"enabled": True, "n_exact": 2, "n_near": 2}}
    )
    extras["partition"]["audit_policy"] = "warn"
    workdir = deploy(tmp_path / "planted", extras)
    snakemake(workdir, "results/splits/audit.json", "--configfile", "tiny.yaml")
    planted = json.loads((workdir / "results/corpus/synthetic/planted.json").read_text())
    audit = json.loads((workdir / "results/splits/audit.json").read_text())
    assignment = pd.read_csv(workdir / "results/splits/assignment.tsv", sep="\t", dtype=str)
    subject_split = assignment[assignment["level"] == "subject"].set_index("subject_id")["split"]

    # enrichment images are forced into train: a planted subject overlaps when the rest of it is held out
    expected_overlap = {s for s in planted["enrichment_subjects"] if subject_split[s] != "train"}
    assert expected_overlap and planted["exact_duplicates"] and planted["near_duplicates"]  # something to find
    assert {e["subject_id"] for e in audit["subject_overlap"]} == expected_overlap
    assert all(e["declared"] for e in audit["subject_overlap"])

    def pairs(entries):
        return {frozenset(e["image_ids"]) for e in entries}

    assert pairs(audit["exact_duplicates"]) == {frozenset(p) for p in planted["exact_duplicates"]}
    assert pairs(audit["near_duplicates"]) == {frozenset(p) for p in planted["near_duplicates"]}
    assert audit["label_conflicts"] == []


def test_without_planted_extras_the_audit_finds_nothing(tiny_runs):
    audit = json.loads((tiny_runs[0] / "results/splits/audit.json").read_text())
    for finding in ("subject_overlap", "exact_duplicates", "near_duplicates", "label_conflicts"):
        assert audit[finding] == [], finding


def test_outer_fold_selectors_segment_each_roi_with_a_selector_that_never_saw_its_image(tiny_runs, tmp_path):
    workdir = tmp_path / "outer"
    shutil.copytree(tiny_runs[0], workdir, copy_function=shutil.copy2, symlinks=True)
    (workdir / "outer.yaml").write_text(yaml.safe_dump({"segment": {"selector_scope": "outer_fold"}}))
    planned = jobs_planned(snakemake(workdir, "--configfile", "tiny.yaml", "outer.yaml", "-n").stdout)
    # the HDoG candidates and the held-out evaluation are shared; selectors, masks and what follows are not
    assert {"train_selector", "masks", "features", "model_fold"} <= planned
    assert planned.isdisjoint({"corpus", "partition", "segment", "evaluate_segmentation"})
    snakemake(workdir, "results/features/rois.parquet", "--configfile", "tiny.yaml", "outer.yaml")
    assignment = pd.read_csv(workdir / "results/splits/assignment.tsv", sep="\t", dtype=str, keep_default_na=False)
    rois = assignment[assignment["level"] == "roi"].set_index("roi_id")
    manifests = pd.concat(
        [pd.read_csv(m, sep="\t", dtype=str) for m in sorted((workdir / "results/masks/batches").glob("*.tsv"))]
    ).set_index("roi_id")
    for roi_id, row in manifests.iterrows():
        split, fold = rois.at[roi_id, "split"], rois.at[roi_id, "outer_fold"]
        assert row["selector_scope"] == (f"outer{fold}" if split in ("train", "dev") else "outer_eval"), roi_id
    images = assignment[assignment["level"] == "image"]
    for fold in ("1", "2"):
        chosen = json.loads((workdir / f"results/segment/selector/outer{fold}.json").read_text())
        trained_on = images[images["split"].isin(["train", "dev"]) & (images["outer_fold"] != fold)]
        assert chosen["n_images"] == len(trained_on) and "outside outer fold " + fold in chosen["chosen_on"]
