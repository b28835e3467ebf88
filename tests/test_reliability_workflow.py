"""Bad input through the whole workflow (tiny config): what a user sees on the console.

Each run targets only the corpus tables or is a dry run, so the module stays fast.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.workflow
CORPUS = "results/corpus/images.tsv"


def snakemake(workdir: Path, *args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """snakemake on the repository's Snakefile in `workdir`, as a user runs it (its profile included)."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "1", *args],
        capture_output=True,
        text=True,
        cwd=workdir,
    )


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A working directory with the shipped config.yaml and the tiny config."""
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    shutil.copy(REPO / "tests" / "data" / "tiny.yaml", tmp_path / "tiny.yaml")
    return tmp_path


def without_root_powers() -> tuple[str, ...]:
    """Prefix under which file permissions bind: none for an ordinary user; for root, setpriv without
    the capabilities that override them."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a read-only folder cannot be made to bind")
    return ("setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--")


def test_an_ingest_error_prints_one_short_block_and_keeps_the_traceback_in_the_log(workdir):
    (workdir / "data").mkdir()
    (workdir / "data" / "m.csv").write_text("image_id,subject_id,image_path,label\na1,s1,a1.png,malignant\n")
    (workdir / "csv.yaml").write_text("corpus:\n  source: csv\n  path: data/m.csv\n")
    result = snakemake(workdir, CORPUS, "--configfile", "tiny.yaml", "csv.yaml")
    console = result.stdout + result.stderr
    assert result.returncode != 0
    assert console.count("calcsig error (IngestError): CSV manifest data/m.csv: 2 problem(s)") == 1
    assert console.count("m.csv row 2, column 'label': unknown label 'malignant'") == 1
    assert "How to fix: Correct the listed rows or files of the source" in console
    assert "Traceback" not in console
    log = (workdir / "logs" / "corpus.log").read_text()
    assert "Traceback (most recent call last)" in log and "raise IngestError" in log
    assert not (workdir / CORPUS).exists()


def test_impossible_key_combinations_stop_a_dry_run_naming_every_key(workdir):
    (workdir / "bad.yaml").write_text(
        "segment:\n  sigma_min_mm: 0.3\n  sigma_max_mm: 0.2\n"
        "model:\n  grid: huge\n"
        "partition:\n  fractions: {eval: 0.5}\n"
    )
    result = snakemake(workdir, "-n", "--configfile", "tiny.yaml", "bad.yaml")
    assert result.returncode != 0
    assert "calcsig: invalid configuration:" in result.stderr
    for key in ("'segment.sigma_min_mm' (0.3) and 'segment.sigma_max_mm' (0.2)", "'model.grid'", "fractions.train"):
        assert key in result.stderr
    assert not (workdir / "results").exists()


@pytest.mark.parametrize(
    "name, text, snakemake_says",
    [
        ("empty.yaml", "", "Config file must be given as JSON or YAML with keys at top level."),
        ("broken.yaml", "segment:\n  sigma_min_mm: [0.1\n", "Config file is not valid JSON or YAML."),
        ("missing.yaml", None, "FileNotFoundError: [Errno 2] No such file or directory: 'missing.yaml'"),
    ],
)
def test_a_configfile_snakemake_cannot_read_stops_before_any_job_and_calcsig_names_its_line(
    workdir, name, text, snakemake_says
):
    """Snakemake reads --configfile before the Snakefile, so its own words are all it prints
    (docs/reliability.md); python -m calcsig.config names the file and line."""
    if text is not None:
        (workdir / name).write_text(text)
    result = snakemake(workdir, "-n", "--configfile", name)
    assert result.returncode != 0
    assert snakemake_says in result.stdout + result.stderr
    assert not (workdir / "results").exists()
    check = subprocess.run(
        [sys.executable, "-m", "calcsig.config", "config.yaml", name], capture_output=True, text=True, cwd=workdir
    )
    assert check.returncode == 1 and "Traceback" not in check.stderr
    expected = {
        "empty.yaml": "config file empty.yaml: is empty (or only comments)",
        "broken.yaml": "config file broken.yaml, line 3, column 1: not valid YAML",
        "missing.yaml": "config file missing.yaml: does not exist",
    }[name]
    assert expected in check.stderr


def test_a_second_run_in_the_same_folder_is_refused_and_the_first_finishes(workdir):
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "1", CORPUS]
    first = subprocess.Popen(
        [*command, "--configfile", "tiny.yaml"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not (workdir / "logs" / "corpus.log").exists():
            assert first.poll() is None and time.monotonic() < deadline, "the first run never started its job"
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGSTOP)  # hold the first run inside its job while the second starts
        try:
            second = snakemake(workdir, CORPUS, "--configfile", "tiny.yaml")
        finally:
            os.killpg(first.pid, signal.SIGCONT)
        output, _ = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    assert second.returncode != 0
    assert "LockException" in second.stderr and "Directory cannot be locked" in second.stderr
    assert first.returncode == 0, output[-3000:]
    assert "Nothing to be done" in snakemake(workdir, CORPUS, "--configfile", "tiny.yaml").stderr


def test_a_read_only_results_folder_is_named(workdir):
    prefix = without_root_powers()
    (workdir / "results").mkdir()
    (workdir / "results").chmod(0o555)
    try:
        result = snakemake(workdir, CORPUS, "--configfile", "tiny.yaml", prefix=prefix)
    finally:
        (workdir / "results").chmod(0o755)
    assert result.returncode != 0
    assert "Failed to create output directory results/corpus." in result.stderr
    assert "Permission denied: 'results/corpus'" in result.stderr


def test_a_read_only_output_folder_inside_a_job_prints_the_calcsig_block(workdir):
    prefix = without_root_powers()
    (workdir / "results" / "corpus").mkdir(parents=True)
    (workdir / "results" / "corpus").chmod(0o555)
    try:
        result = snakemake(workdir, CORPUS, "--configfile", "tiny.yaml", prefix=prefix)
    finally:
        if (workdir / "results" / "corpus").exists():
            (workdir / "results" / "corpus").chmod(0o755)
    console = result.stdout + result.stderr
    assert result.returncode != 0
    assert console.count("calcsig error (OutputWriteError): permission denied while writing results/corpus/") == 1
    assert "Traceback" not in console
