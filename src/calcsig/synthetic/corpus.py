"""Assemble the synthetic corpus: images and truth on disk, the three tables, and planted.json.

Subject IDs are a seeded permutation shared by real subjects and the new
subjects of duplicate copies, and every table is sorted by its ID, so nothing
in the tables tells a duplicate from an original. Enrichment images are second
examinations (exam 2) of existing subjects.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..parallel import ordered_map
from ..paths import atomic_path
from .cohort import Subject, draw_cohort
from .duplicates import near_duplicate, shift_box, shift_padded
from .mammogram import ClusterRoi, View, render_view
from .pngfile import write_png16
from .settings import CorpusSettings

SOURCE = "synthetic"
NEAR_DUPLICATE_KINDS = ("rescale", "shift")
_ROI_COLUMNS = (
    "roi_id",
    "image_id",
    "shape",
    "x_min",
    "y_min",
    "x_max",
    "y_max",
    "label",
    "fine_class",
    "abnormality",
    "calc_type",
    "calc_distribution",
    "source",
)


@dataclass(frozen=True)
class _ImageRecord:
    image_id: str
    subject: Subject
    subject_id: str
    view: str
    subset: str


class _CorpusWriter:
    """Writes image and truth PNGs under out_dir/synthetic and collects table rows."""

    def __init__(self, settings: CorpusSettings, out_dir: Path):
        self.settings = settings
        self.image_dir = out_dir / "synthetic" / "images"
        self.truth_dir = out_dir / "synthetic" / "truth"
        self.images: list[dict] = []
        self.rois: list[dict] = []

    def add(self, record: _ImageRecord, pixels: np.ndarray, labels: np.ndarray, rois) -> None:
        self.append(self.write(record, pixels, labels, rois))

    def append(self, rows: tuple[dict, list[dict]]) -> None:
        """Add the table rows `write` returned."""
        image_row, roi_rows = rows
        self.images.append(image_row)
        self.rois.extend(roi_rows)

    def write(self, record: _ImageRecord, pixels: np.ndarray, labels: np.ndarray, rois) -> tuple[dict, list[dict]]:
        """Write the image and truth PNGs; return (its images.tsv row, its rois.tsv rows)."""
        s, subject = self.settings, record.subject
        image_path = self.image_dir / f"{record.image_id}.png"
        truth_path = self.truth_dir / f"{record.image_id}.png"
        data = write_png16(image_path, pixels, s.pixel_spacing_mm, s.bits)
        write_png16(truth_path, labels, s.pixel_spacing_mm, 16)
        image_row = {
            "image_id": record.image_id,
            "subject_id": record.subject_id,
            "path": str(image_path),
            "sha256": hashlib.sha256(data).hexdigest(),
            "has_pixels": True,
            "laterality": subject.laterality,
            "view": record.view,
            "pixel_spacing_mm": s.pixel_spacing_mm,
            "bits": s.bits,
            "height": int(pixels.shape[0]),
            "width": int(pixels.shape[1]),
            "site": subject.site.name,
            "age": subject.age,
            "density": subject.density,
            "race_ethnicity": subject.race_ethnicity,
            "source": SOURCE,
            "subset": record.subset,
            "truth_mask_path": str(truth_path),
        }
        roi_rows = []
        for roi in rois:
            cluster = subject.clusters[roi.cluster_index]
            x0, y0, x1, y1 = roi.box_xyxy
            roi_rows.append(
                {
                    "roi_id": f"{record.image_id}_c{roi.cluster_index + 1}",
                    "image_id": record.image_id,
                    "shape": "bbox",
                    "x_min": x0,
                    "y_min": y0,
                    "x_max": x1,
                    "y_max": y1,
                    "label": cluster.label,
                    "fine_class": cluster.fine_class,
                    "abnormality": "calcification",
                    "calc_type": cluster.calc_type,
                    "calc_distribution": cluster.calc_distribution,
                    "source": SOURCE,
                }
            )
        return image_row, roi_rows


def _subject_ids(n_total: int, rng: np.random.Generator) -> list[str]:
    width = max(4, len(str(n_total)))
    return [f"SYN{k + 1:0{width}d}" for k in rng.permutation(n_total)]


def _image_id(subject_id: str, exam: int, laterality: str, view: str) -> str:
    return f"{subject_id}_e{exam}_{laterality}{view}"


def generate_corpus(settings: CorpusSettings, out_dir: str | Path, workers: int = 1) -> dict:
    """Generate the whole corpus under out_dir/synthetic and return its tables and what was planted.

    Returns {"images", "rois", "subjects": DataFrame (sorted by ID), "planted": dict}.
    Writes synthetic/images/{image_id}.png (16-bit, `bits` significant),
    synthetic/truth/{image_id}.png (uint16 labels) and synthetic/planted.json.
    workers : processes rendering the views (the outputs do not depend on it).
    """
    out_dir = Path(out_dir)
    rng = np.random.default_rng([settings.seed, 2])  # bookkeeping draws: IDs, which images are copied
    cohort = draw_cohort(settings)
    n_copies = settings.exact_duplicates + settings.near_duplicates
    ids = _subject_ids(len(cohort) + n_copies, rng)
    subject_id = {s.index: ids[s.index] for s in cohort}

    main = [
        _ImageRecord(_image_id(subject_id[s.index], 1, s.laterality, v), s, subject_id[s.index], v, "main")
        for s in cohort
        for v in s.views
    ]
    n_enriched = min(settings.enrichment_subjects, len(cohort))
    enriched = sorted(int(i) for i in rng.choice(len(cohort), size=n_enriched, replace=False))
    enrichment = [
        _ImageRecord(_image_id(subject_id[i], 2, cohort[i].laterality, v), cohort[i], subject_id[i], v, "enrichment")
        for i in enriched
        for v in cohort[i].views
    ]
    if n_copies > len(main):
        raise ValueError(f"{n_copies} duplicates requested but the main subset has only {len(main)} images")
    originals = [int(i) for i in rng.choice(len(main), size=n_copies, replace=False)]
    kept: dict[int, View] = {}

    writer = _CorpusWriter(settings, out_dir)
    kept_positions = set(originals)

    def render_and_write(task):
        # each view has its own random stream, so the views can be rendered in any order
        position, record, exam = task
        view = render_view(record.subject, record.view, exam, settings)
        rows = writer.write(record, view.pixels, view.labels, view.rois)
        return rows, (view if exam == 1 and position in kept_positions else None)

    tasks = [(position, record, 1) for position, record in enumerate(main)]
    tasks += [(None, record, 2) for record in enrichment]
    for (position, _, _), (rows, view) in zip(tasks, ordered_map(render_and_write, tasks, workers)):
        writer.append(rows)
        if view is not None:
            kept[position] = view

    planted = {
        "enrichment_subjects": sorted(subject_id[i] for i in enriched),
        "exact_duplicates": [],
        "near_duplicates": [],
    }
    copy_subjects = []
    for k, position in enumerate(originals):
        original, view = main[position], kept[position]
        copy_id = ids[len(cohort) + k]
        record = _ImageRecord(
            _image_id(copy_id, 1, original.subject.laterality, original.view),
            original.subject,
            copy_id,
            original.view,
            "main",
        )
        copy_subjects.append((copy_id, original.subject))
        if k < settings.exact_duplicates:
            writer.add(record, view.pixels, view.labels, view.rois)
            planted["exact_duplicates"].append([original.image_id, record.image_id])
        else:
            kind = NEAR_DUPLICATE_KINDS[k % 2]
            pixels, (dy, dx) = near_duplicate(view.pixels, settings.bits, kind, rng)
            labels = shift_padded(view.labels, dy, dx, mode="constant")
            rois = [ClusterRoi(r.cluster_index, shift_box(r.box_xyxy, dy, dx, pixels.shape)) for r in view.rois]
            writer.add(record, pixels, labels, rois)
            planted["near_duplicates"].append([original.image_id, record.image_id])

    images = pd.DataFrame(writer.images).sort_values("image_id", ignore_index=True)
    rois = pd.DataFrame(writer.rois, columns=list(_ROI_COLUMNS)).sort_values("roi_id", ignore_index=True)
    n_images = images["subject_id"].value_counts()
    subject_rows = [(subject_id[s.index], s) for s in cohort] + copy_subjects
    subjects = pd.DataFrame(
        [
            {
                "subject_id": sid,
                "age": s.age,
                "density": s.density,
                "race_ethnicity": s.race_ethnicity,
                "site": s.site.name,
                "cohort": SOURCE,
                "n_images": int(n_images.get(sid, 0)),
            }
            for sid, s in subject_rows
        ]
    ).sort_values("subject_id", ignore_index=True)

    with atomic_path(out_dir / "synthetic" / "planted.json") as tmp:
        Path(tmp).write_text(json.dumps(planted, indent=2, sort_keys=True) + "\n")
    return {"images": images, "rois": rois, "subjects": subjects, "planted": planted}
