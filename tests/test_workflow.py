"""The workflow end to end on a tiny synthetic config, in a fresh working directory."""

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run snakemake on the repository's Snakefile in `workdir`, as a user would."""
    result = subprocess.run(
        [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2", *args],
        capture_output=True, text=True,
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


TINY = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text()) if (REPO / "tests" / "data" / "tiny.yaml").exists() else {}


def digest(paths) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_the_corpus_tables_are_built_and_reproducible(tmp_path):
    first = deploy(tmp_path / "first", TINY)
    second = deploy(tmp_path / "second", TINY)
    for workdir in (first, second):
        snakemake(workdir, "--configfile", "tiny.yaml", "results/corpus/images.tsv")
    tables = sorted((first / "results" / "corpus").glob("*.tsv"))
    assert [t.name for t in tables] == ["images.tsv", "rois.tsv", "subjects.tsv"]
    images = pd.read_csv(first / "results/corpus/images.tsv", sep="\t")
    rois = pd.read_csv(first / "results/corpus/rois.tsv", sep="\t")
    assert len(images) > 0 and len(rois) > 0
    assert set(rois["label"]) <= {"benign", "actionable"}
    assert digest(tables) == digest(sorted((second / "results" / "corpus").glob("*.tsv")))
    pngs = sorted((first / "results/corpus/synthetic/images").glob("*.png"))
    assert digest(pngs) == digest(sorted((second / "results/corpus/synthetic/images").glob("*.png")))


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
    lint = subprocess.run([*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--lint"],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Lints for" not in lint.stdout + lint.stderr, lint.stdout + lint.stderr
