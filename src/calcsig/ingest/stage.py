"""Ingest entry point: run the configured adapter, validate, write the corpus tables."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import pandas as pd

from ..paths import atomic_path
from ..tables import validate_corpus, write_tables
from .common import SKIPPED_COLUMNS

log = logging.getLogger(__name__)

ADAPTERS = {
    "synthetic": "calcsig.ingest.synthetic:ingest_synthetic",
    "mini_mias": "calcsig.ingest.mini_mias:ingest_mini_mias",
    "cbis_ddsm": "calcsig.ingest.cbis_ddsm:ingest_cbis_ddsm",
    "csv": "calcsig.ingest.csv_manifest:ingest_csv",
    "dicom_dir": "calcsig.ingest.dicom_dir:ingest_dicom_dir",
}


def adapter_module(source: str) -> str:
    """Dotted name of the module that reads `source`."""
    if source not in ADAPTERS:
        raise ValueError(f"unknown corpus source {source!r}; expected one of {sorted(ADAPTERS)}")
    return ADAPTERS[source].partition(":")[0]


def adapter(source: str):
    """The ingest function of `source` (imported lazily: each pulls in its own readers)."""
    module = importlib.import_module(adapter_module(source))
    return getattr(module, ADAPTERS[source].partition(":")[2])


def source_files(source: str, path: str | None, params: dict) -> list[Path]:
    """The files whose content the corpus of `source` is read from (each adapter's `source_files`)."""
    return importlib.import_module(adapter_module(source)).source_files(Path(path) if path else None, params)


def build_corpus(
    source: str, path: str | None, params: dict, out_dir: str | Path, outputs: dict, workers: int = 1
) -> dict:
    """Ingest `source` into validated tables written to `outputs` (keys images, rois, subjects).

    workers : processes the adapter spreads its images over (the synthetic corpus renders
    its views side by side; the others read and hash their files side by side); the
    outputs do not depend on it.

    When `outputs` has a key skipped, the files the adapter left out are
    written there as a TSV with columns path and reason (header only when the
    adapter skips nothing or does not report skips). Nothing is written unless
    all three tables pass validation.
    """
    result = adapter(source)(Path(path) if path else None, params, Path(out_dir), workers=workers)
    where = f"corpus source {source}" + (f" at {path}" if path else "")
    tables = validate_corpus(result["images"], result["rois"], result["subjects"], where)
    skipped = result.get("skipped")
    if skipped is None:
        skipped = pd.DataFrame(columns=SKIPPED_COLUMNS)
    write_tables(tables, outputs)
    if "skipped" in outputs:
        with atomic_path(outputs["skipped"]) as tmp:
            skipped[SKIPPED_COLUMNS].to_csv(tmp, sep="\t", index=False)
    log.info(
        "corpus from %s: %d subjects, %d images, %d ROIs; %d source files skipped",
        source,
        len(tables["subjects"]),
        len(tables["images"]),
        len(tables["rois"]),
        len(skipped),
    )
    return tables
