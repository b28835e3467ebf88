"""Helpers shared by the real-data adapters: problem collection, CSV cells, image facts, ROI boxes.

Adapters collect every problem they find (`Problems`) and raise one
IngestError at the end, so a user fixes a source in one pass instead of one
error per run.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ImageReadError, IngestError
from ..imageio import ImageData, read_image
from ..parallel import ordered_map
from ..tables import table_schema

HASH_CHUNK_BYTES = 1 << 20
# Columns of the table of source files an adapter left out, with why (its "skipped" table).
SKIPPED_COLUMNS = ["path", "reason"]


class Problems:
    """Every problem found in a source, each naming file, row and column."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)

    def at(self, file: str, row: int | str, column: str | None, message: str) -> None:
        """Record a problem of `file`'s `row` (a spreadsheet row number or 'line N'), in `column`."""
        where = f"{file} {row}" if isinstance(row, str) else f"{file} row {row}"
        self.messages.append(f"{where}" + (f", column '{column}'" if column else "") + f": {message}")

    def __len__(self) -> int:
        return len(self.messages)

    def raise_if_any(self, where: str) -> None:
        if self.messages:
            raise IngestError(where, self.messages)


def spreadsheet_row(index: int) -> int:
    """Row number of the 0-based data row `index` as a spreadsheet shows it (the header is row 1)."""
    return index + 2


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (the images.tsv sha256 column)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_csv_cells(path: Path, where: str) -> pd.DataFrame:
    """Read a CSV as strings with surrounding whitespace (including quoted newlines) stripped.

    Empty cells stay empty strings, so 'NA' or 'None' in a source is never
    silently turned into a missing value.
    """
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise IngestError(where, [f"{path.name}: cannot be read as CSV ({exc})"]) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.apply(lambda column: column.str.strip())


def missing_columns(frame: pd.DataFrame, required: list[str]) -> list[str]:
    return [c for c in required if c not in frame.columns]


@dataclass(frozen=True)
class ImageFacts:
    """What images.tsv records about an image file."""

    sha256: str
    height: int
    width: int
    bits: int
    pixel_spacing_mm: float | None


def inspect_image(path: Path) -> tuple[ImageFacts, ImageData]:
    """Read `path` and hash it; raises calcsig.imageio.ImageReadError when it cannot be read."""
    data = read_image(path)
    facts = ImageFacts(
        sha256=file_sha256(path),
        height=data.height,
        width=data.width,
        bits=data.bits,
        pixel_spacing_mm=data.pixel_spacing_mm,
    )
    return facts, data


def _facts_or_reason(path: Path) -> ImageFacts | tuple[str, str]:
    # an ImageReadError does not survive pickling (its message is its only argument): send its parts
    try:
        return inspect_image(path)[0]
    except ImageReadError as error:
        return error.path, error.reason


def inspect_images(paths, workers: int = 1) -> dict[Path, ImageFacts | ImageReadError]:
    """`inspect_image`'s facts of each file, or the `ImageReadError` reading it raised, by path.

    workers : processes reading and hashing the files side by side (the result does not
    depend on it); only the facts come back, not the pixels.
    """
    paths = list(dict.fromkeys(Path(p) for p in paths))
    results = ordered_map(_facts_or_reason, paths, workers)
    return {
        path: ImageReadError(*result) if isinstance(result, tuple) else result for path, result in zip(paths, results)
    }


Box = tuple[int, int, int, int]


def circle_box(center_x: float, center_y: float, radius: float, height: int, width: int) -> Box | None:
    """Half-open bounding box of the pixels within `radius` of the centre, clipped to the image.

    None when no pixel of the circle lies inside the image.
    """
    x0 = max(0, math.ceil(center_x - radius))
    y0 = max(0, math.ceil(center_y - radius))
    x1 = min(width, math.floor(center_x + radius) + 1)
    y1 = min(height, math.floor(center_y + radius) + 1)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def mask_box(mask: np.ndarray) -> Box | None:
    """Half-open bounding box of the nonzero pixels of `mask`, None when it is empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    columns = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1


def box_inside(box: Box, height: int, width: int) -> bool:
    x0, y0, x1, y1 = box
    return 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


def table_frame(records: list[dict], kind: str) -> pd.DataFrame:
    """A DataFrame with the schema's columns in schema order (present even when `records` is empty)."""
    columns = list(table_schema(kind)["properties"])
    extra = sorted({k for r in records for k in r} - set(columns))
    return pd.DataFrame.from_records(records, columns=columns + extra)


def _most_common(values) -> object:
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not present:
        return None
    counts = Counter(present)
    top = max(counts.values())
    # Ties break by sorted value so the table does not depend on row order.
    return sorted((v for v, n in counts.items() if n == top), key=str)[0]


def subjects_table(images: pd.DataFrame, cohort: str) -> pd.DataFrame:
    """One row per subject of `images`: image count and the most common value of each demographic."""
    records = []
    for subject_id, group in images.groupby("subject_id", sort=True):
        record = {"subject_id": subject_id, "cohort": cohort, "n_images": int(len(group))}
        for column in ("age", "density", "race_ethnicity", "site"):
            record[column] = _most_common(group[column]) if column in group else None
        records.append(record)
    return table_frame(records, "subjects")
