"""Route a job's logging and warnings to its Snakemake log file."""

from __future__ import annotations

import contextlib
import logging
import sys

from .jobguard import stop_when_orphaned

# the line each job log ends with, naming the calcsig modules the job ran (see `loaded_modules`)
MODULES_LINE = "calcsig modules loaded:"


@contextlib.contextmanager
def log_to(path: str, level: int = logging.INFO):
    """Send the root logger and Python warnings to `path` for the duration of a job.

    Library warnings (pyradiomics, LightGBM, scikit-learn) then land in the
    rule's log instead of the console.
    """
    stop_when_orphaned()
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    try:
        yield logging.getLogger("calcsig")
    except Exception:
        logging.getLogger("calcsig").exception("job failed")
        raise
    finally:
        # what the job really imported: the workflow's code inputs must cover it (tests check)
        logging.getLogger("calcsig").info("%s %s", MODULES_LINE, " ".join(loaded_modules()))
        logging.captureWarnings(False)
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()


def loaded_modules() -> list[str]:
    """The calcsig modules imported in this process, sorted."""
    return sorted(name for name in sys.modules if name == "calcsig" or name.startswith("calcsig."))
