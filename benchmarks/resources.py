"""Measure each rule's cost on a finished run and write workflow/resources.yaml.

Reads the `benchmark:` files of finished runs (the default run, synthetic
corpus; then runs that have rules the default run lacks, such as mini-MIAS's
lesion insertion into normal films) and, per rule, the median wall seconds and peak memory of its jobs and
the megapixels of work they did (calcsig.jobsize): per-item rules (segment,
insert_lesions, masks, features) from their batch manifests, every other rule
from the whole corpus. The workflow sizes cluster jobs from this table.

    python benchmarks/resources.py <default run> [<other runs>...] [--out workflow/resources.yaml]

Each rule is measured on the first run that has it; the corpus figures are the first run's.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from calcsig.jobsize import image_work  # noqa: E402
from calcsig.report.provenance import files_by_rule  # noqa: E402

# per-item rules: their batch manifest (from the benchmark file's {batch}) and the ID column it lists
PER_ITEM = {
    "segment": ("results/segment/batches/{batch}.tsv", "image_id"),
    "insert_lesions": ("results/segment/inserted/batches/{batch}.tsv", "image_id"),
    "masks": ("results/masks/batches/{batch}.tsv", "roi_id"),
    "features": ("results/features/batches/{batch}.tsv", "roi_id"),
}
RULE = re.compile(r"^(?:rule|checkpoint) (\w+):", re.M)
BENCHMARK = re.compile(r"^    benchmark:\n        \"([^\"]+)\"", re.M)


def declared_benchmarks(rules_dir: Path) -> dict[str, str]:
    """Each rule's benchmark pattern, read from the rule files."""
    patterns = {}
    for path in sorted(rules_dir.glob("*.smk")):
        text = path.read_text()
        starts = [(m.start(), m.group(1)) for m in RULE.finditer(text)] + [(len(text), None)]
        for (start, name), (end, _) in zip(starts, starts[1:]):
            found = BENCHMARK.search(text, start, end)
            if found:
                patterns[name] = found.group(1)
    return patterns


def batch_of(pattern: str, path: str) -> str:
    regex = re.escape(pattern).replace(r"\{batch\}", r"(?P<batch>.+)")
    return re.fullmatch(regex, path).group("batch")


def measure(workdir: Path, working_spacing_mm: float | None) -> tuple[dict, dict]:
    os.chdir(workdir)
    images = pd.read_csv("results/corpus/images.tsv", sep="\t", dtype=str, keep_default_na=False)
    rois = pd.read_csv("results/corpus/rois.tsv", sep="\t", dtype=str, keep_default_na=False)
    work = image_work(images, working_spacing_mm)
    image_of_roi = rois.set_index("roi_id")["image_id"]
    patterns = declared_benchmarks(REPO / "workflow" / "rules")
    costs = {}
    for rule, files in files_by_rule({r: [p] for r, p in patterns.items()}).items():
        jobs = []
        for path in files:
            bench = pd.read_csv(path, sep="\t")
            row = {"seconds": float(bench["s"].iloc[0]), "peak_mb": float(bench["max_rss"].iloc[0])}
            if rule in PER_ITEM:
                manifest, column = PER_ITEM[rule]
                ids = pd.read_csv(manifest.format(batch=batch_of(patterns[rule], path)), sep="\t", dtype=str)[column]
                image_ids = ids if column == "image_id" else image_of_roi.loc[ids]
                row["megapixels"] = float(work.loc[image_ids].sum())
                row["largest_megapixels"] = float(work.loc[image_ids].max())
            else:
                row["megapixels"] = float(work.sum())
            jobs.append(row)
        if not jobs:
            continue
        table = pd.DataFrame(jobs)
        cost = {
            "jobs": len(table),
            "seconds": round(float(table["seconds"].median()), 2),
            "megapixels": round(float(table["megapixels"].median()), 3),
            "peak_mb": round(float(table["peak_mb"].median()), 1),
        }
        if "largest_megapixels" in table:
            cost["largest_megapixels"] = round(float(table["largest_megapixels"].max()), 3)
        costs[rule] = cost
    corpus = {
        "subjects": len(pd.read_csv("results/corpus/subjects.tsv", sep="\t", dtype=str)),
        "images_with_pixels": len(work),
        "megapixels": round(float(work.sum()), 1),
        "source_megabytes": round(sum(os.path.getsize(p) for p in images["path"] if os.path.exists(p)) / 1e6, 1),
    }
    return costs, corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workdirs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=REPO / "workflow" / "resources.yaml")
    parser.add_argument("--working-spacing-mm", type=float, default=0.1)
    args = parser.parse_args()
    out = args.out.resolve()
    costs, corpus, measured_on = {}, None, []
    for workdir in args.workdirs:
        found, found_corpus = measure(workdir.resolve(), args.working_spacing_mm)
        added = sorted(set(found) - set(costs))
        costs.update({rule: found[rule] for rule in added})
        corpus = corpus or found_corpus
        measured_on.append(f"# {workdir.name}: {', '.join(added)}\n")
    header = (
        "# Measured cost of one job of each rule (calcsig.jobsize sizes cluster jobs from it).\n"
        "# Written by benchmarks/resources.py from a finished run; do not edit by hand.\n"
        f"# Measured {datetime.date.today()} on {platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores.\n"
        "# seconds, peak_mb: medians over the rule's jobs (wall seconds, peak resident MB);\n"
        "# megapixels: the work of a median job; largest_megapixels: the largest image a job held.\n"
        "# Rules measured on each run (the corpus figures are the first run's):\n" + "".join(measured_on)
    )
    body = yaml.safe_dump({"corpus": corpus, "rules": costs}, sort_keys=True)
    out.write_text(header + body)
    print(header + body)


if __name__ == "__main__":
    main()
