"""The report's input files, any of which may be absent, read once each.

A stage that did not run (no pixels in a metadata-only corpus, no pixel truth,
a model stage that failed or is switched off) leaves its input as None; the
sections then say what is missing and why instead of failing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import CalcsigError

# Every input the report knows, with what produces it; the reason shown when it is absent.
INPUTS = {
    "images": "results/corpus/images.tsv (ingest)",
    "rois": "results/corpus/rois.tsv (ingest)",
    "subjects": "results/corpus/subjects.tsv (ingest)",
    "assignment": "results/splits/assignment.tsv (partition)",
    "balance": "results/splits/balance.tsv (partition)",
    "balance_json": "results/splits/balance.json (partition)",
    "audit": "results/splits/audit.json (audit)",
    "audit_table": "results/splits/audit.tsv (audit)",
    "cohort_summary": "results/cohort/summary.json (cohort)",
    "cohort_rois": "results/cohort/rois.tsv (cohort)",
    "segmentation": "results/metrics/segmentation.json (segmentation evaluation)",
    "gallery": "results/segment/gallery.png (segmentation evaluation)",
    "gallery_worst": "results/segment/gallery_worst.png (segmentation evaluation)",
    "lesion_insertion": "results/segment/lesion_insertion.png (lesion insertion into normal films; needs normal films)",
    "features": "results/features/rois.parquet (features)",
    "objects": "results/features/objects.parquet (features)",
    "models": "results/metrics/models.json (model evaluation)",
    "models_table": "results/metrics/models.tsv (model evaluation)",
    "importance": "the final main model's search.json (model stage)",
    "catalogue": "results/features/catalogue.tsv (features: every feature column and its meaning)",
}


# Inputs that exist only when images have pixels, and only when ROIs are located on such images.
IMAGE_STAGE_INPUTS = {"segmentation", "gallery", "gallery_worst", "lesion_insertion"}
ROI_STAGE_INPUTS = {"features", "objects", "models", "models_table", "importance", "catalogue"}


class ReportInputError(CalcsigError):
    """An input file of the report exists but cannot be read."""


@dataclass
class Inputs:
    """Paths by input name (None when absent) and, optionally, why an input is absent."""

    paths: dict
    reasons: dict = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        unknown = sorted(set(self.paths) - set(INPUTS))
        if unknown:
            raise ReportInputError(f"report inputs: unknown name(s) {unknown}; known: {sorted(INPUTS)}")
        self.paths = {name: (Path(p) if p else None) for name, p in self.paths.items()}

    def has(self, name: str) -> bool:
        path = self.paths.get(name)
        return path is not None and path.exists()

    def path(self, name: str) -> Path | None:
        return self.paths.get(name) if self.has(name) else None

    def why_absent(self, name: str) -> str:
        """The reason an input is absent: the caller's, or which file and stage is missing."""
        if name in self.reasons:
            return self.reasons[name]
        if name in IMAGE_STAGE_INPUTS | ROI_STAGE_INPUTS and self.paths.get(name) is None:
            corpus = self.corpus_reason(name)
            if corpus:
                return corpus
        path = self.paths.get(name)
        if path is not None:
            return f"{path} was not found"
        return f"this run has no {INPUTS[name]}"

    def corpus_reason(self, name: str) -> str | None:
        """Why an image-stage input cannot exist for this corpus, read from the corpus tables."""
        images = self.tsv("images") if self.has("images") else None
        if images is None or "has_pixels" not in images:
            return None
        with_pixels = images.loc[images["has_pixels"].astype(str).str.lower() == "true", "image_id"]
        if with_pixels.empty:
            return (
                "the corpus has no images with pixels (metadata only), so segmentation, features and models did not run"
            )
        rois = self.tsv("rois") if self.has("rois") else None
        if name in ROI_STAGE_INPUTS and rois is not None and "shape" in rois:
            located = rois["shape"].isin(["bbox", "circle", "mask"]) & rois["image_id"].isin(with_pixels)
            if not located.any():
                return "no ROI of the corpus is located on an image with pixels, so features and models did not run"
        return None

    def json(self, name: str):
        if name not in self._cache:
            path = self.path(name)
            if path is None:
                self._cache[name] = None
            else:
                try:
                    self._cache[name] = json.loads(path.read_text())
                except (OSError, json.JSONDecodeError) as error:
                    raise ReportInputError(f"{path}: not readable JSON ({error}); rerun its stage") from error
        return self._cache[name]

    def tsv(self, name: str) -> pd.DataFrame | None:
        if name not in self._cache:
            path = self.path(name)
            if path is None:
                self._cache[name] = None
            else:
                try:
                    self._cache[name] = pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""])
                except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
                    raise ReportInputError(f"{path}: not a readable TSV table ({error})") from error
        return self._cache[name]

    def parquet(self, name: str) -> pd.DataFrame | None:
        if name not in self._cache:
            path = self.path(name)
            self._cache[name] = pd.read_parquet(path) if path is not None else None
        return self._cache[name]

    def parquet_shape(self, name: str) -> tuple[int, list[str]] | None:
        """(rows, column names) of a parquet file from its footer, without reading the data."""
        import pyarrow.parquet as pq

        path = self.path(name)
        if path is None:
            return None
        meta = pq.ParquetFile(path)
        return meta.metadata.num_rows, list(meta.schema_arrow.names)
