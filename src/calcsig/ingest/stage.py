"""Ingest entry point: run the configured adapter, validate, write the corpus tables."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from ..tables import validate_corpus, write_tables

log = logging.getLogger(__name__)

ADAPTERS = {
    "synthetic": "calcsig.ingest.synthetic:ingest_synthetic",
    "mini_mias": "calcsig.ingest.mini_mias:ingest_mini_mias",
    "cbis_ddsm": "calcsig.ingest.cbis_ddsm:ingest_cbis_ddsm",
    "csv": "calcsig.ingest.csv_manifest:ingest_csv",
}


def adapter(source: str):
    """The ingest function of `source` (imported lazily: each pulls in its own readers)."""
    if source not in ADAPTERS:
        raise ValueError(f"unknown corpus source {source!r}; expected one of {sorted(ADAPTERS)}")
    module, _, name = ADAPTERS[source].partition(":")
    return getattr(importlib.import_module(module), name)


def build_corpus(source: str, path: str | None, params: dict, out_dir: str | Path, outputs: dict) -> dict:
    """Ingest `source` into validated tables written to `outputs` (keys images, rois, subjects).

    Nothing is written unless all three tables pass validation.
    """
    tables = adapter(source)(Path(path) if path else None, params, Path(out_dir))
    where = f"corpus source {source}" + (f" at {path}" if path else "")
    tables = validate_corpus(tables["images"], tables["rois"], tables["subjects"], where)
    write_tables(tables, outputs)
    log.info(
        "corpus from %s: %d subjects, %d images, %d ROIs",
        source,
        len(tables["subjects"]),
        len(tables["images"]),
        len(tables["rois"]),
    )
    return tables
