"""mini-MIAS adapter: Info.txt truth rows, patient pairs, the bottom-left y origin, and bad input."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from calcsig.errors import IngestError
from calcsig.ingest.mini_mias import ingest_mini_mias
from calcsig.tables import validate_corpus

PARAMS = {"info_file": "Info.txt", "pixel_spacing_mm": 0.2}


def ingest(directory: Path, tmp_path: Path) -> dict:
    tables = ingest_mini_mias(directory, PARAMS, tmp_path / "out")
    return validate_corpus(tables["images"], tables["rois"], tables["subjects"], "test")


@pytest.fixture(scope="module")
def real(shared_data, tmp_path_factory):
    return ingest(shared_data / "mini-mias-dev", tmp_path_factory.mktemp("mias"))


def test_real_subset_counts(real, shared_data):
    truth = [
        line.split()
        for line in (shared_data / "mini-mias-dev" / "Info.txt").read_text().splitlines()
        if re.match(r"^mdb\d{3}\s", line)
    ]
    with_coordinates = [t for t in truth if len(t) == 7]
    assert len(real["images"]) == 104
    assert len(real["subjects"]) == 52
    assert (real["rois"]["shape"] == "circle").sum() == len(with_coordinates) == 40
    assert set(real["subjects"]["n_images"]) == {2}
    assert real["images"]["pixel_spacing_mm"].eq(0.2).all()
    assert real["images"][["height", "width"]].eq(1024).all().all()


def test_real_known_row_is_flipped_to_a_top_left_origin(real):
    # Info.txt: "mdb001 G CIRC B 535 425 197", y counted from the bottom row.
    roi = real["rois"].set_index("roi_id").loc["mdb001_1"]
    assert (roi["center_x"], roi["center_y"], roi["radius_px"]) == (535.0, 1024 - 1 - 425, 197.0)
    assert (roi["x_min"], roi["y_min"], roi["x_max"], roi["y_max"]) == (338, 401, 733, 796)
    assert (roi["label"], roi["fine_class"], roi["abnormality"]) == ("benign", "benign", "mass")


def test_real_pairs_share_a_patient_and_sides_follow_the_number(real):
    images = real["images"].set_index("image_id")
    assert images.at["mdb001", "subject_id"] == images.at["mdb002", "subject_id"]
    assert images.at["mdb002", "subject_id"] != images.at["mdb003", "subject_id"]
    assert (images.at["mdb001", "laterality"], images.at["mdb002", "laterality"]) == ("R", "L")
    assert images.at["mdb209", "density"] == "G"


def test_real_rows_without_coordinates_are_image_level_and_normals_have_no_roi(real):
    rois = real["rois"]
    # "mdb059 F CIRC B": a finding without a location.
    assert rois.loc[rois["image_id"] == "mdb059", "shape"].tolist() == ["image"]
    assert "mdb003" not in set(rois["image_id"])  # NORM
    malignant_calcs = rois[(rois["abnormality"] == "calcification") & (rois["label"] == "actionable")]
    assert set(malignant_calcs["image_id"]) == {"mdb209", "mdb211", "mdb213", "mdb231", "mdb239", "mdb256"}
    assert set(rois.loc[rois["image_id"] == "mdb226", "roi_id"]) == {"mdb226_1", "mdb226_2", "mdb226_3"}


def write_source(directory: Path, info_rows: list[str], images: dict[str, np.ndarray]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Info.txt").write_text("MIAS header text\n\n" + "\n".join(info_rows) + "\n")
    for name, pixels in images.items():
        Image.fromarray(pixels).save(directory / name)
    return directory


def test_y_flip_uses_the_image_height_and_hits_the_bright_spot(tmp_path):
    height, width = 40, 64
    film = np.zeros((height, width), np.uint8)
    film[5, 10] = 255  # top-left row 5 = row 34 counted from the bottom
    source = write_source(
        tmp_path / "mias",
        ["mdb001 F CALC M 10 34 3", "mdb002 F NORM "],
        {"mdb001.png": film, "mdb002.pgm": np.zeros((height, width), np.uint8)},
    )
    tables = ingest(source, tmp_path)
    roi = tables["rois"].iloc[0]
    assert (roi["center_x"], roi["center_y"]) == (10.0, 5.0)
    assert film[int(roi["center_y"]), int(roi["center_x"])] == 255
    assert (roi["x_min"], roi["y_min"], roi["x_max"], roi["y_max"]) == (7, 2, 14, 9)
    assert roi["label"] == "actionable"
    assert tables["images"]["path"].str.endswith(("mdb001.png", "mdb002.pgm")).all()
    assert len(tables["subjects"]) == 1


def test_circle_box_is_clipped_to_the_image(tmp_path):
    source = write_source(
        tmp_path / "mias",
        ["mdb001 D ARCH B 1 1 5", "mdb002 D NORM"],
        {"mdb001.png": np.zeros((20, 30), np.uint8), "mdb002.png": np.zeros((20, 30), np.uint8)},
    )
    roi = ingest(source, tmp_path)["rois"].iloc[0]
    assert (roi["x_min"], roi["y_min"], roi["x_max"], roi["y_max"]) == (0, 13, 7, 20)
    assert roi["abnormality"] == "architectural_distortion"


def test_images_not_in_info_are_ignored(tmp_path):
    blank = np.zeros((8, 8), np.uint8)
    source = write_source(
        tmp_path / "mias",
        ["mdb001 F NORM", "mdb002 F NORM"],
        {"mdb001.png": blank, "mdb002.png": blank, "mdb003.png": blank},
    )
    assert ingest(source, tmp_path)["images"]["image_id"].tolist() == ["mdb001", "mdb002"]


def test_every_bad_truth_row_and_missing_image_is_listed(tmp_path):
    blank = np.zeros((16, 16), np.uint8)
    source = write_source(
        tmp_path / "mias",
        [
            "mdb001 F CALC X 3 3 2",  # unknown severity
            "mdb002 F BLOB B 3 3 2",  # unknown class
            "mdb003 Q NORM",  # unknown tissue
            "mdb004 F CALC B 3 3",  # incomplete coordinates
            "mdb005 F CALC B 40 3 2",  # centre outside the 16 x 16 image
            "mdb006 F NORM",  # image missing
            "mdb007 F CIRC M 3 3 2",  # image missing
        ],
        {f"mdb00{n}.png": blank for n in range(1, 6)},
    )
    out_dir = tmp_path / "out"
    with pytest.raises(IngestError) as caught:
        ingest_mini_mias(source, PARAMS, out_dir)
    text = "\n".join(caught.value.problems)
    for expected in [
        "Info.txt line 3, column 'severity'",
        "Info.txt line 4, column 'class'",
        "Info.txt line 5, column 'tissue'",
        "Info.txt line 6, column 'x, y, radius'",
        "Info.txt line 7, column 'x, y': centre (40, 3) lies outside",
        "Info.txt line 8: image mdb006 not found",
        "Info.txt line 9: image mdb007 not found",
    ]:
        assert expected in text
    assert len(caught.value.problems) == 7
    assert not out_dir.exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_unreadable_image_is_reported(tmp_path, workers):
    # two films, so that two workers each read one
    films = {"mdb002.png": np.zeros((8, 8), np.uint8)}
    source = write_source(tmp_path / "mias", ["mdb001 F NORM", "mdb002 F NORM"], films)
    (source / "mdb001.png").write_bytes(b"not a png")
    with pytest.raises(IngestError, match=r"line 3: image mdb001: .*mdb001.png: unreadable"):
        ingest_mini_mias(source, PARAMS, tmp_path / "out", workers=workers)


def test_real_films_read_by_several_processes_give_the_same_tables(real, shared_data, tmp_path):
    tables = ingest_mini_mias(shared_data / "mini-mias-dev", PARAMS, tmp_path / "out", workers=3)
    for kind in ("images", "rois", "subjects"):
        pd.testing.assert_frame_equal(validate_corpus(**tables, where="test")[kind], real[kind])
