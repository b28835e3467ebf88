"""How calcsig scales: cores on one machine, cluster jobs for a large corpus, and a cluster-size estimate.

Three measurements, written to BENCHMARKS.md under "## Scaling":

1. ``--cores``: the default run (the embedded synthetic corpus) from scratch with
   ``--cores 1`` and with ``--cores 2``, one after the other in fresh working
   directories on an otherwise idle machine; the speed-up is their ratio.
2. Cluster jobs for a corpus of about 1,000 images: a synthetic corpus of small
   films (the number of jobs depends on the number of images and ROIs, not on
   their size) is ingested and partitioned, then the SLURM profile's dry run
   gives the jobs per rule, with the default batches and with the cluster
   batches README suggests; local rules excluded.
3. On paper: 10,000 full-field films (3328 x 2560 px at 0.07 mm) on a 512-core
   cluster, from the measured per-rule costs (``workflow/resources.yaml``, in
   seconds per megapixel of work) and a per-job overhead (``--job-overhead-s``,
   measured on the test cluster).

    python benchmarks/scale.py [--cores] [--job-overhead-s 12]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
FULL_FIELD_MEGAPIXELS = 3328 * 2560 / 1e6
# about 1.84 images per synthetic subject (two views of most breasts): 545 subjects give about 1,000 images
LARGE_CORPUS = {"n_subjects": 545, "image_height_mm": 40.0, "image_width_mm": 32.0}
PER_ITEM_RULES = ("segment", "insert_lesions", "masks", "features")
BATCHES = {
    "default batches (16 images, 32 ROIs)": {"images_per_job": 16, "rois_per_job": 32},
    "cluster batches (64 images, 128 ROIs)": {"images_per_job": 64, "rois_per_job": 128},
}
# whole-corpus rules that read images (or their candidates): their work grows with megapixels
IMAGE_RULES = (
    "corpus",
    "check_corpus",
    "partition",
    "audit",
    "train_selector",
    "evaluate_segmentation",
    "lesion_insertion",
)


def deploy(workdir: Path, overrides: dict) -> Path:
    workdir.mkdir(parents=True)
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    (workdir / "bench.yaml").write_text(yaml.safe_dump(overrides))
    return workdir


def snakemake(workdir: Path, *args: str, configfiles=("bench.yaml",), env: dict | None = None) -> str:
    result = subprocess.run(
        [*SNAKEMAKE, *args, "--configfile", *configfiles], cwd=workdir, capture_output=True, text=True, env=env
    )
    if result.returncode != 0:
        raise SystemExit(f"snakemake {' '.join(args)} failed in {workdir}:\n{result.stderr[-4000:]}")
    return result.stdout + result.stderr


def timed_default_run(root: Path, cores: int) -> float:
    workdir = deploy(root / f"cores{cores}", {})
    start = time.perf_counter()
    snakemake(workdir, "--cores", str(cores))
    return time.perf_counter() - start


def local_rules() -> set[str]:
    block = re.search(r"^localrules:\n((?:[ \t]+\w+,?\n)+)", (REPO / "Snakefile").read_text(), flags=re.M)
    return set(re.findall(r"\w+", block.group(1)))


def jobs_per_rule(dry_run_output: str) -> dict[str, int]:
    table = dry_run_output.split("Job stats:")[1].splitlines()
    counts = {}
    for line in table[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    counts.pop("total", None)
    return counts


def cluster_jobs(per_rule: dict[str, int]) -> tuple[int, dict[str, int]]:
    """(cluster jobs, jobs per rule) for the jobs of a run: every job but the local rules'."""
    local = local_rules()
    jobs = {rule: n for rule, n in sorted(per_rule.items(), key=lambda item: -item[1]) if rule not in local}
    return sum(jobs.values()), jobs


def large_corpus_jobs(root: Path) -> tuple[int, int, dict[str, tuple[int, dict[str, int]]]]:
    """(images, ROIs, {batches: (cluster jobs, jobs per rule or group)}) for about 1,000 images, with the
    default batches and with the cluster batches README's SLURM section suggests."""
    workdir = deploy(root / "large", {"corpus": {"synthetic": LARGE_CORPUS}})
    snakemake(workdir, "--cores", "2", "results/splits/assignment.tsv")
    images = len(pd.read_csv(workdir / "results/corpus/images.tsv", sep="\t"))
    rois = len(pd.read_csv(workdir / "results/corpus/rois.tsv", sep="\t"))
    env = {**os.environ, "SBATCH_ACCOUNT": "dry-run"}
    counts = {}
    for name, batches in BATCHES.items():
        (workdir / "batches.yaml").write_text(yaml.safe_dump({"execution": batches}))
        profile = str(REPO / "profiles" / "slurm")
        output = snakemake(workdir, "--profile", profile, "-n", configfiles=("bench.yaml", "batches.yaml"), env=env)
        counts[name] = cluster_jobs(jobs_per_rule(output))
    return images, rois, counts


def paper_estimate(films: int, cores: int, job_overhead_s: float) -> tuple[float, pd.DataFrame]:
    """Hours for `films` full-field films on `cores` cores, and the core-seconds behind them per rule.

    Rules that read images (per-item batches, ingest, hashing, the selector's
    training and the segmentation evaluation) scale with megapixels; rules over
    ROI tables (features gathering, cohort, model fits, evaluation, report) with
    the number of ROIs, at the default run's ROIs per film. Per-item batches (16
    films, 32 ROIs) and the model fits spread over all cores, each job paying the
    per-job overhead; the other rules run as one job each, one after the other.
    Lesion insertion is counted on every film (an upper bound: it runs on normal
    films only).
    """
    measured = yaml.safe_load((REPO / "workflow" / "resources.yaml").read_text())
    corpus = measured["corpus"]
    mp_ratio = films * FULL_FIELD_MEGAPIXELS / corpus["megapixels"]
    roi_ratio = films / corpus["images_with_pixels"]
    rows = []
    for rule, cost in measured["rules"].items():
        per_mp = cost["seconds"] / cost["megapixels"]
        if rule in PER_ITEM_RULES:
            batches = math.ceil(films / 16) if rule in ("segment", "insert_lesions") else math.ceil(films * 1.3 / 32)
            core_s = per_mp * films * FULL_FIELD_MEGAPIXELS + batches * job_overhead_s
            kind = "per item, parallel"
        elif rule in IMAGE_RULES:
            core_s = cost["seconds"] * mp_ratio + job_overhead_s
            kind = "whole corpus, serial"
        else:
            core_s = cost["jobs"] * (cost["seconds"] * roi_ratio + job_overhead_s)
            kind = "model fits, parallel" if cost["jobs"] > 1 else "ROI tables, serial"
        rows.append({"rule": rule, "kind": kind, "core_s": core_s})
    table = pd.DataFrame(rows).sort_values("core_s", ascending=False)
    parallel = table.loc[table["kind"].str.endswith("parallel"), "core_s"].sum() / cores
    serial = table.loc[table["kind"].str.endswith("serial"), "core_s"].sum()
    return (parallel + serial) / 3600, table


def markdown(cores_s: dict[int, float] | None, large, estimate, job_overhead_s: float) -> str:
    images, rois, counts = large
    hours, table = estimate
    lines = [
        "## Scaling",
        "",
        f"Measured by `benchmarks/scale.py` on {platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores.",
        "",
    ]
    if cores_s:
        lines += [
            "The default run from scratch, one after the other on an otherwise idle machine:",
            "",
            "| cores | wall time | speed-up |",
            "|---|---|---|",
            *(f"| {c} | {s / 60:.1f} min | {cores_s[1] / s:.2f} |" for c, s in sorted(cores_s.items())),
            "",
        ]
    names = sorted({rule for _, per_rule in counts.values() for rule in per_rule})
    lines += [
        f"Cluster jobs of the SLURM profile for a synthetic corpus of {images} images and {rois} ROIs "
        "(dry run; the checks and small gathers run on the login node and are not counted):",
        "",
        "| rule | " + " | ".join(counts) + " |",
        "|---|" + "---|" * len(counts),
        *(
            f"| {rule} | " + " | ".join(str(per_rule.get(rule, 0)) for _, per_rule in counts.values()) + " |"
            for rule in names
        ),
        "| **total** | " + " | ".join(f"**{total}**" for total, _ in counts.values()) + " |",
        "",
        f"On paper: 10,000 full-field films ({FULL_FIELD_MEGAPIXELS:.1f} MP each) on 512 cores, from the measured "
        f"per-rule seconds per megapixel and {job_overhead_s:.0f} s of overhead per cluster job: "
        f"**{hours:.1f} h**.",
        "",
        "| rule | kind | core-hours |",
        "|---|---|---|",
        *(f"| {r.rule} | {r.kind} | {r.core_s / 3600:.2f} |" for r in table.itertuples()),
        "",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    path = REPO / "BENCHMARKS.md"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    current = re.sub(r"\n## Scaling\n.*?(?=\n## |\Z)", "\n", current, flags=re.S).rstrip() + "\n"
    path.write_text(current + "\n" + text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", action="store_true", help="also time the default run with 1 and 2 cores")
    parser.add_argument("--job-overhead-s", type=float, default=12.0, help="measured seconds per cluster job")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="calcsig-scale-") as tmp:
        root = Path(tmp)
        cores_s = {c: timed_default_run(root, c) for c in (1, 2)} if args.cores else None
        large = large_corpus_jobs(root)
    text = markdown(cores_s, large, paper_estimate(10_000, 512, args.job_overhead_s), args.job_overhead_s)
    print(text)
    write_section(text)


if __name__ == "__main__":
    main()
