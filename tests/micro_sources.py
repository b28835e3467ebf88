"""User-shaped sources made from the micro synthetic corpus: CSV manifests (with pixel truth, boxes only or
image-level labels), for the workflow tests of each source and of incremental reruns."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import yaml

from calcsig.ingest.synthetic import ingest_synthetic

REPO = Path(__file__).resolve().parents[1]
MICRO = yaml.safe_load((REPO / "tests" / "data" / "micro.yaml").read_text())
RUN = {k: v for k, v in MICRO.items() if k != "corpus"}
BOX = ["x_min", "y_min", "x_max", "y_max"]
ROI_COLUMNS = ["roi_id", *BOX, "fine_class", "abnormality", "calc_type", "calc_distribution"]


def generate_micro_corpus(root: Path) -> dict:
    """The micro synthetic corpus's tables, images and truth masks, written under `root`."""
    tables = ingest_synthetic(None, {**MICRO["corpus"]["synthetic"], "seed": 20261122}, root)
    return {**tables, "root": root}


def manifest_rows(corpus: dict, data: Path, truth: bool, geometry: bool) -> pd.DataFrame:
    """One row per ROI (or per image without one), with the images copied under `data`."""
    images = corpus["images"].set_index("image_id")
    rows = []
    for image_id, image in images.iterrows():
        image_file = data / "images" / Path(image["path"]).name
        image_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(image["path"], image_file)
        base = {
            "image_id": image_id,
            "subject_id": image["subject_id"],
            "image_path": f"images/{image_file.name}",
            "pixel_spacing_mm": image["pixel_spacing_mm"],
            "laterality": image["laterality"],
            "view": image["view"],
            "age": image["age"],
            "density": image["density"],
            "site": image["site"],
        }
        if truth:
            truth_file = data / "truth" / Path(image["truth_mask_path"]).name
            truth_file.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(image["truth_mask_path"], truth_file)
            base["truth_mask_path"] = f"truth/{truth_file.name}"
        rois = corpus["rois"][corpus["rois"]["image_id"] == image_id]
        if rois.empty:
            rows.append({**base, "label": ""})
        for _, roi in rois.iterrows():
            row = {**base, "label": roi["label"], **{c: roi[c] for c in ROI_COLUMNS}}
            if not geometry:
                row.update({c: "" for c in ("roi_id", *BOX)})
            rows.append(row)
    return pd.DataFrame(rows)
