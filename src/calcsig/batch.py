"""Run a stage over a batch of images or ROIs, and record what it wrote.

A Python process that imports the scientific stack costs about a second
before it does any work; with one process per image or ROI that overhead
dominates a run of small images. Per-item files keep their contract paths
(`results/segment/{image_id}.tsv`, ...); a batch job writes them one by one
(each atomically) and finishes by writing a manifest, which is what the
workflow tracks. A failed batch leaves no manifest, so it is rerun whole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from .paths import atomic_path

log = logging.getLogger(__name__)


def batches(ids: Iterable[str], size: int) -> dict[str, list[str]]:
    """Sorted `ids` cut into consecutive batches of `size`, keyed "0000", "0001", ...

    size 1 gives one batch per item (one job per image or ROI).
    """
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    ordered = sorted(ids)
    return {f"{i // size:04d}": ordered[i : i + size] for i in range(0, len(ordered), size)}


def run_batch(items: list, work: Callable[[object], dict], manifest: str | Path) -> pd.DataFrame:
    """Call `work(item)` for each item (each returns one manifest row); write the manifest last.

    The manifest is a TSV with one row per item: the files written and what
    the stage wants recorded (object counts, ...).
    """
    rows = []
    for item in items:
        row = work(item)
        log.info("%s", row)
        rows.append(row)
    table = pd.DataFrame(rows)
    with atomic_path(manifest) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    return table


def read_manifests(paths: Iterable[str | Path]) -> pd.DataFrame:
    """The rows of several batch manifests, in order."""
    frames = [pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False) for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
