"""How calcsig scales: cores on one machine, cluster jobs for a large corpus, and a cluster-size estimate.

Three measurements, written to BENCHMARKS.md under "## Scaling":

1. ``--cores``: the default run (the embedded synthetic corpus) from scratch with
   ``--cores 1`` and with ``--cores 2``, alternating ``--repeats`` times in fresh
   working directories on an otherwise idle machine; the speed-up is the ratio of
   the fastest of each (noise on a shared machine only adds time).
2. Cluster jobs for a corpus of about 1,000 images: a synthetic corpus of small
   films (the number of jobs depends on the number of images and ROIs, not on
   their size) is ingested and partitioned, then the SLURM profile's dry run
   gives the jobs per rule, with the default batches and with the cluster
   batches README suggests; local rules excluded.
3. On paper: 10,000 full-field films (3328 x 2560 px at 0.07 mm) on a 512-core
   cluster of 32-core nodes, from the measured per-rule costs (``workflow/resources.yaml``,
   in seconds per megapixel of work), a per-job overhead (``--job-overhead-s``,
   measured on the test cluster). A rule that sees the whole corpus in one job takes
   a fixed time (its job on the tests' tiny config, run here too) plus a part that
   grows with the corpus; for the threaded ones that part's parallel share comes from
   the two runs of 1. (p = 2 (1 - t2 / t1), their times with 1 and 2 threads less the
   fixed time), and Amdahl's law gives its time on a node's cores.

Every timing is kept in ``benchmarks/scale_measured.json``; ``--from-json`` writes the
section again from it without measuring.

    python benchmarks/scale.py [--repeats 2] [--job-overhead-s 12] [--node-cores 32] [--from-json]
"""

from __future__ import annotations

import argparse
import json
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

import numpy as np
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
# one-job rules that spread their work over the job's threads (images in worker processes; the
# feature tables in threads): on a cluster, a node's cores each
THREADED_RULES = (
    "corpus",
    "partition",
    "train_selector",
    "evaluate_segmentation",
    "lesion_insertion",
    "gather_features",
)
# the default run has no normal films: lesion insertion's share is taken as the segmentation evaluation's
# (the same work: read each film's candidates, match them with truth)
SAME_SHARE_AS = {"lesion_insertion": "evaluate_segmentation"}
# a single-job rule's benchmark file under results/benchmarks
SINGLE_JOB_BENCHMARKS = {
    "corpus": "corpus.tsv",
    "check_corpus": "check_corpus.tsv",
    "partition": "partition.tsv",
    "audit": "audit.tsv",
    "train_selector": "segment/train_selector/train.tsv",
    "evaluate_segmentation": "segment/evaluate_segmentation.tsv",
    "cohort": "cohort.tsv",
    "check_cohort": "check_cohort.tsv",
    "gather_features": "features/gather_features.tsv",
    "gather_predictions": "model/gather_predictions.tsv",
    "evaluate_models": "model/evaluate_models.tsv",
    "report": "report.tsv",
}
TINY = REPO / "tests" / "data" / "tiny.yaml"
TRAIN_FRACTION = 0.6  # the default partition's train split, where the selector's images come from
# one-job rules whose work (the part spread over threads, for a threaded rule) grows with megapixels: they
# read images or their candidates; the others read tables, and their work grows with the number of images
IMAGE_RULES = ("corpus", "partition", "train_selector", "evaluate_segmentation", "lesion_insertion")
# threaded rules whose single-threaded remainder reads tables (corpus: validating and writing them;
# partition: the balance search over subjects), so that it grows with the number of images
SERIAL_PART_GROWS_WITH_IMAGES = ("corpus", "partition")


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


def timed_run(root: Path, cores: int, tiny: bool = False, repeat: int = 0) -> tuple:
    """The default run (or the tests' tiny config) from scratch: (wall seconds, single-job rule ->
    its job's wall seconds, images the selector trained on, every job's benchmark file -> its seconds)."""
    workdir = root / f"{'tiny' if tiny else 'default'}-cores{cores}" / f"repeat{repeat}"
    deploy(workdir, {})
    if tiny:
        shutil.copy(TINY, workdir / "bench.yaml")
    start = time.perf_counter()
    snakemake(workdir, "--cores", str(cores))
    wall = time.perf_counter() - start
    jobs = {
        rule: float(pd.read_csv(workdir / "results" / "benchmarks" / name, sep="\t")["s"].iloc[-1])
        for rule, name in SINGLE_JOB_BENCHMARKS.items()
        if (workdir / "results" / "benchmarks" / name).exists()
    }
    selector = json.loads((workdir / "results" / "segment" / "selector" / "train.json").read_text())
    every_job = {
        str(path.relative_to(workdir / "results" / "benchmarks")): float(pd.read_csv(path, sep="\t")["s"].iloc[0])
        for path in sorted((workdir / "results" / "benchmarks").rglob("*.tsv"))
    }
    return wall, jobs, int(selector["n_images"]), every_job


# the jobs given every core locally (and the report's two threads): they differ between the 1- and
# 2-core runs by design; every other job runs on one thread in both
MULTI_THREADED_JOBS = {
    SINGLE_JOB_BENCHMARKS[rule] for rule in ("corpus", "train_selector", "gather_features", "report")
}


def equal_job_speedups(measured: dict) -> tuple[list[float], list[float]]:
    """Per repeat: (how much longer the single-threaded jobs took in the 1-core run than the same jobs
    in the 2-core run, as a ratio of their sums; the speed-up with the 1-core run charged the 2-core
    run's times for those jobs). Empty without per-job timings."""
    ratios, speedups = [], []
    for one, two in zip(measured["runs"]["1"], measured["runs"]["2"]):
        if len(one) < 4 or len(two) < 4:
            continue
        single = [job for job in one[3] if job in two[3] and job not in MULTI_THREADED_JOBS]
        in_one, in_two = sum(one[3][job] for job in single), sum(two[3][job] for job in single)
        ratios.append(in_one / in_two)
        speedups.append((one[0] - in_one + in_two) / two[0])
    return ratios, speedups


def default_workdir(root: Path, cores: int) -> Path:
    return root / f"default-cores{cores}" / "repeat0"


# each threaded rule's target, downstream first: forcing one job never makes an earlier-measured one stale
ISOLATED_TARGETS = {
    "gather_features": "results/features/objects.parquet",
    "evaluate_segmentation": "results/metrics/segmentation.json",
    "train_selector": "results/segment/selector/train.json",
    "partition": "results/splits/assignment.tsv",
    "corpus": "results/corpus/images.tsv",
}


def isolated_times(workdir: Path, repeats: int = 1) -> dict[int, dict[str, list[float]]]:
    """threads -> threaded rule -> wall seconds of its job run again alone in a finished default run
    (in the full runs some of them share the cores with per-item jobs), `repeats` times each,
    alternating 1 and 2 threads."""
    times: dict[int, dict[str, list[float]]] = {1: {}, 2: {}}
    for rule, target in ISOLATED_TARGETS.items():
        for _ in range(repeats):
            for threads in (1, 2):
                snakemake(workdir, "--cores", str(threads), "--set-threads", f"{rule}={threads}", "--force", target)
                name = SINGLE_JOB_BENCHMARKS[rule]
                seconds = float(pd.read_csv(workdir / "results" / "benchmarks" / name, sep="\t")["s"].iloc[-1])
                times[threads].setdefault(rule, []).append(seconds)
    return times


def fastest(times: list[float]) -> float:
    """The figure taken of repeated timings: the fastest, since noise on a shared machine only adds time."""
    return float(min(times))


def parallel_share(one_thread_s: float, two_threads_s: float) -> float:
    """Amdahl's parallel fraction p of a job from its times with 1 and 2 threads: t2 = t1 (1 - p + p / 2)."""
    return float(min(1.0, max(0.0, 2.0 * (1.0 - two_threads_s / one_thread_s))))


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


def paper_estimate(
    films: int,
    cores: int,
    job_overhead_s: float,
    node_cores: int,
    runs: dict,
    tiny: dict[str, float],
    isolated: dict[int, dict[str, float]],
    share_cap: float = 1.0,
) -> tuple[float, pd.DataFrame]:
    """Hours for `films` full-field films on `cores` cores, and the cost behind them per rule.

    Per-item batches (16 films, 32 ROIs) and the model fits spread over all cores,
    each job paying the per-job overhead; their work scales with megapixels (model
    fits: with the number of images, hence ROIs). Every other rule runs as one job,
    one after the other. Such a job's time is a fixed part, its time on the tests'
    tiny config (start-up, figures), plus the rest, which grows with the corpus:
    with megapixels for the rules that read images or their candidates
    (`IMAGE_RULES`; for the selector's training, the films it trains on: at most
    segment.selector_max_training_images of the train split), with the number of
    images for the rules that read tables. A threaded rule (`THREADED_RULES`) runs
    the growing part's parallel share, measured with 1 and 2 threads on its job run
    alone (`isolated_times`), on `node_cores` cores (Amdahl's law); the rest on one
    core, growing with the number of images where it reads tables
    (`SERIAL_PART_GROWS_WITH_IMAGES`).
    Lesion insertion, not in the default run, is counted from workflow/resources.yaml
    on every film (an upper bound: it runs on normal films only).
    runs : cores -> `timed_run` of the default run; tiny : `timed_run` of the tiny config's jobs.
    share_cap : the largest parallel share used (below 1: a cautious variant, in case the share
    measured with 2 threads overstates what a node's cores give).
    """
    measured = yaml.safe_load((REPO / "workflow" / "resources.yaml").read_text())
    corpus = measured["corpus"]
    mp_per_image = corpus["megapixels"] / corpus["images_with_pixels"]
    mp_ratio = films * FULL_FIELD_MEGAPIXELS / corpus["megapixels"]
    image_ratio = films / corpus["images_with_pixels"]
    (_, one, trained_on) = runs[1]
    one = {**one, **isolated[1]}
    two = isolated[2]
    cap = segment_default("selector_max_training_images")
    selector_ratio = min(TRAIN_FRACTION * films, cap) * FULL_FIELD_MEGAPIXELS / (trained_on * mp_per_image)
    rows = []
    for rule, cost in measured["rules"].items():
        fixed, share, threads = 0.0, 0.0, 1
        if rule in PER_ITEM_RULES:
            batches = math.ceil(films / 16) if rule in ("segment", "insert_lesions") else math.ceil(films * 1.3 / 32)
            per_mp = cost["seconds"] / cost["megapixels"]
            core_s = per_mp * films * FULL_FIELD_MEGAPIXELS + batches * job_overhead_s
            wall_s, kind = np.nan, "per item, parallel"
        elif cost["jobs"] > 1:
            core_s = cost["jobs"] * (cost["seconds"] * image_ratio + job_overhead_s)
            wall_s, kind = np.nan, "model fits, parallel"
        else:
            kind = "whole corpus, one job" if rule in IMAGE_RULES else "tables, one job"
            ratio = selector_ratio if rule == "train_selector" else mp_ratio if rule in IMAGE_RULES else image_ratio
            serial_ratio = image_ratio if rule in SERIAL_PART_GROWS_WITH_IMAGES else ratio
            if rule in one:
                fixed = min(tiny.get(rule, 0.0), one[rule])
                growing = one[rule] - fixed
            else:  # not in the default run (lesion insertion): all of its measured time grows
                growing = cost["seconds"]
            if rule in THREADED_RULES:
                measured_as = SAME_SHARE_AS.get(rule, rule)
                f = min(tiny.get(measured_as, 0.0), one[measured_as], two[measured_as])
                share = min(share_cap, parallel_share(one[measured_as] - f, two[measured_as] - f))
                threads = node_cores
            core_s = fixed + growing * (share * ratio + (1.0 - share) * serial_ratio)
            wall_s = fixed + growing * (share * ratio / threads + (1.0 - share) * serial_ratio) + job_overhead_s
        rows.append(
            {"rule": rule, "kind": kind, "core_s": core_s, "share": share, "threads": threads, "wall_s": wall_s}
        )
    table = pd.DataFrame(rows).sort_values("core_s", ascending=False)
    parallel = table.loc[table["kind"].str.endswith("parallel"), "core_s"].sum() / cores
    serial = table["wall_s"].sum()  # the parallel rules' NaN is skipped
    return (parallel + serial) / 3600, table


def segment_default(key: str):
    """The schema default of a segment key (what the estimate assumes)."""
    from calcsig.segment.params import segment_params

    return segment_params({}, (key,))[key]


def equal_job_lines(measured: dict) -> list[str]:
    ratios, speedups = equal_job_speedups(measured)
    if not ratios:
        return []
    return [
        "The same single-threaded jobs took "
        + ", ".join(f"{(r - 1) * 100:.0f}%" for r in ratios)
        + " longer in the 1-core runs than in the 2-core runs (summed, per repeat). Charging the 1-core runs "
        "the 2-core runs' times for those jobs, so that only running side by side counts, the speed-ups are "
        + ", ".join(f"{s:.2f}" for s in speedups)
        + ".",
        "",
    ]


def markdown(measured: dict, estimate, cautious, job_overhead_s: float, node_cores: int) -> str:
    runs = fastest_runs(measured)
    images, rois = measured["large"]["images"], measured["large"]["rois"]
    # in BATCHES' order (the JSON keeps them sorted)
    counts = {name: measured["large"]["counts"][name] for name in BATCHES if name in measured["large"]["counts"]}
    hours, table = estimate

    def seconds(times: list[float]) -> str:
        return ", ".join(f"{t:.1f}" for t in times) + " s"

    lines = [
        "## Scaling",
        "",
        f"Measured by `benchmarks/scale.py` on {measured['machine']}; the raw timings are in "
        "`benchmarks/scale_measured.json`. Each figure is the fastest of the repeats (noise on a shared "
        "machine only adds time); every repeat is listed.",
        "",
        "The default run from scratch, the two settings alternating on an otherwise idle machine:",
        "",
        "| cores | each run | fastest | speed-up |",
        "|---|---|---|---|",
        *(
            f"| {c} | {', '.join(f'{r[0] / 60:.1f}' for r in measured['runs'][str(c)])} min | "
            f"{runs[c][0] / 60:.1f} min | {runs[1][0] / runs[c][0]:.2f} |"
            for c in sorted(runs)
        ),
        "",
        *equal_job_lines(measured),
        "The threaded one-job rules, each run again alone in the finished default run with 1 and 2 threads "
        "(alternating):",
        "",
        "| rule | 1 thread | 2 threads | parallel share p of the part that grows with the corpus |",
        "|---|---|---|---|",
        *(
            f"| {rule} | {seconds(measured['isolated']['1'][rule])} | {seconds(measured['isolated']['2'][rule])} | "
            f"{table.set_index('rule').at[rule, 'share']:.2f} |"
            for rule in ISOLATED_TARGETS
        ),
        "",
        "p = 2 (1 - t2 / t1) of the fastest times less the rule's fixed time (its job on the tiny config), "
        "kept within [0, 1].",
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
        f"On paper: 10,000 full-field films ({FULL_FIELD_MEGAPIXELS:.1f} MP each) on 512 cores "
        f"({node_cores}-core nodes, `CALCSIG_NODE_CORES={node_cores}` for the slurm profile), "
        f"from the measured per-rule seconds per megapixel, {job_overhead_s:.0f} s of overhead per cluster job "
        f"and the parallel shares above: **{hours:.2f} h**; with every share capped at "
        f"{CAUTIOUS_SHARE}, in case two threads overstate what a node's cores give: **{cautious[0]:.2f} h**.",
        "",
        "| rule | kind | core-hours | threads | parallel share | wall time of its job |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r.rule} | {r.kind} | {r.core_s / 3600:.2f} | {r.threads} | {r.share:.2f} | "
            + ("spread over the cluster" if np.isnan(r.wall_s) else f"{r.wall_s / 60:.1f} min")
            + " |"
            for r in table.itertuples()
        ),
        "",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Replace BENCHMARKS.md's "## Scaling" section in place (appended when absent), so that the
    sections after it, "what the figures say" among them, stay where they are."""
    path = REPO / "BENCHMARKS.md"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    section = re.compile(r"\n## Scaling\n.*?(?=\n## |\Z)", flags=re.S)
    if section.search(current):
        updated = section.sub(lambda _: "\n" + text.rstrip() + "\n", current, count=1)
    else:
        updated = current.rstrip() + "\n\n" + text
    path.write_text(updated.rstrip() + "\n")


MEASURED_JSON = REPO / "benchmarks" / "scale_measured.json"
CAUTIOUS_SHARE = 0.9


def measure(repeats: int) -> dict:
    """Every timing of the three measurements, JSON-ready (cores and threads as string keys)."""
    with tempfile.TemporaryDirectory(prefix="calcsig-scale-") as tmp:
        root = Path(tmp)
        runs: dict[str, list] = {"1": [], "2": []}
        for repeat in range(repeats):  # alternating, so that a slow spell of the machine hits both
            for cores in (1, 2):
                runs[str(cores)].append(list(timed_run(root, cores, repeat=repeat)))
        isolated = isolated_times(default_workdir(root, 2), repeats)
        tiny = timed_run(root, 1, tiny=True)[1]
        images, rois, counts = large_corpus_jobs(root)
    return {
        "machine": f"{platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores",
        "runs": runs,
        "isolated": {str(threads): times for threads, times in isolated.items()},
        "tiny": tiny,
        "large": {"images": images, "rois": rois, "counts": counts},
    }


def fastest_runs(measured: dict) -> dict[int, tuple[float, dict[str, float], int]]:
    """cores -> (fastest wall seconds, each single-job rule's fastest seconds, images the selector trained on)."""
    out = {}
    for cores, runs in measured["runs"].items():
        rules = set.intersection(*(set(run[1]) for run in runs))
        out[int(cores)] = (
            fastest([run[0] for run in runs]),
            {rule: fastest([run[1][rule] for run in runs]) for rule in sorted(rules)},
            int(runs[0][2]),
        )
    return out


def fastest_isolated(measured: dict) -> dict[int, dict[str, float]]:
    """threads -> threaded rule -> its fastest isolated run."""
    return {
        int(threads): {rule: fastest(times) for rule, times in per_rule.items()}
        for threads, per_rule in measured["isolated"].items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job-overhead-s", type=float, default=12.0, help="measured seconds per cluster job")
    parser.add_argument(
        "--node-cores", type=int, default=32, help="cores of a cluster node (the profile's max-threads)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="runs of each setting, alternating")
    parser.add_argument(
        "--from-json", action="store_true", help=f"write the section again from {MEASURED_JSON.name}, measuring nothing"
    )
    args = parser.parse_args()
    if args.from_json:
        measured = json.loads(MEASURED_JSON.read_text())
    else:
        measured = measure(args.repeats)
        MEASURED_JSON.write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n")
    runs, isolated, tiny = fastest_runs(measured), fastest_isolated(measured), measured["tiny"]
    estimate = paper_estimate(10_000, 512, args.job_overhead_s, args.node_cores, runs, tiny, isolated)
    cautious = paper_estimate(
        10_000, 512, args.job_overhead_s, args.node_cores, runs, tiny, isolated, share_cap=CAUTIOUS_SHARE
    )
    text = markdown(measured, estimate, cautious, args.job_overhead_s, args.node_cores)
    print(text)
    write_section(text)


if __name__ == "__main__":
    main()
