"""A job stops when the Snakemake process that started it is killed, instead of running on as an orphan."""

import os
import signal
import subprocess
import sys
import textwrap
import time

from calcsig.jobguard import alive, snakemake_ancestor, stop_when_orphaned

JOB = textwrap.dedent(
    """
    import sys, time
    from calcsig.jobguard import stop_when_orphaned
    watched = stop_when_orphaned(poll_seconds=0.1, grace_seconds=1.0)
    print("watching" if watched else "alone", flush=True)
    try:
        while True:
            time.sleep(0.05)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        raise
    """
)


def fake_snakemake(tmp_path):
    """A process named `snakemake` that starts a job through a shell, as Snakemake runs scripts."""
    (tmp_path / "job.py").write_text(JOB)
    launcher = tmp_path / "snakemake"
    launcher.write_text(
        f"#!{sys.executable}\n"
        "import subprocess, sys\n"
        f"subprocess.run(['bash', '-c', '{sys.executable} {tmp_path / 'job.py'} > {tmp_path / 'job.out'}'])\n"
    )
    launcher.chmod(0o755)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([str(launcher)], env=env)


def wait_for(predicate, seconds=20.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def job_pids():
    out = subprocess.run(["pgrep", "-f", "job.py"], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out if int(p) != os.getpid()]


def test_a_job_whose_snakemake_is_killed_stops_within_seconds(tmp_path):
    launcher = fake_snakemake(tmp_path)
    assert wait_for(lambda: (tmp_path / "job.out").exists() and "watching" in (tmp_path / "job.out").read_text())
    assert job_pids()
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    assert wait_for(lambda: not job_pids(), seconds=10), "the orphaned job is still running"
    assert "interrupted" in (tmp_path / "job.out").read_text()


def test_outside_a_workflow_nothing_is_watched():
    assert snakemake_ancestor() is None
    assert stop_when_orphaned() is False


def test_a_live_process_is_recognised_and_a_reused_pid_is_not():
    me = (os.getpid(), open(f"/proc/{os.getpid()}/stat").read().rsplit(")", 1)[1].split()[19])
    assert alive(me)
    assert not alive((os.getpid(), "0"))
