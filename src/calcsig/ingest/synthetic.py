"""Ingest adapter for the embedded synthetic corpus (calcsig.synthetic)."""

from __future__ import annotations

from pathlib import Path

from ..synthetic import generate_corpus, resolve_settings


def source_files(path: Path | None, params: dict) -> list[Path]:
    """None: the corpus is generated from its settings (and the seed), not read from files."""
    return []


def ingest_synthetic(path: Path | None, params: dict, out_dir: Path, workers: int = 1) -> dict:
    """Generate the synthetic corpus under out_dir/synthetic and return its tables.

    Parameters
    ----------
    path : unused (the corpus is generated, not read); may be None.
    params : the corpus.synthetic config section (defaults are filled in for
        any key left out) plus the top-level seed as params["seed"].
    out_dir : directory for generated files (images, truth masks, planted.json).
    workers : processes rendering the views (the outputs do not depend on it).

    Returns {"images", "rois", "subjects"} DataFrames, not yet validated.
    """
    if "seed" not in params:
        raise ValueError("ingest_synthetic needs the top-level config seed as params['seed']")
    settings = resolve_settings(params, seed=int(params["seed"]))
    corpus = generate_corpus(settings, Path(out_dir), workers)
    return {kind: corpus[kind] for kind in ("images", "rois", "subjects")}
