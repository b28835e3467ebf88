"""Corpus tables: schema validation, reading and atomic writing.

The three corpus tables (images, rois, subjects) are the contract between
ingest and every later stage. Their schemas live in `src/calcsig/schemas/` as
JSON Schema for one row. Validation checks every row and reports every
problem at once, naming the file, the row and the column.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import jsonschema
import pandas as pd
import yaml

from .errors import TableError
from .paths import SCHEMA_DIR, atomic_path

TABLE_KINDS = ("images", "rois", "subjects")


@functools.cache
def table_schema(kind: str) -> dict:
    """The JSON Schema (one row) of corpus table `kind`."""
    if kind not in TABLE_KINDS:
        raise ValueError(f"unknown table kind {kind!r}; expected one of {TABLE_KINDS}")
    with open(SCHEMA_DIR / f"{kind}.schema.yaml") as fh:
        return yaml.safe_load(fh)


def id_column(kind: str) -> str:
    return table_schema(kind)["x-id-column"]


def _column_types(prop: dict) -> set[str]:
    if "type" in prop:
        t = prop["type"]
        return set(t if isinstance(t, list) else [t])
    if "enum" in prop:
        return {"string"} | ({"null"} if None in prop["enum"] else set())
    return {"string"}


def _is_missing(value) -> bool:
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or value is pd.NA
        or (isinstance(value, str) and value == "")
    )


def _coerce(value, types: set[str]):
    """Turn a cell (string from a TSV, or a Python value) into its schema type.

    Returns the value unchanged when it cannot be coerced, so that the schema
    validator reports it with the column's expectation.
    """
    if _is_missing(value):
        return None
    if "boolean" in types:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        return {"true": True, "false": False, "1": True, "0": False}.get(text, value)
    if "integer" in types:
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            return value
        return int(as_float) if as_float.is_integer() else value
    if "number" in types:
        try:
            return float(value)
        except (TypeError, ValueError):
            return value
    return str(value) if not isinstance(value, str) else value


def _row_label(kind: str, index: int, record: dict) -> str:
    ident = record.get(id_column(kind))
    return f"row {index + 1}" + (f" ({id_column(kind)}={ident})" if ident is not None else "")


def validate_table(frame: pd.DataFrame, kind: str, where: str) -> pd.DataFrame:
    """Check `frame` against the schema of table `kind`; return it with typed columns.

    Every problem (missing column, wrong type, value out of range, duplicate
    ID) is collected; a single TableError lists them all, each naming `where`,
    the row (1-based, with its ID) and the column.
    """
    schema = table_schema(kind)
    properties: dict = schema["properties"]
    problems: list[str] = []

    missing = [c for c in schema["required"] if c not in frame.columns]
    if missing:
        raise TableError(where, [f"missing required column(s): {', '.join(missing)}"])

    validator = jsonschema.Draft202012Validator(schema)
    types = {col: _column_types(prop) for col, prop in properties.items()}
    records = []
    for index, raw in enumerate(frame.to_dict(orient="records")):
        record = {k: (_coerce(v, types[k]) if k in types else (None if _is_missing(v) else v)) for k, v in raw.items()}
        records.append(record)
        present = {
            k: v for k, v in record.items() if k in properties and (v is not None or k not in schema["required"])
        }
        for error in validator.iter_errors(present):
            column = error.path[0] if error.path else None
            if column is None and error.validator == "required":
                # e.g. "'label' is a required property": an empty required cell
                column = error.message.split("'")[1]
                message = "is empty but required"
            else:
                message = error.message
            problems.append(f"{_row_label(kind, index, record)}, column '{column}': {message}")

    id_col = id_column(kind)
    ids = pd.Series([r.get(id_col) for r in records])
    for dup in sorted(ids[ids.duplicated(keep=False) & ids.notna()].unique()):
        rows = [str(i + 1) for i in ids.index[ids == dup]]
        problems.append(f"rows {', '.join(rows)}, column '{id_col}': duplicate ID {dup!r}")

    if problems:
        raise TableError(where, problems)
    ordered = [c for c in properties if c in frame.columns] + [c for c in frame.columns if c not in properties]
    typed = pd.DataFrame.from_records(records, columns=list(frame.columns))[ordered]
    for col in ordered:
        if col in types and "integer" in types[col]:
            typed[col] = typed[col].astype("Int64")
        elif col in types and "number" in types[col]:
            typed[col] = typed[col].astype("float64")
        elif col in types and "boolean" in types[col]:
            typed[col] = typed[col].astype("boolean")
    return typed


def validate_corpus(images: pd.DataFrame, rois: pd.DataFrame, subjects: pd.DataFrame, where: str) -> dict:
    """Validate the three tables and the links between them.

    Checks each table's schema, that every ROI's image and every image's
    subject exist, and that ROI geometry lies inside its image when the
    image size is known. Returns the typed tables keyed by kind.
    """
    tables = {
        "images": validate_table(images, "images", f"{where} images"),
        "rois": validate_table(rois, "rois", f"{where} rois"),
        "subjects": validate_table(subjects, "subjects", f"{where} subjects"),
    }
    images, rois, subjects = tables["images"], tables["rois"], tables["subjects"]
    problems: list[str] = []

    unknown_subjects = ~images["subject_id"].isin(subjects["subject_id"])
    for i in images.index[unknown_subjects]:
        problems.append(
            f"images row {i + 1} (image_id={images.at[i, 'image_id']}): subject_id "
            f"{images.at[i, 'subject_id']!r} is not in subjects"
        )
    unknown_images = ~rois["image_id"].isin(images["image_id"])
    for i in rois.index[unknown_images]:
        problems.append(
            f"rois row {i + 1} (roi_id={rois.at[i, 'roi_id']}): image_id {rois.at[i, 'image_id']!r} is not in images"
        )

    size = images.set_index("image_id")[["height", "width"]] if {"height", "width"} <= set(images.columns) else None
    for i, roi in rois.iterrows():
        label = f"rois row {i + 1} (roi_id={roi['roi_id']})"
        if roi["shape"] in ("bbox", "circle"):
            box = [roi.get(c) for c in ("x_min", "y_min", "x_max", "y_max")]
            if any(pd.isna(v) for v in box):
                problems.append(f"{label}: shape {roi['shape']} needs x_min, y_min, x_max, y_max")
                continue
            x0, y0, x1, y1 = (int(v) for v in box)
            if x1 <= x0 or y1 <= y0:
                problems.append(f"{label}: empty bounding box [{x0},{x1}) x [{y0},{y1})")
            if size is not None and roi["image_id"] in size.index:
                h, w = size.loc[roi["image_id"]]
                if not pd.isna(h) and not pd.isna(w) and (x0 < 0 or y0 < 0 or x1 > w or y1 > h):
                    problems.append(
                        f"{label}: bounding box [{x0},{x1}) x [{y0},{y1}) lies outside its "
                        f"image {roi['image_id']} of {w} x {h} pixels"
                    )
        if roi["shape"] == "circle" and any(pd.isna(roi.get(c)) for c in ("center_x", "center_y", "radius_px")):
            problems.append(f"{label}: shape circle needs center_x, center_y and radius_px")
        if roi["shape"] == "mask" and pd.isna(roi.get("mask_path")):
            problems.append(f"{label}: shape mask needs mask_path")
    if problems:
        raise TableError(f"{where}: corpus tables are inconsistent", problems)
    return tables


def read_table(path: str | Path, kind: str) -> pd.DataFrame:
    """Read and validate a corpus table TSV; errors name `path`."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    return validate_table(frame, kind, str(path))


def write_tables(tables: dict[str, pd.DataFrame], paths: dict[str, str | Path]) -> None:
    """Write already-validated tables as TSV, each atomically.

    Callers validate first (validate_corpus), so a bad corpus writes nothing.
    """
    for kind, frame in tables.items():
        with atomic_path(paths[kind]) as tmp:
            frame.to_csv(tmp, sep="\t", index=False, na_rep="")
