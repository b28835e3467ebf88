"""Per-image/per-ROI stages of the workflow: one job per item vs batched jobs, side by side.

Runs snakemake on the same synthetic corpus in two working directories. The
corpus, split and candidate selector are built first (not timed); then the
segment -> masks -> features stages are timed up to results/features/rois.parquet
with execution.images_per_job / rois_per_job = 1 (one job per image and ROI)
and with the defaults. Writes the figures to BENCHMARKS.md under
"## Workflow jobs".

    python benchmarks/workflow.py [--subjects 24] [--cores 2]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
TIMED_TARGET = "results/features/rois.parquet"
UNTIMED_TARGETS = ["results/segment/selector/train.joblib"]


def snakemake(workdir: Path, cores: int, *targets: str) -> None:
    # targets first: --quiet and --configfile each take several values
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            *targets,
            "--cores",
            str(cores),
            "--quiet",
            "all",
            "--configfile",
            "bench.yaml",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"snakemake {' '.join(targets)} failed in {workdir}:\n{result.stderr[-3000:]}")


def run(workdir: Path, overrides: dict, cores: int) -> dict:
    workdir.mkdir(parents=True)
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    (workdir / "bench.yaml").write_text(yaml.safe_dump(overrides))
    snakemake(workdir, cores, *UNTIMED_TARGETS)
    start = time.perf_counter()
    snakemake(workdir, cores, TIMED_TARGET)
    seconds = time.perf_counter() - start
    images = pd.read_csv(workdir / "results/corpus/images.tsv", sep="\t")
    rois = pd.read_parquet(workdir / TIMED_TARGET)
    jobs = sum(
        len(list((workdir / "benchmarks/results" / stage).glob("*.tsv"))) for stage in ("masks", "features")
    ) + len([p for p in (workdir / "benchmarks/results/segment").glob("*.tsv") if p.stem != "train_selector"])
    return {
        "seconds": seconds,
        "images": len(images),
        "rois": len(rois),
        "jobs": jobs,
        "features": pd.read_parquet(workdir / TIMED_TARGET),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=24)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    corpus = {"corpus": {"synthetic": {"n_subjects": args.subjects}}}
    with tempfile.TemporaryDirectory() as tmp:
        per_item = run(
            Path(tmp) / "per_item", {**corpus, "execution": {"images_per_job": 1, "rois_per_job": 1}}, args.cores
        )
        batched = run(Path(tmp) / "batched", corpus, args.cores)
    same = per_item["features"].equals(batched["features"])
    lines = [
        "## Workflow jobs",
        "",
        f"`python benchmarks/workflow.py --subjects {args.subjects} --cores {args.cores}`"
        f" ({time.strftime('%Y-%m-%d')}, "
        f"{platform.machine()}, Python {platform.python_version()}, snakemake --cores {args.cores}). Default synthetic "
        f"images (0.1 mm), {per_item['images']} images and {per_item['rois']} ROIs. Timed: segment, masks and features "
        f"up to `{TIMED_TARGET}` (corpus, split and selector built beforehand, untimed), the same corpus both ways.",
        "",
        "| jobs | snakemake jobs | wall seconds | seconds per image + its ROIs |",
        "|---|---|---|---|",
        f"| one per image and per ROI (`images_per_job: 1`, `rois_per_job: 1`) | {per_item['jobs']} | "
        f"{per_item['seconds']:.1f} | {per_item['seconds'] / per_item['images']:.2f} |",
        f"| batched (defaults) | {batched['jobs']} | {batched['seconds']:.1f} | "
        f"{batched['seconds'] / batched['images']:.2f} |",
        "",
        f"Speed-up: {per_item['seconds'] / batched['seconds']:.1f}x."
        f" Feature tables identical: {'yes' if same else 'NO'}.",
        "",
    ]
    print("\n".join(lines))
    write_section(REPO / "BENCHMARKS.md", "## Workflow jobs", lines)


def write_section(path: Path, heading: str, lines: list[str]) -> None:
    """Replace (or append) the section under `heading`, keeping the others."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    sections = text.split("\n## ")
    kept = [s for s in sections[1:] if not s.startswith(heading[3:])]
    body = sections[0].rstrip("\n") + "\n" + "".join("\n## " + s.rstrip("\n") + "\n" for s in kept)
    path.write_text(body + "\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
