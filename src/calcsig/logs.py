"""Route a job's logging and warnings to its Snakemake log file; report calcsig errors as one short block."""

from __future__ import annotations

import contextlib
import logging
import sys

from .errors import CalcsigError
from .jobguard import stop_when_orphaned

# the line naming the calcsig modules a job ran (see `loaded_modules`): last in a job's log,
# or just before the error block of a job that stopped on a calcsig error
MODULES_LINE = "calcsig modules loaded:"


def error_block(error: CalcsigError, log_path: str | None = None) -> str:
    """The short report of a calcsig error: what and where (its message), how to fix it, where the traceback is.

    >>> print(error_block(CalcsigError("a.csv row 3: no label", hint="Give each row a label."), "logs/x.log"))
    calcsig error (CalcsigError): a.csv row 3: no label
    How to fix: Give each row a label.
    The traceback is in logs/x.log.
    """
    lines = [f"calcsig error ({type(error).__name__}): {error}", f"How to fix: {error.hint}"]
    if log_path:
        lines.append(f"The traceback is in {log_path}.")
    return "\n".join(lines)


@contextlib.contextmanager
def log_to(path: str, level: int = logging.INFO):
    """Send the root logger and Python warnings to `path` for the duration of a job.

    Library warnings (pyradiomics, LightGBM, scikit-learn) then land in the
    rule's log instead of the console.

    A calcsig error (CalcsigError and subclasses) ends the job with one short
    block (`error_block`) on stderr and exit status 1: the log gets the
    traceback first and the same block last. Any other exception is a bug: it
    is logged with its traceback and re-raised, so Python prints the traceback
    too. Meant for the body of a workflow script, which has nothing to do after
    an error.
    """
    stop_when_orphaned()
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    log = logging.getLogger("calcsig")
    try:
        yield log
    except CalcsigError as error:
        # INFO, not DEBUG: the log is written at INFO and the traceback must be in it for a developer
        log.info("traceback of the error reported below", exc_info=True)
        _log_modules(log)
        block = error_block(error, path)
        log.error("%s", block)
        print(block, file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    except Exception:
        _log_modules(log)
        log.exception("job failed")
        raise
    else:
        _log_modules(log)
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()


def _log_modules(log: logging.Logger) -> None:
    # what the job really imported: the workflow's code inputs must cover it (tests check)
    log.info("%s %s", MODULES_LINE, " ".join(loaded_modules()))


def loaded_modules() -> list[str]:
    """The calcsig modules imported in this process, sorted."""
    return sorted(name for name in sys.modules if name == "calcsig" or name.startswith("calcsig."))
