"""A job never outlives the Snakemake process that started it.

When Snakemake is killed (SIGKILL, an out-of-memory kill, a cancelled cluster
job), the jobs it started are not: they are orphaned and run on. An orphan that
finishes after the user has resumed, perhaps with a changed parameter, would
write a result of the old settings over the new one. Each workflow job
therefore watches its Snakemake ancestor and stops when it is gone: first by
interrupting the job (so its temporary files are removed), then, if that does
not end it within a grace period, by killing it. Outputs are written
atomically, so a stopped job leaves nothing half-written.
"""

from __future__ import annotations

import _thread
import os
import signal
import threading
import time
from pathlib import Path

POLL_SECONDS = 1.0
GRACE_SECONDS = 10.0


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (Linux), or None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def _start_time(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[19] if fields else None  # field 22 of stat: start time, in clock ticks since boot


def _parent(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None  # field 4 of stat: the parent's pid


def _is_snakemake(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    # `snakemake ...`, `/venv/bin/snakemake ...` or `python -m snakemake ...`
    return any(Path(a.decode(errors="replace")).name == "snakemake" for a in argv[:3])


def snakemake_ancestor(pid: int | None = None) -> tuple[int, str] | None:
    """(pid, start time) of the nearest Snakemake process above `pid` (this process), or None."""
    current = _parent(os.getpid() if pid is None else pid)
    while current and current > 1:
        if _is_snakemake(current):
            start = _start_time(current)
            return (current, start) if start else None
        current = _parent(current)
    return None


def alive(ancestor: tuple[int, str]) -> bool:
    """Whether the process is still the one we saw (a reused pid has another start time)."""
    return _start_time(ancestor[0]) == ancestor[1]


def stop_when_orphaned(poll_seconds: float = POLL_SECONDS, grace_seconds: float = GRACE_SECONDS) -> bool:
    """Watch this job's Snakemake ancestor from a daemon thread; returns whether there is one to watch.

    Without a Snakemake ancestor (the library called from a notebook or a test)
    nothing is watched.
    """
    if not Path("/proc/self/stat").exists():
        return False
    ancestor = snakemake_ancestor()
    if ancestor is None:
        return False

    def watch():
        while alive(ancestor):
            time.sleep(poll_seconds)
        _thread.interrupt_main()  # KeyboardInterrupt in the job: atomic writers remove their temporary files
        time.sleep(grace_seconds)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="calcsig-orphan-watch", daemon=True).start()
    return True
