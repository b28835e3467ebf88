"""Fuzzing the source parsers: whatever a CSV manifest or an Info.txt holds, the only errors are calcsig's own.

Property-based (hypothesis), derandomized so that CI sees the same examples
every run, and bounded to a few seconds per test. CALCSIG_FUZZ_EXAMPLES=5000
explores further by hand.
"""

import csv
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from calcsig.errors import CalcsigError, IngestError
from calcsig.ingest.csv_manifest import KNOWN_COLUMNS, ingest_csv
from calcsig.ingest.mini_mias import ingest_mini_mias
from calcsig.tables import validate_corpus

FUZZ = settings(
    max_examples=int(os.environ.get("CALCSIG_FUZZ_EXAMPLES", 60)),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Cells a person or a spreadsheet might write, good and bad.
CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            "a",
            "s1",
            "img 1",
            "../x",
            "benign",
            "actionable",
            "malignant",
            "L",
            "right",
            "x",
            "0",
            "1",
            "-1",
            "0.3",
            "1e308",
            "1e999",
            "nan",
            "inf",
            "-inf",
            "NA",
            "None",
            "2.5",
            "39",
            "40",
            "1000000",
            "images/a.png",
            "images/mask.png",
            "images/missing.png",
            "images/notes.txt",
            "images",
            "train",
            "test",
            "CC",
        ]
    ),
    st.text(max_size=12),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


def image_folder(root: Path) -> Path:
    """A manifest folder with a 40 x 30 image, a matching mask and a text file posing as an image."""
    (root / "images").mkdir()
    Image.fromarray(np.arange(1200, dtype=np.uint16).reshape(40, 30)).save(root / "images" / "a.png")
    mask = np.zeros((40, 30), np.uint8)
    mask[5:9, 3:7] = 1
    Image.fromarray(mask).save(root / "images" / "mask.png")
    (root / "images" / "notes.txt").write_text("not an image")
    return root


def ingest_only_calcsig_errors(ingest, *args) -> None:
    """Run an adapter and validate its tables as the ingest stage does; any non-calcsig exception propagates."""
    try:
        tables = ingest(*args)
        validate_corpus(tables["images"], tables["rois"], tables["subjects"], "fuzzed source")
    except CalcsigError:
        pass


@FUZZ
@given(
    columns=st.lists(st.sampled_from(KNOWN_COLUMNS + ["extra"]), min_size=0, max_size=10, unique=True),
    cells=st.lists(st.lists(CELLS, min_size=10, max_size=10), min_size=0, max_size=5),
    spacing=st.sampled_from([None, 0.1]),
)
def test_a_manifest_of_known_columns_and_wild_cells_raises_only_calcsig_errors(columns, cells, spacing):
    with tempfile.TemporaryDirectory() as tmp:
        folder = image_folder(Path(tmp))
        path = folder / "manifest.csv"
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            writer.writerows(row[: len(columns)] for row in cells)
        ingest_only_calcsig_errors(ingest_csv, path, {"pixel_spacing_mm": spacing, "site": None}, folder)


COORDINATE = st.one_of(
    st.integers(-3, 45).map(str),
    st.floats(-2, 45, allow_nan=False).map(lambda v: f"{v:.2f}"),
    st.sampled_from(["0.3", "0.49", "1e-9", "", "nan", "x"]),
)
GEOMETRY = st.one_of(
    st.just({}),
    st.fixed_dictionaries({c: COORDINATE for c in ("x_min", "y_min", "x_max", "y_max")}),
    st.fixed_dictionaries({"center_x": COORDINATE, "center_y": COORDINATE, "radius_px": COORDINATE}),
    st.fixed_dictionaries({"mask_path": st.sampled_from(["images/mask.png", "images/a.png", "images/notes.txt"])}),
)
ROW = st.builds(
    lambda ids, label, geometry, extra: {**ids, "label": label, **geometry, **extra},
    st.fixed_dictionaries(
        {
            "image_id": st.sampled_from(["a", "b", "a b", ""]),
            "subject_id": st.sampled_from(["s1", "s2", ""]),
            "image_path": st.sampled_from(["images/a.png", "images/missing.png", "images/notes.txt", ""]),
        }
    ),
    st.sampled_from(["benign", "actionable", "", "malignant"]),
    GEOMETRY,
    st.dictionaries(st.sampled_from(["pixel_spacing_mm", "age", "laterality", "given_split", "roi_id"]), CELLS),
)


@FUZZ
@given(rows=st.lists(ROW, min_size=1, max_size=5), spacing=st.sampled_from([None, 0.1]))
def test_manifest_rows_with_wild_geometry_raise_only_calcsig_errors(rows, spacing):
    with tempfile.TemporaryDirectory() as tmp:
        folder = image_folder(Path(tmp))
        path = folder / "manifest.csv"
        columns = list(dict.fromkeys(k for row in rows for k in row))
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        ingest_only_calcsig_errors(ingest_csv, path, {"pixel_spacing_mm": spacing, "site": None}, folder)


@FUZZ
@given(
    centre_x=st.floats(-1, 31, allow_nan=False),
    centre_y=st.floats(-1, 41, allow_nan=False),
    radius=st.one_of(st.floats(0, 2, allow_nan=False), st.floats(0, 1e-300), st.floats(2, 1e6)),
)
def test_circles_of_any_size_and_place_raise_only_calcsig_errors(centre_x, centre_y, radius):
    with tempfile.TemporaryDirectory() as tmp:
        folder = image_folder(Path(tmp))
        path = folder / "manifest.csv"
        path.write_text(
            "image_id,subject_id,image_path,label,center_x,center_y,radius_px\n"
            f"a,s1,images/a.png,benign,{centre_x!r},{centre_y!r},{radius!r}\n"
        )
        ingest_only_calcsig_errors(ingest_csv, path, {"pixel_spacing_mm": 0.1, "site": None}, folder)


@FUZZ
@given(text=st.text(max_size=300))
def test_any_text_as_a_manifest_raises_only_calcsig_errors(text):
    with tempfile.TemporaryDirectory() as tmp:
        folder = image_folder(Path(tmp))
        path = folder / "manifest.csv"
        path.write_text(text)
        ingest_only_calcsig_errors(ingest_csv, path, {"pixel_spacing_mm": 0.1, "site": None}, folder)


@FUZZ
@given(data=st.binary(max_size=300))
def test_any_bytes_as_a_manifest_raise_only_calcsig_errors(data):
    with tempfile.TemporaryDirectory() as tmp:
        folder = image_folder(Path(tmp))
        path = folder / "manifest.csv"
        path.write_bytes(data)
        ingest_only_calcsig_errors(ingest_csv, path, {"pixel_spacing_mm": 0.1, "site": None}, folder)


# Info.txt tokens: real ones, near misses and noise
INFO_TOKENS = st.one_of(
    st.sampled_from(
        [
            "mdb001",
            "mdb002",
            "mdb003",
            "mdb0",
            "mdb",
            "G",
            "F",
            "D",
            "X",
            "CALC",
            "CIRC",
            "NORM",
            "SPIC",
            "BOGUS",
            "B",
            "M",
            "0",
            "1",
            "-5",
            "29",
            "30",
            "39",
            "40",
            "2.5",
            "0.0",
            "-0.5",
            "1e400",
            "nan",
            "*NOTE",
            "3*",
            "*",
        ]
    ),
    st.integers(-(2**40), 2**40).map(str),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6),
)


def mias_folder(root: Path) -> Path:
    """mdb001 (a 40 x 30 PNG), mdb002 (an unreadable PNG); mdb003 is absent."""
    Image.fromarray(np.arange(1200, dtype=np.uint8).reshape(40, 30)).save(root / "mdb001.png")
    (root / "mdb002.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    return root


@FUZZ
@given(lines=st.lists(st.lists(INFO_TOKENS, min_size=0, max_size=8).map(" ".join), max_size=8))
def test_an_info_file_of_wild_truth_rows_raises_only_calcsig_errors(lines):
    with tempfile.TemporaryDirectory() as tmp:
        folder = mias_folder(Path(tmp))
        (folder / "Info.txt").write_text("\n".join(lines) + "\n")
        ingest_only_calcsig_errors(ingest_mini_mias, folder, {"pixel_spacing_mm": 0.2}, folder)


@FUZZ
@given(data=st.binary(max_size=400))
def test_any_bytes_as_an_info_file_raise_only_calcsig_errors(data):
    with tempfile.TemporaryDirectory() as tmp:
        folder = mias_folder(Path(tmp))
        (folder / "Info.txt").write_bytes(b"mdb001 G CALC B 10 10 5\n" + data)
        ingest_only_calcsig_errors(ingest_mini_mias, folder, {"pixel_spacing_mm": 0.2}, folder)


def test_a_circle_between_pixel_centres_is_refused_naming_its_row(tmp_path):
    """What the fuzzer found: a radius-0.3 px circle between pixel centres covers no pixel (it was a TypeError)."""
    folder = image_folder(tmp_path)
    path = folder / "manifest.csv"
    path.write_text(
        "image_id,subject_id,image_path,label,center_x,center_y,radius_px\na,s1,images/a.png,benign,10.5,10.5,0.3\n"
    )
    with pytest.raises(IngestError) as error:
        ingest_csv(path, {"pixel_spacing_mm": 0.1, "site": None}, folder)
    assert error.value.problems == [
        "manifest.csv row 2, column 'center_x, center_y, radius_px': circle of radius 0.3 px around (10.5, 10.5) "
        "covers no pixel centre of image a"
    ]
