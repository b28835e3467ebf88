"""Where the repository's shipped files live, and atomic file writing."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import OutputWriteError, is_write_failure
from .integrity import Digest, sidecar_path

# The schemas (config, corpus tables) and the shipped parameter files are package
# data: an installed calcsig, editable or not, finds them beside its modules.
PACKAGE_DIR = Path(__file__).resolve().parent
SCHEMA_DIR = PACKAGE_DIR / "schemas"
RESOURCE_DIR = PACKAGE_DIR / "resources"


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a temporary path beside `target`; move it into place only on success.

    A failed writer leaves nothing at `target`, so a half-written file can never
    be mistaken for a valid output. The digest of what was written is recorded
    beside it (`calcsig.integrity`), so a later change to the file is noticed.
    A write that fails because the disk is full,
    over quota, read-only or forbidden raises calcsig.errors.OutputWriteError
    naming `target` ("no space left on device while writing <target>"); other
    errors pass through unchanged.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        if is_write_failure(error):
            raise OutputWriteError(target, error) from error
        raise
    os.close(fd)
    # mkstemp makes the file private (0600); outputs get the usual umask-based mode
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        _record_digest(Path(tmp), target)
        os.replace(tmp, target)
    except OSError as error:
        if is_write_failure(error):
            raise OutputWriteError(target, error) from error
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _record_digest(written: Path, target: Path) -> None:
    """Write the sidecar of `target` (digest of `written`, about to replace it), atomically."""
    sidecar = sidecar_path(target)
    tmp = sidecar.with_name(f"{sidecar.name}.tmp")
    tmp.write_text(Digest.of(written).line())
    os.replace(tmp, sidecar)
