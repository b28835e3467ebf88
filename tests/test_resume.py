"""Resumes are exact: whatever stops a run, the next one ends with results byte-identical to a clean run.

On the micro config, a finished run is copied, a stage is made to run again
(its results removed, or a parameter changed), and the run is stopped in the
middle of that stage: Snakemake itself killed (SIGKILL), or one of its jobs.
The run is then resumed with the original config (so with a parameter change in
between, when there was one) and every result must equal the clean run's. Then
each stage's intermediates are deleted or truncated behind the workflow's back.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from config_changes import SPECIAL
from test_workflow import REPO, deploy, snakemake

pytestmark = pytest.mark.workflow

MICRO = yaml.safe_load((REPO / "tests" / "data" / "micro.yaml").read_text())
VOLATILE = re.compile(rb"<!-- volatile:start -->.*?<!-- volatile:end -->", re.S)

# per stage (named by its rule and script): its results folder, the files that show it is under way,
# a parameter change that reruns it, and the rule outputs in its folder (what a resume of the stage builds)
STAGES = {
    "segment": (
        "results/segment",
        "results/segment/batches/*.tsv",
        {"segment": {"threshold_noise": 4.5}},
        ("results/segment/batches/*.tsv", "results/segment/*.joblib", "results/segment/*.png"),
    ),
    "masks": (
        "results/masks",
        "results/masks/batches/*.tsv",
        {"masks": {"background_band_mm": 2.0}},
        ("results/masks/batches/*.tsv",),
    ),
    "features": (
        "results/features",
        "results/features/batches/*.tsv",
        SPECIAL["features.families.topology"],  # topology off, and the model's use of it
        ("results/features/batches/*.tsv", "results/features/objects.parquet", "results/features/rois.parquet"),
    ),
    "model_fold": (
        "results/model",
        "results/model/outer*/*/predictions.parquet",
        {"model": {"target_sensitivity": 0.98}},
        ("results/model/outer*/*/*.*", "results/model/predictions.parquet"),
    ),
}
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2"]


def result_digests(workdir: Path) -> dict[str, str]:
    """SHA-256 of every result file (timings left out; the report without its volatile block)."""
    out = {}
    for path in sorted((workdir / "results").rglob("*")):
        rel = path.relative_to(workdir).as_posix()
        if path.is_dir() or rel.startswith("results/benchmarks/") or path.name.endswith((".partial", ".html.sha256")):
            continue  # timings, journals, and the digest of the report, whose volatile block differs by nature
        data = path.read_bytes()
        if path.suffix == ".html":
            data = VOLATILE.sub(b"", data)
        out[rel] = hashlib.sha256(data).hexdigest()
    return out


def assert_same_results(workdir: Path, reference: Path) -> None:
    got, want = result_digests(workdir), result_digests(reference)
    assert set(got) == set(want), {"extra": sorted(set(got) - set(want)), "missing": sorted(set(want) - set(got))}
    differ = sorted(k for k in want if got[k] != want[k])
    assert not differ, f"{len(differ)} result file(s) differ from a clean run, e.g. {differ[:10]}"


@pytest.fixture(scope="module")
def clean_micro_run(tmp_path_factory) -> Path:
    workdir = deploy(tmp_path_factory.mktemp("micro") / "clean", MICRO)
    snakemake(workdir, "--configfile", "tiny.yaml")
    return workdir


def clone(reference: Path, workdir: Path) -> Path:
    shutil.copytree(reference, workdir, symlinks=True)  # copy2: modification times kept, as Snakemake needs
    return workdir


def start(workdir: Path, *arguments: str) -> subprocess.Popen:
    """Snakemake in the background with `arguments` after --configfile (config files, then -- and targets)."""
    return subprocess.Popen(
        [*SNAKEMAKE, "--configfile", *arguments],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def changed_since(workdir: Path, pattern: str, before: dict) -> bool:
    """Whether a file matching `pattern` appeared, was rewritten or was removed since `before`
    (path -> mtime): Snakemake removes a job's old outputs when it starts the job again."""
    for path, mtime in before.items():
        try:
            if path.stat().st_mtime_ns != mtime:
                return True
        except FileNotFoundError:
            return True
    return any(p not in before for p in workdir.glob(pattern))


def wait_for(predicate, run: subprocess.Popen, seconds: float = 600) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return
        if run.poll() is not None:
            raise AssertionError(f"the run ended before the stage was under way:\n{run.stdout.read()[-3000:]}")
        time.sleep(0.2)
    raise AssertionError("the stage never got under way")


def jobs_of(workdir: Path, script: str | None = None) -> list[int]:
    """PIDs of the workflow jobs (Snakemake's script copies) running in `workdir`."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if cwd == str(workdir) and ".snakemake/scripts/" in cmdline and (script is None or f".{script}.py" in cmdline):
            pids.append(int(proc.name))
    return pids


def stop(run: subprocess.Popen, workdir: Path, how: str, script: str) -> None:
    if how == "kill snakemake":
        run.send_signal(signal.SIGKILL)
        run.wait()
    else:
        victims = jobs_of(workdir, script)
        assert victims, f"no {script} job to kill"
        os.kill(victims[0], signal.SIGKILL)
        output = run.communicate(timeout=600)[0]
        assert run.returncode != 0 and f"Error in rule {script}" in output, output[-3000:]
    # jobs never outlive the Snakemake that started them (calcsig.jobguard)
    end = time.monotonic() + 30
    while jobs_of(workdir) and time.monotonic() < end:
        time.sleep(0.2)
    assert not jobs_of(workdir), "a job outlived its run"


CASES = [
    ("kill snakemake", False),
    ("kill snakemake", True),
    ("kill one job", False),
    ("kill one job", True),
]


def stage_outputs(reference: Path, patterns) -> list[str]:
    """The stage's rule outputs in a clean run (paths relative to the working directory), to resume to."""
    found = {p for pattern in patterns for p in reference.glob(pattern) if not p.name.startswith(".")}
    return sorted(p.relative_to(reference).as_posix() for p in found)


def results_under(workdir: Path, prefixes: tuple[str, ...]) -> dict[str, str]:
    return {k: v for k, v in result_digests(workdir).items() if k.startswith(prefixes)}


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_stopped_run_resumes_to_the_results_of_a_clean_run(clean_micro_run, tmp_path, stage):
    """Four stops in this stage, each resumed to the stage's results and compared; then the whole run.

    Each stop: Snakemake killed, or one of the stage's jobs killed, after the stage
    was started either again from scratch (its results removed) or with a changed
    parameter; the resume uses the original config, so a half-done change is undone.
    """
    workdir = clone(clean_micro_run, tmp_path / "run")
    removed, underway, change, outputs = STAGES[stage]
    (workdir / "change.yaml").write_text(yaml.safe_dump(change))
    targets = stage_outputs(clean_micro_run, outputs)
    upstream_and_stage = ("results/corpus/", "results/splits/", "results/cohort/checked", removed)
    for how, changed in CASES:
        configs = ["tiny.yaml", "change.yaml"] if changed else ["tiny.yaml"]
        if not changed:
            shutil.rmtree(workdir / removed)
        before = {p: p.stat().st_mtime_ns for p in workdir.glob(underway)}
        run = start(workdir, *configs, "--", *targets)
        wait_for(lambda before=before: changed_since(workdir, underway, before), run)
        stop(run, workdir, how, stage)
        if how == "kill snakemake":
            snakemake(workdir, "--unlock")
        snakemake(workdir, "--configfile", "tiny.yaml", "--", *targets)
        got, want = results_under(workdir, upstream_and_stage), results_under(clean_micro_run, upstream_and_stage)
        differ = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        assert not differ, f"{how}, {'parameter changed' if changed else 'same config'}: {differ[:10]}"
    snakemake(workdir, "--configfile", "tiny.yaml")  # everything downstream, as far as it needs rerunning
    assert_same_results(workdir, clean_micro_run)
