"""Route a job's logging and warnings to its Snakemake log file."""

from __future__ import annotations

import contextlib
import logging


@contextlib.contextmanager
def log_to(path: str, level: int = logging.INFO):
    """Send the root logger and Python warnings to `path` for the duration of a job.

    Library warnings (pyradiomics, LightGBM, scikit-learn) then land in the
    rule's log instead of the console.
    """
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
        logging.captureWarnings(False)
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()
