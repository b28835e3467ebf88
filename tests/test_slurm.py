"""The SLURM profile on a real single-node Slurm cluster (tests/slurm/start_cluster.sh).

The tiny config runs through `--profile profiles/slurm` as README's SLURM section
says, plus only what a test must add: the account (SBATCH_ACCOUNT, as a user
sets it) and keeping the per-job logs of successful jobs, to inspect them.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from test_resume import result_digests

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
CLUSTER_SCRIPTS = REPO / "tests" / "slurm"
# start_cluster.sh gives the user a default account and this second one, which
# only an explicit account setting selects
PROFILE_ACCOUNT = "calcsig-ci"
TINY = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
WIDER_BAND = {"masks": {"background_band_mm": 2.0}}
# the profile's promise for a cancelled or failed job
NOTICED_WITHIN_S = 60
# start_cluster.sh: KillWait=10 between scancel's SIGTERM and SIGKILL
KILL_WAIT_S = 10

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]


# --- the cluster ---------------------------------------------------------------------------------------------------


def cluster_is_up() -> bool:
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "UP" in ping.stdout


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running cluster: the one already up, or one started here and stopped afterwards."""
    pytest.importorskip("snakemake_executor_plugin_slurm", reason='the SLURM plugin is not installed (".[slurm]")')
    if shutil.which("sbatch") is None or not Path("/usr/sbin/slurmctld").exists():
        pytest.skip("Slurm is not installed: tests/ci_packages.sh installs it (root, apt-get)")
    started_here = False
    if not cluster_is_up():
        start = subprocess.run(
            ["bash", str(CLUSTER_SCRIPTS / "start_cluster.sh")], capture_output=True, text=True, timeout=300
        )
        if start.returncode != 0:
            pytest.skip(f"the Slurm daemons did not start:\n{start.stdout[-1000:]}{start.stderr[-3000:]}")
        started_here = True
    yield
    if started_here:
        subprocess.run(["bash", str(CLUSTER_SCRIPTS / "stop_cluster.sh")], capture_output=True, timeout=300)


# --- running the workflow ------------------------------------------------------------------------------------------


def deploy(workdir: Path, *overrides: dict) -> Path:
    """A working directory holding config.yaml and the partial configs, applied in the order given."""
    workdir.mkdir(parents=True)
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    for override in overrides:
        add_config(workdir, override)
    return workdir


def add_config(workdir: Path, override: dict) -> None:
    """One more partial config, applied after those already there."""
    (workdir / f"override{len(overrides_of(workdir)) + 1}.yaml").write_text(yaml.safe_dump(override))


def overrides_of(workdir: Path) -> list[str]:
    return sorted((p.name for p in workdir.glob("override*.yaml")), key=lambda name: int(name[8:-5]))


def configfiles(workdir: Path) -> list[str]:
    return ["--configfile", *overrides_of(workdir)]


def local_run(workdir: Path) -> None:
    result = subprocess.run(
        [*SNAKEMAKE, "--cores", "2", *configfiles(workdir)], cwd=workdir, capture_output=True, text=True
    )
    assert result.returncode == 0, f"local run failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"


def cluster_env() -> dict:
    """The caller's environment with the account a user would export; no partition (the cluster's default)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SNAKEMAKE_"))}
    env["SBATCH_ACCOUNT"] = PROFILE_ACCOUNT
    return env


def cluster_command(workdir: Path, targets: tuple[str, ...] = ()) -> list[str]:
    return [
        *SNAKEMAKE,
        *targets,
        "--profile",
        str(REPO / "profiles" / "slurm"),
        *configfiles(workdir),
        "--slurm-keep-successful-logs",
    ]


def cluster_run(workdir: Path) -> str:
    """Run to the end under the SLURM profile; snakemake's output."""
    result = subprocess.run(cluster_command(workdir), cwd=workdir, capture_output=True, text=True, env=cluster_env())
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"cluster run failed:\n{output[-8000:]}"
    return output


def run_id(output: str) -> str:
    found = re.search(r"SLURM run ID: (\S+)", output)
    assert found, f"no SLURM run ID in snakemake's output:\n{output[-3000:]}"
    return found.group(1)


# a rule's job is named by its number (a group job, which the profile does not use, by a UUID)
SUBMITTED = re.compile(r"Job ([\w-]+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")


def submissions(output: str) -> dict[str, Path]:
    """SLURM job id -> its log file, from the plugin's 'has been submitted' lines."""
    return {m.group(2): Path(m.group(3)) for m in SUBMITTED.finditer(output)}


def snakemake_job(output: str, slurm_job: str) -> str:
    """The snakemake job id that SLURM job `slurm_job` runs."""
    return next(m.group(1) for m in SUBMITTED.finditer(output) if m.group(2) == slurm_job)


def accounting(name: str, fields=("JobIDRaw", "State", "Account", "End")) -> list[dict]:
    """sacct's records (job allocations only) of the jobs named `name`, the plugin's run ID."""
    out = subprocess.run(
        ["sacct", "-X", "-n", "-P", "--name", name, "-S", "now-1days", "-o", ",".join(fields)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line]


def assert_same_results(actual: Path, expected: Path) -> None:
    got, want = result_digests(actual), result_digests(expected)
    assert sorted(got) == sorted(want), f"files differ: only in {actual}: {sorted(set(got) - set(want))[:10]}, " + (
        f"only in {expected}: {sorted(set(want) - set(got))[:10]}"
    )
    differing = sorted(path for path in got if got[path] != want[path])
    assert not differing, f"{len(differing)} of {len(got)} files differ, e.g. {differing[:10]}"


# --- watching a run in progress ------------------------------------------------------------------------------------


class Watched:
    """A snakemake run in the background whose combined output is read as it grows."""

    def __init__(self, workdir: Path, *targets: str):
        self.log = workdir / "snakemake-output.txt"
        self.slurm_name = None  # the plugin's run ID, once known
        self._sink = self.log.open("w")
        self.process = subprocess.Popen(
            cluster_command(workdir, targets),
            cwd=workdir,
            stdout=self._sink,
            stderr=subprocess.STDOUT,
            env=cluster_env(),
        )

    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match:
        """The first match of `pattern` in the output; fails when the run ends or `timeout_s` passes without it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output())
            if found:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(f"{pattern!r} not in snakemake's output after {timeout_s} s:\n{self.output()[-6000:]}")

    def finish(self, timeout_s: float) -> int:
        return self.process.wait(timeout=timeout_s)

    def stop(self) -> None:
        """Leave nothing behind: interrupt snakemake (it scancels its jobs), kill it if it will not stop."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.slurm_name:
            subprocess.run(["scancel", "--name", self.slurm_name], capture_output=True)
        self._sink.close()


def wait_until_running(job_id: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while squeue_state(job_id) != "RUNNING":
        assert time.monotonic() < deadline, f"job {job_id} was not running within {timeout_s} s"
        time.sleep(0.5)


def squeue_state(job_id: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout.strip()


def a_running_job(name: str, timeout_s: float) -> str:
    """The id of a job named `name` (the plugin's run ID) that Slurm reports as running."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["squeue", "-h", "--name", name, "--states", "RUNNING", "-o", "%i"], capture_output=True, text=True
        ).stdout
        if out.split():
            return out.split()[0]
        time.sleep(0.5)
    raise AssertionError(f"no job of run {name} was running within {timeout_s} s")


def job_processes(job_id: str, step_timeout_s: float) -> dict[int, str]:
    """pid -> command line of every process Slurm tracks for the job, once its step 0 (the srun that runs the
    rule) has started; here, on the cluster's only node."""
    deadline = time.monotonic() + step_timeout_s
    while True:
        out = subprocess.run(["scontrol", "listpids", job_id], capture_output=True, text=True).stdout
        rows = [line.split() for line in out.splitlines()[1:] if line.split() and line.split()[0].isdigit()]
        if any(row[2] == "0" for row in rows) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return {int(row[0]): cmdline for row in rows if (cmdline := command_line(int(row[0])))}


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def survivors(processes: dict[int, str]) -> dict[int, str]:
    """Those of `processes` still alive (same pid, same command line)."""
    return {pid: cmd for pid, cmd in processes.items() if command_line(pid) == cmd}


def cancel_and_time_the_report(run: Watched, job_id: str) -> tuple[float, str]:
    """scancel `job_id`; seconds until snakemake reports the failure, and the report's line."""
    cancelled_at = time.monotonic()
    subprocess.run(["scancel", job_id], check=True)
    report = run.wait_for(rf"SLURM-job '{job_id}' failed[^\n]*", timeout_s=5 * NOTICED_WITHIN_S)
    return time.monotonic() - cancelled_at, report.group(0)


# --- the runs ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory, finished_tiny_run):
    """The tiny config locally (--cores 2, the session's finished run) and through the SLURM profile."""
    root = tmp_path_factory.mktemp("slurm")
    local = finished_tiny_run
    cluster = deploy(root / "cluster", TINY)
    output = cluster_run(cluster)
    return {"root": root, "local": local, "cluster": cluster, "output": output}


def test_every_job_of_a_profile_run_goes_through_sbatch_under_the_given_account(runs):
    output, workdir = runs["output"], runs["cluster"]
    submitted = submissions(output)
    records = accounting(run_id(output))
    assert submitted and {r["JobIDRaw"] for r in records} == set(submitted)
    assert {r["State"] for r in records} == {"COMPLETED"}
    assert {r["Account"] for r in records} == {PROFILE_ACCOUNT}
    # one log per job under .snakemake/slurm_logs, each the job's own snakemake run
    logs = sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert sorted(submitted.values()) == logs
    for log in logs:
        text = log.read_text()
        assert "Finished jobid" in text or "1 of 1 steps (100%) done" in text, log
        assert "--cores all" in text and "--cores 2" not in text, f"{log} ran with the local profile's cores"


JOB_PLAN = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):\n(.*?)\n\s*Shell command", re.M | re.S)


def planned_jobs(output: str) -> dict[str, tuple[str, int]]:
    """Snakemake job id -> (rule, threads) from the job descriptions snakemake prints (`threads:` only above 1)."""
    jobs = {}
    for rule, body in JOB_PLAN.findall(output):
        jobid = re.search(r"^\s*jobid: (\d+)$", body, re.M)
        threads = re.search(r"^\s*threads: (\d+)$", body, re.M)
        if jobid:
            jobs[jobid.group(1)] = (rule, int(threads.group(1)) if threads else 1)
    return jobs


def test_the_jobs_that_see_the_whole_corpus_get_a_nodes_cores_and_the_others_one(runs):
    output = runs["output"]
    planned = planned_jobs(output)
    requested = {r["JobIDRaw"]: int(r["ReqCPUS"]) for r in accounting(run_id(output), ("JobIDRaw", "ReqCPUS"))}
    by_rule: dict[str, set] = {}
    for slurm_job in submissions(output):
        rule, threads = planned[snakemake_job(output, slurm_job)]
        by_rule.setdefault(rule, set()).add((threads, requested[slurm_job]))
    # NODE_CORES is 2 without CALCSIG_NODE_CORES (README); Slurm is asked for as many CPUs as threads
    for rule in ("partition", "train_selector", "evaluate_segmentation", "gather_features"):
        assert by_rule[rule] == {(2, 2)}, (rule, by_rule)
    for rule in ("segment", "masks", "features", "model_fold"):
        assert by_rule[rule] == {(1, 1)}, (rule, by_rule)


def test_a_profile_run_gives_the_same_bytes_as_a_local_run(runs):
    assert_same_results(runs["cluster"], runs["local"])


@pytest.fixture(scope="module")
def cancellation(runs):
    """A changed-parameter run in a copy of the cluster run in which the first running job is cancelled, then its
    retry too; what was seen, for the tests below."""
    workdir = runs["root"] / "cancelled"
    shutil.copytree(runs["cluster"], workdir, symlinks=True)
    add_config(workdir, WIDER_BAND)
    seen = {"workdir": workdir}
    run = Watched(workdir)
    try:
        name = run_id(run.wait_for(r"SLURM run ID: \S+", timeout_s=120).group(0))
        run.slurm_name = name
        victim = a_running_job(name, timeout_s=300)
        processes = job_processes(victim, step_timeout_s=120)
        seen["first"] = {"job": victim, "processes": processes}
        seen["first"]["noticed_s"], seen["first"]["report"] = cancel_and_time_the_report(run, victim)
        deadline = time.monotonic() + KILL_WAIT_S + 30
        while survivors(processes) and time.monotonic() < deadline:
            time.sleep(0.5)
        seen["first"]["survivors"] = survivors(processes)

        job = snakemake_job(run.output(), victim)
        run.wait_for(rf"Trying to restart job {job}\.", timeout_s=30)
        second = run.wait_for(rf"Job {job} has been submitted with SLURM jobid (?!{victim}\b)(\d+)", 120).group(1)
        wait_until_running(second, timeout_s=300)
        seen["second"] = {"job": second}
        seen["second"]["noticed_s"], seen["second"]["report"] = cancel_and_time_the_report(run, second)
        seen["exit_code"] = run.finish(timeout_s=600)
    finally:
        run.stop()
    seen["output"] = run.output()
    return seen


def test_a_cancelled_job_is_reported_with_its_slurm_state_within_a_minute(cancellation):
    for attempt in ("first", "second"):
        seen = cancellation[attempt]
        assert "SLURM status is: 'CANCELLED'" in seen["report"], seen["report"]
        assert seen["noticed_s"] < NOTICED_WITHIN_S, f"{attempt} cancellation noticed after {seen['noticed_s']:.0f} s"


def test_a_cancelled_jobs_slurm_log_is_kept_and_named_in_the_report(cancellation):
    output = cancellation["output"]
    for attempt in ("first", "second"):
        job = cancellation[attempt]["job"]
        log = submissions(output)[job]
        report = output.split(f"SLURM-job '{job}' failed")[1].split("Error in rule")[0]
        assert log.is_file() and str(log) in report, (job, report[:2000])


def test_no_process_of_a_cancelled_job_outlives_it(cancellation):
    first = cancellation["first"]
    # the batch shell, the job's snakemake, srun, the step's snakemake and the rule's script
    assert len(first["processes"]) >= 3, first["processes"]
    assert first["survivors"] == {}, f"outlived scancel {first['job']}: {first['survivors']}"


def test_a_cancelled_job_is_retried_once_and_a_second_failure_ends_the_run(cancellation):
    output = cancellation["output"]
    assert output.count("Trying to restart job") == 1, output[-4000:]
    assert cancellation["exit_code"] != 0, output[-4000:]
    assert "Exiting because a job execution failed" in output, output[-4000:]


def test_a_resume_after_the_cancellation_gives_the_bytes_of_a_clean_run_of_the_changed_config(runs, cancellation):
    workdir = cancellation["workdir"]
    cluster_run(workdir)
    clean = deploy(runs["root"] / "clean_changed", TINY, WIDER_BAND)
    local_run(clean)
    assert_same_results(workdir, clean)


# --- a job that fails ----------------------------------------------------------------------------------------------

REPORT = re.compile(
    r"\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]\nError in rule \w+:\n    message: SLURM-job '(\d+)' failed"
)


def test_a_failing_job_is_reported_with_its_slurm_state_and_error_within_a_minute_and_retried_once(
    slurm_cluster, tmp_path
):
    # a manifest whose image does not exist: the corpus job fails on the node, naming the row
    workdir = deploy(tmp_path / "failing", {"corpus": {"source": "csv", "path": "manifest.csv"}})
    (workdir / "manifest.csv").write_text("image_id,subject_id,image_path,label\nIMG1,S1,missing.png,benign\n")
    run = Watched(workdir, "results/corpus/images.tsv")
    try:
        exit_code = run.finish(timeout_s=600)
    finally:
        run.stop()
    output = run.output()
    assert exit_code != 0 and output.count("Trying to restart job") == 1, output[-4000:]

    reports = {m.group(2): datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y") for m in REPORT.finditer(output)}
    assert sorted(reports) == sorted(submissions(output)) and len(reports) == 2, output[-4000:]
    ended = {r["JobIDRaw"]: r for r in accounting(run_id(output))}
    for job, reported_at in reports.items():
        assert ended[job]["State"] == "FAILED"
        assert f"SLURM-job '{job}' failed, SLURM status is: 'FAILED'" in output
        noticed_s = (reported_at - datetime.fromisoformat(ended[job]["End"])).total_seconds()
        assert noticed_s < NOTICED_WITHIN_S, f"job {job} failure reported {noticed_s:.0f} s after it ended"
        # the job's Slurm log, shown in the report, says what went wrong
        assert (
            "manifest.csv row(s) 2, column 'image_path': missing.png: no such file"
            in submissions(output)[job].read_text()
        )
    assert "missing.png: no such file" in output
