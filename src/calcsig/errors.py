"""Exceptions that name the file, row or key at fault, and say what to do about it.

Every calcsig error is a `CalcsigError`: its message says what is wrong and
where (file, row, column, config key, image or ROI); its `hint` says how to fix
it. A workflow job prints such an error as one short block
(`calcsig.logs.error_block`) and keeps the traceback in the rule's log; any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os


class CalcsigError(Exception):
    """Base class: every calcsig error message is meant for a person to act on.

    hint : one sentence on how to fix it; the class default when not given.
    """

    hint = "Fix the input named above and rerun."

    def __init__(self, *args, hint: str | None = None):
        super().__init__(*args)
        if hint is not None:
            self.hint = hint


class ConfigError(CalcsigError):
    """A configuration key has a wrong type, an unknown name or a missing file,
    or keys contradict each other."""

    hint = (
        "Change the named key(s) in config.yaml or in the file given with --configfile; "
        "every key is documented in src/calcsig/schemas/config/."
    )


class ImageReadError(CalcsigError):
    """An image file is missing, unreadable or not a 2-D grayscale image; the message names the file."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class TableError(CalcsigError):
    """A corpus table breaks its schema. `problems` lists every offending row."""

    hint = "Correct the listed rows and rerun."

    def __init__(self, where: str, problems: list[str], hint: str | None = None):
        self.where = where
        self.problems = list(problems)
        shown = "\n".join(f"  - {p}" for p in self.problems[:200])
        more = len(self.problems) - 200
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{where}: {len(self.problems)} problem(s)\n{shown}{tail}", hint=hint)


class IngestError(TableError):
    """A source could not be turned into valid corpus tables."""

    hint = "Correct the listed rows or files of the source (corpus.path) and rerun; docs/manifest.md lists the columns."


class CorpusCheckError(TableError):
    """The corpus tables are valid but cannot support the configured run
    (e.g. one label only among the ROIs the models would learn from)."""

    hint = "Change the corpus or the config keys named above, then rerun; nothing after ingest has run."


class QCError(CalcsigError):
    """An image or ROI cannot be measured (calcsig.qc) and qc.on_bad_image is `fail`."""

    hint = (
        "Remove or replace the image or ROI in the source, or set qc.on_bad_image: skip to leave it out "
        "(it is then recorded in the QC table with reason failed_qc)."
    )


# What a person should read for the errno of a failed write; the rest keep the system's wording.
_WRITE_FAILURES = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for the file system or the process's file size limit",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EIO: "input/output error on the device",
}


class OutputWriteError(CalcsigError, OSError):
    """Writing an output failed (disk full, quota, read-only or forbidden folder); the message names the output.

    An OSError too, so code that handles OSError keeps working; `errno` is the original one.
    """

    hint = "Free space, or fix the permissions of the folder holding that output (or write elsewhere); then rerun."

    def __init__(self, path: str | os.PathLike, cause: OSError):
        self.path = str(path)
        self.cause = cause
        reason = _WRITE_FAILURES.get(cause.errno) or cause.strerror or str(cause)
        super().__init__(f"{reason} while writing {self.path}")
        self.errno = cause.errno
        self.strerror = reason
        self.filename = self.path

    def __str__(self) -> str:
        return str(self.args[0])


def is_write_failure(error: BaseException) -> bool:
    """Whether `error` is an OSError of the kinds a full, read-only or forbidden output folder raises."""
    if not isinstance(error, OSError) or isinstance(error, CalcsigError):
        return False
    # pyarrow and some compressors raise OSError without an errno, keeping only the text
    return error.errno in _WRITE_FAILURES or "No space left on device" in str(error)
