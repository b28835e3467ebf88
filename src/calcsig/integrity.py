"""Content digests of the files calcsig writes, and the check that they still hold.

Every output written through `calcsig.paths.atomic_path` gets a small hidden
sidecar beside it, ``.<name>.sha256``, holding the SHA-256 and size of what was
written. Snakemake decides what to rerun from modification times, parameters
and code; it cannot see that a result was truncated or edited after it was
written, nor that a file listed by a batch manifest was deleted. Before the
workflow plans a run it calls `verify_results`, which finds such files and
removes them (and the manifests that list them), so that the plan rebuilds
them instead of feeding a damaged file to the next stage.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

HASH_CHUNK_BYTES = 1 << 20
SIDECAR_SUFFIX = ".sha256"
# Manifest columns that name the files a batch item wrote end with this suffix's partner:
# a column `<name>` holding a path has its digest in `<name>_sha256`.
DIGEST_COLUMN_SUFFIX = "_sha256"


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar_path(target: str | os.PathLike) -> Path:
    """Where the digest of `target` is recorded: ``.<name>.sha256`` in the same folder."""
    target = Path(target)
    return target.with_name(f".{target.name}{SIDECAR_SUFFIX}")


def is_sidecar(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(SIDECAR_SUFFIX)


@dataclass(frozen=True)
class Digest:
    """What was written: SHA-256 (hex) and size in bytes."""

    sha256: str
    size: int

    def line(self) -> str:
        return f"{self.sha256} {self.size}\n"

    @classmethod
    def parse(cls, text: str) -> Digest | None:
        parts = text.split()
        if len(parts) != 2 or len(parts[0]) != 64 or not parts[1].isdigit():
            return None
        return cls(parts[0], int(parts[1]))

    @classmethod
    def of(cls, path: str | os.PathLike) -> Digest:
        return cls(file_sha256(path), os.stat(path).st_size)


def recorded_digest(target: str | os.PathLike) -> Digest | None:
    """The digest recorded for `target`, or None when there is none (or it is unreadable)."""
    try:
        return Digest.parse(sidecar_path(target).read_text())
    except OSError:
        return None


def unchanged(target: Path, digest: Digest, since_ns: int | None = None) -> bool:
    """Whether `target` still holds what `digest` describes.

    The size is always compared; the content is hashed only when the file was
    modified after `since_ns` (nanoseconds since the epoch; by default the
    modification time of its sidecar), so checking a finished run costs one
    `stat` per file.
    """
    try:
        stat = target.stat()
    except FileNotFoundError:
        return False
    if stat.st_size != digest.size:
        return False
    if since_ns is None:
        try:
            since_ns = sidecar_path(target).stat().st_mtime_ns
        except FileNotFoundError:
            since_ns = 0
    return stat.st_mtime_ns <= since_ns or file_sha256(target) == digest.sha256


def interrupted_outputs(snakemake_dir: str | os.PathLike = ".snakemake") -> list[Path]:
    """Outputs of jobs Snakemake started but never saw finish, from its incomplete markers.

    Snakemake marks a job's outputs incomplete when it starts the job and clears
    the mark when it records the job as finished. When Snakemake itself is
    killed, a job may still finish and write its outputs, with the settings of
    the killed run, while the marks stay. Snakemake reruns marked outputs only
    for jobs it plans before its checkpoints resolve; this workflow's per-image
    and later stages come after the corpus checkpoint, so the marks are read
    here (Snakemake's file-based persistence: one file per output under
    `incomplete/`, named by the URL-safe base64 of the path, long names split into
    folders with an '@' in front of each part but the last).
    """
    root = Path(snakemake_dir) / "incomplete"
    found = []
    if not root.is_dir():
        return found
    for dirpath, _, names in os.walk(root):
        parts = Path(dirpath).relative_to(root).parts
        for name in names:
            if name == "migration_underway":
                continue
            encoded = "".join(p.lstrip("@") for p in (*parts, name))
            try:
                found.append(Path(base64.urlsafe_b64decode(encoded.encode()).decode()))
            except (binascii.Error, UnicodeDecodeError):
                continue
    return sorted(found)


def verify_results(root: str | os.PathLike, manifest_globs: tuple[str, ...] = ()) -> list[str]:
    """Remove damaged results under `root`; return one message per removal.

    - A file whose content no longer matches its recorded digest (truncated,
      edited, replaced) is removed with its sidecar.
    - A sidecar whose file is gone is removed, and so is a temporary file a
      killed writer left behind (call this only while no run works in `root`).
    - An output of a job that a killed Snakemake never saw finish
      (`interrupted_outputs`) is removed: it may hold the killed run's settings.
    - A batch manifest (paths matching `manifest_globs`, relative to the working
      directory) that lists a file which is missing or changed is removed, so its
      batch is run again; the batch job then reuses every item that is intact.
    """
    root = Path(root)
    messages: list[str] = []
    if not root.is_dir():
        return messages
    for output in interrupted_outputs():
        if output.exists() and output.resolve().is_relative_to(root.resolve()):
            output.unlink()
            sidecar_path(output).unlink(missing_ok=True)
            messages.append(
                f"{output}: written by a job whose run was killed before it finished; removed to rebuild it"
            )
    for dirpath, _, names in os.walk(root):
        for name in names:
            sidecar = Path(dirpath) / name
            if name.startswith(".") and name.endswith(".tmp"):
                sidecar.unlink(missing_ok=True)  # left by a writer that was killed: never a result
                continue
            if not is_sidecar(sidecar):
                continue
            target = sidecar.with_name(name[1 : -len(SIDECAR_SUFFIX)])
            digest = recorded_digest(target)
            if not target.exists():
                sidecar.unlink(missing_ok=True)
                continue
            if digest is None or not unchanged(target, digest):
                target.unlink(missing_ok=True)
                sidecar.unlink(missing_ok=True)
                messages.append(f"{target}: changed after it was written (truncated or edited); removed to rebuild it")
    for pattern in manifest_globs:
        for manifest in sorted(Path().glob(pattern)):
            broken = broken_manifest_entries(manifest)
            if broken:
                manifest.unlink(missing_ok=True)
                sidecar_path(manifest).unlink(missing_ok=True)
                messages.append(
                    f"{manifest}: {len(broken)} listed file(s) missing or changed (e.g. {broken[0]}); "
                    "removed so the batch runs again"
                )
    return messages


def broken_manifest_entries(manifest: str | os.PathLike) -> list[str]:
    """Files a batch manifest lists that are missing or no longer hold the digest it recorded.

    Run after the sidecar check of `verify_results`, which has already removed
    damaged files: a listed file is intact when it exists and its sidecar records
    the digest the manifest lists.
    """
    import pandas as pd  # deferred: atomic writers import this module and need no pandas

    manifest = Path(manifest)
    try:
        table = pd.read_csv(manifest, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return [str(manifest)]
    broken = []
    for column in [c for c in table.columns if c.endswith(DIGEST_COLUMN_SUFFIX)]:
        path_column = column[: -len(DIGEST_COLUMN_SUFFIX)]
        if path_column not in table.columns:
            continue
        for path, sha in zip(table[path_column], table[column]):
            if not path:
                continue
            recorded = recorded_digest(path)
            if not Path(path).exists() or recorded is None or recorded.sha256 != sha:
                broken.append(path)
    return broken
