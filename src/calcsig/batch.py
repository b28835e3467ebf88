"""Run a stage over a batch of images or ROIs, and record what it wrote.

A Python process that imports the scientific stack costs about a second
before it does any work; with one process per image or ROI that overhead
dominates a run of small images. So per-image and per-ROI work runs in
batches: a batch job writes each item's files (each atomically, at its
contract path such as ``results/segment/{image_id}.npz``) and finishes by
writing a manifest, which is what the workflow tracks.

Three properties keep reruns exact and small:

- Stable batches (`chunk`): batch boundaries are chosen by the items' own IDs
  (content-defined chunking), not by their position, so adding or removing an
  item changes only the batch that holds it.
- Recorded content (`run_batch`): the manifest lists, per item, each file with
  the SHA-256 it was written with and the item's *recipe*, a digest of
  everything the item was computed from (its input files' digests, the stage's
  parameters and code). A change to any item file changes the manifest, and
  `calcsig.integrity.verify_results` removes a manifest whose files were
  deleted or damaged, so the batch runs again.
- Reuse: a batch job skips an item whose files already hold what its recipe
  asks for (listed, with the same recipe, by any manifest of the stage), so a
  new batch size, or a rerun caused by one item, recomputes nothing else.
A failed batch leaves no manifest, so it is rerun; its finished items are reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pandas as pd

from .integrity import DIGEST_COLUMN_SUFFIX, recorded_digest, sidecar_path, unchanged
from .paths import atomic_path

log = logging.getLogger(__name__)

RECIPE_COLUMN = "recipe"
# A batch never grows beyond this many times the requested size (a run of IDs without a boundary).
MAX_BATCH_FACTOR = 4
_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def batch_key(first_id: str) -> str:
    """Name of the batch that starts with `first_id`: the ID itself when it is a safe file name."""
    return first_id if _SAFE_KEY.match(first_id) else f"h{_hash64(first_id):016x}"


def chunk(ids: Sequence[str], size: int) -> dict[str, list[str]]:
    """Cut `ids` (in the given order, which the caller keeps stable) into batches of about `size`.

    A new batch starts at an ID whose hash is divisible by `size` (on average
    every `size` IDs), or when a batch reaches `MAX_BATCH_FACTOR * size`. Because
    boundaries depend on the IDs, not their positions, inserting or removing one
    ID changes only its own batch (or splits / merges it with a neighbour).
    Batches are keyed by their first ID (`batch_key`). size 1 gives one batch per ID.
    """
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    if len(set(ids)) != len(ids):
        raise ValueError("batch IDs must be unique")
    out: dict[str, list[str]] = {}
    current: list[str] = []
    for item in ids:
        if current and (_hash64(item) % size == 0 or len(current) >= MAX_BATCH_FACTOR * size):
            out[batch_key(current[0])] = current
            current = []
        current.append(item)
    if current:
        out[batch_key(current[0])] = current
    return out


def recipe(*parts) -> str:
    """Digest (hex) of JSON-serialisable `parts`: what one item is computed from."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def code_digest(paths: Iterable[str | Path]) -> str:
    """Digest of source files' contents (their names relative to each other do not matter)."""
    from .integrity import file_sha256

    return recipe(sorted(file_sha256(p) for p in paths))


def _journal(manifest: Path) -> Path:
    """Where a running batch records each finished item, so a killed batch resumes where it stopped."""
    return manifest.with_name(f".{manifest.name}.partial")


def _previous_rows(batch_dir: Path, id_column: str) -> dict[str, list[dict]]:
    """Rows of every manifest and journal in `batch_dir` (old batch sizes included), by item ID."""
    rows: dict[str, list[dict]] = {}
    for manifest in sorted(batch_dir.glob("*.tsv")):
        try:
            table = pd.read_csv(manifest, sep="\t", dtype=str, keep_default_na=False)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError):
            continue
        if id_column not in table.columns or RECIPE_COLUMN not in table.columns:
            continue
        for row in table.to_dict(orient="records"):
            rows.setdefault(row[id_column], []).append(row)
    for journal in sorted(batch_dir.glob(".*.partial")):
        for line in journal.read_text().splitlines():
            try:
                row = {k: str(v) for k, v in json.loads(line).items()}
            except (json.JSONDecodeError, AttributeError):
                continue  # a line cut short by a kill
            if id_column in row:
                rows.setdefault(row[id_column], []).append(row)
    return rows


def _intact(row: dict, files: dict[str, Path]) -> bool:
    """Whether every file of `files` is where `row` says, with the digest it records."""
    for name, path in files.items():
        listed, sha = row.get(name, ""), row.get(name + DIGEST_COLUMN_SUFFIX, "")
        if not listed and not sha:
            # the item wrote no such file (e.g. skipped by quality control); nothing must be there
            continue
        recorded = recorded_digest(path)
        if listed != str(path) or recorded is None or recorded.sha256 != sha or not unchanged(Path(path), recorded):
            return False
    return True


def run_batch(
    items: list[dict],
    work: Callable[[dict], dict],
    manifest: str | Path,
    *,
    id_column: str,
    files: Callable[[dict], dict[str, Path]],
    recipe_of: Callable[[dict], str],
) -> pd.DataFrame:
    """Compute each item of a batch (or reuse it), then write the batch manifest.

    items : one dict per item, with its ID under `id_column`.
    work(item) : computes the item, writes its files, returns extra manifest
        columns (counts, a quality-control reason, ...).
    files(item) : {column name: path} of the files the item writes.
    recipe_of(item) : the item's recipe (`recipe` of its inputs, parameters, code).
    The manifest (TSV, one row per item) holds the ID, each file's path and
    SHA-256 (`<name>`, `<name>_sha256`; empty when the item wrote no such file),
    the recipe, and the extra columns.
    """
    manifest = Path(manifest)
    previous = _previous_rows(manifest.parent, id_column)
    journal = _journal(manifest)
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.unlink(missing_ok=True)
    rows, reused = [], 0
    for item in items:
        item_id = str(item[id_column])
        wanted = recipe_of(item)
        paths = {name: Path(p) for name, p in files(item).items()}
        old = next((r for r in previous.get(item_id, []) if r.get(RECIPE_COLUMN) == wanted and _intact(r, paths)), None)
        if old is not None:
            rows.append(old)
            reused += 1
            continue
        for path in paths.values():  # a recomputed item starts from nothing: no stale file survives
            path.unlink(missing_ok=True)
            sidecar_path(path).unlink(missing_ok=True)
        extra = work(item)
        row: dict = {id_column: item_id}
        for name, path in paths.items():
            recorded = recorded_digest(path) if path.exists() else None
            row[name] = str(path) if recorded else ""
            row[name + DIGEST_COLUMN_SUFFIX] = recorded.sha256 if recorded else ""
        row[RECIPE_COLUMN] = wanted
        row.update({k: v for k, v in extra.items() if k not in row})
        log.info("%s", {k: v for k, v in row.items() if not k.endswith(DIGEST_COLUMN_SUFFIX)})
        rows.append(row)
        _append_journal(journal, row)
    if reused:
        log.info("%d of %d item(s) reused: their files already hold what their recipe asks for", reused, len(items))
    # fixed column order, whether items were computed or reused, so equal content gives equal bytes
    fixed = [id_column, *(c for name in files(items[0]) for c in (name, name + DIGEST_COLUMN_SUFFIX)), RECIPE_COLUMN]
    extra_columns = sorted({k for r in rows for k in r} - set(fixed)) if items else []
    table = pd.DataFrame(rows, columns=(fixed + extra_columns) if items else [id_column, RECIPE_COLUMN])
    with atomic_path(manifest) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    journal.unlink(missing_ok=True)
    return table


def _append_journal(journal: Path, row: dict) -> None:
    """Append one finished item (a JSON line) to the batch's journal."""
    with open(journal, "a") as fh:
        fh.write(json.dumps(row, default=str) + "\n")


def read_manifests(paths: Iterable[str | Path]) -> pd.DataFrame:
    """The rows of several batch manifests, in order."""
    frames = [pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False) for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
