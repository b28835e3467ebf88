"""Generic CSV manifest: happy path (paths relative to the manifest) and each kind of bad input."""

import csv
from pathlib import Path

import numpy as np
import pytest
from dicom_files import write_dicom
from PIL import Image

from calcsig.errors import IngestError
from calcsig.ingest.csv_manifest import ingest_csv, source_files
from calcsig.ingest.stage import build_corpus
from calcsig.segment.truth import truth_kinds
from calcsig.tables import read_table, validate_corpus
from calcsig.truthlabels import read_truth_labels

PARAMS = {"pixel_spacing_mm": None, "site": None}
HEIGHT, WIDTH = 40, 30


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """A data folder with a 16-bit PNG, a DICOM, an 8-bit PGM and a mask, all 40 x 30."""
    folder = tmp_path / "data"
    (folder / "images").mkdir(parents=True)
    Image.fromarray(np.full((HEIGHT, WIDTH), 40000, np.uint16)).save(folder / "images" / "a.png")
    write_dicom(
        folder / "images" / "b.dcm", np.full((HEIGHT, WIDTH), 1000, np.uint16), bits_stored=12, pixel_spacing=0.07
    )
    Image.fromarray(np.full((HEIGHT, WIDTH), 90, np.uint8)).save(folder / "images" / "c.pgm")
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[10:20, 5:8] = 1
    Image.fromarray(mask).save(folder / "images" / "b_mask.png")
    return folder


def write_manifest(folder: Path, rows: list[dict], name: str = "manifest.csv") -> Path:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    path = folder / name
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def image_row(image_id="a", subject_id="s1", image_path="images/a.png", label="benign", **more) -> dict:
    return {"image_id": image_id, "subject_id": subject_id, "image_path": image_path, "label": label, **more}


HAPPY_ROWS = [
    image_row(
        label="actionable",
        pixel_spacing_mm="0.1",
        laterality="left",
        view="CC",
        age="61",
        x_min="2",
        y_min="3",
        x_max="12",
        y_max="13",
        fine_class="dcis",
        given_split="train",
    ),
    image_row(
        label="benign",
        pixel_spacing_mm="0.1",
        laterality="left",
        view="CC",
        age="61",
        center_x="28",
        center_y="20",
        radius_px="4",
        given_split="train",
    ),
    image_row(
        image_id="b",
        image_path="images/b.dcm",
        label="benign",
        roi_id="b-mask",
        mask_path="images/b_mask.png",
        laterality="L",
        view="MLO",
        age="61",
        site="north",
        given_split="train",
    ),
    image_row(
        image_id="c",
        subject_id="s2",
        image_path="images/c.pgm",
        label="actionable",
        laterality="R",
        site="south",
        calc_type="PLEOMORPHIC",
    ),
    image_row(image_id="d", subject_id="s2", image_path="images/a.png", label="", laterality="R", site="south"),
]


def ingest(manifest: Path, tmp_path: Path, params=PARAMS, workers: int = 1) -> dict:
    tables = ingest_csv(manifest, params, tmp_path / "out", workers=workers)
    return validate_corpus(tables["images"], tables["rois"], tables["subjects"], "test")


@pytest.mark.parametrize("workers", [1, 2])
def test_happy_path(image_folder, tmp_path, monkeypatch, workers):
    write_manifest(image_folder, HAPPY_ROWS)
    monkeypatch.chdir(tmp_path)  # image paths are relative to the manifest, not the working directory
    tables = ingest(Path("data/manifest.csv"), tmp_path, {**PARAMS, "pixel_spacing_mm": 0.2}, workers)
    images = tables["images"].set_index("image_id")
    assert images.loc["a", ["bits", "height", "width", "pixel_spacing_mm", "laterality"]].tolist() == [
        16,
        HEIGHT,
        WIDTH,
        0.1,
        "L",
    ]
    assert images.loc["b", ["bits", "pixel_spacing_mm"]].tolist() == [12, 0.07]  # spacing from the DICOM
    assert images.loc["c", ["bits", "pixel_spacing_mm"]].tolist() == [8, 0.2]  # spacing from params
    assert Path(images.loc["c", "path"]) == Path("data/images/c.pgm")
    assert images["has_pixels"].all() and images["sha256"].str.len().eq(64).all()
    assert images.loc["a", "sha256"] == images.loc["d", "sha256"]
    rois = tables["rois"].set_index("roi_id")
    assert list(rois.index) == ["a_1", "a_2", "b-mask", "c_1"]
    assert rois.loc["a_1", ["shape", "label", "fine_class", "x_max"]].tolist() == ["bbox", "actionable", "dcis", 12]
    assert rois.loc["a_2", ["shape", "x_min", "y_min", "x_max", "y_max"]].tolist() == ["circle", 24, 16, 30, 25]
    assert rois.loc["b-mask", ["shape", "x_min", "y_min", "x_max", "y_max"]].tolist() == ["mask", 5, 10, 8, 20]
    assert rois.loc["c_1", "shape"] == "image"
    subjects = tables["subjects"].set_index("subject_id")
    assert subjects["n_images"].to_dict() == {"s1": 2, "s2": 2}
    assert subjects.loc["s1", "age"] == 61 and subjects.loc["s2", "site"] == "south"


def raised(manifest: Path, tmp_path: Path, params=PARAMS, workers: int = 1) -> list[str]:
    out_dir = tmp_path / "out"
    with pytest.raises(IngestError) as caught:
        ingest_csv(manifest, params, out_dir, workers=workers)
    assert not out_dir.exists()
    return caught.value.problems


def test_missing_and_unknown_columns(image_folder, tmp_path):
    manifest = write_manifest(image_folder, [{"image_id": "a", "image_path": "images/a.png", "spacing": "0.1"}])
    problems = raised(manifest, tmp_path)
    assert problems == [
        "manifest.csv: missing required column(s): subject_id, label",
        "manifest.csv: unknown column(s): spacing (see docs/manifest.md)",
    ]


def test_unknown_labels_are_all_listed(image_folder, tmp_path):
    manifest = write_manifest(
        image_folder,
        [
            image_row(pixel_spacing_mm="0.1"),
            image_row(label="malignant", pixel_spacing_mm="0.1"),
            image_row(label="Benign?", pixel_spacing_mm="0.1"),
        ],
    )
    problems = raised(manifest, tmp_path)
    assert [p.split(":")[0] for p in problems] == [
        "manifest.csv row 3, column 'label'",
        "manifest.csv row 4, column 'label'",
    ]


def test_duplicate_roi_ids_and_conflicting_image_rows(image_folder, tmp_path):
    manifest = write_manifest(
        image_folder,
        [
            image_row(roi_id="r1", pixel_spacing_mm="0.1"),
            image_row(roi_id="r1", pixel_spacing_mm="0.1"),
            image_row(image_path="images/c.pgm", roi_id="r2", pixel_spacing_mm="0.1"),
            image_row(image_id="bad id!", pixel_spacing_mm="0.1"),
        ],
    )
    problems = raised(manifest, tmp_path)
    assert any(p.startswith("manifest.csv rows 2, 3, column 'roi_id': duplicate ROI r1") for p in problems)
    assert any(
        p.startswith("manifest.csv row 4, column 'image_path': image a has 'images/c.pgm' here") for p in problems
    )
    assert any(p.startswith("manifest.csv row 5, column 'image_id': 'bad id!' is not a file-safe ID") for p in problems)


@pytest.mark.parametrize("workers", [1, 2])
def test_missing_and_unreadable_images(image_folder, tmp_path, workers):
    (image_folder / "images" / "broken.png").write_bytes(b"not a png")
    manifest = write_manifest(
        image_folder,
        [
            image_row(image_id="x", image_path="images/gone.png", pixel_spacing_mm="0.1"),
            image_row(image_id="y", image_path="images/also_gone.dcm", pixel_spacing_mm="0.1"),
            image_row(image_id="z", image_path="images/broken.png", pixel_spacing_mm="0.1"),
            image_row(image_id="w", image_path="images/c.pgm"),
        ],
    )  # no spacing anywhere
    problems = raised(manifest, tmp_path, workers=workers)
    assert len(problems) == 4
    assert "row(s) 2, column 'image_path'" in problems[0] and "gone.png: no such file" in problems[0]
    assert "row(s) 3, column 'image_path'" in problems[1] and "also_gone.dcm: no such file" in problems[1]
    assert "row(s) 4, column 'image_path'" in problems[2] and "broken.png: unreadable" in problems[2]
    assert "row(s) 5, column 'pixel_spacing_mm'" in problems[3]


def test_rois_outside_their_image_and_bad_geometry(image_folder, tmp_path):
    wrong_size = image_folder / "images" / "small_mask.png"
    Image.fromarray(np.ones((5, 5), np.uint8)).save(wrong_size)
    Image.fromarray(np.zeros((HEIGHT, WIDTH), np.uint8)).save(image_folder / "images" / "empty_mask.png")
    common = {"pixel_spacing_mm": "0.1"}
    manifest = write_manifest(
        image_folder,
        [
            image_row(x_min="0", y_min="0", x_max="31", y_max="10", **common),  # wider than 30
            image_row(center_x="15", center_y="40", radius_px="3", **common),  # centre below the image
            image_row(mask_path="images/small_mask.png", **common),  # other grid
            image_row(mask_path="images/empty_mask.png", **common),  # nothing in it
            image_row(x_min="0", y_min="0", x_max="5", **common),  # incomplete box
            image_row(x_min="1", y_min="1", x_max="5", y_max="5", radius_px="2", center_x="1", center_y="1", **common),
            image_row(image_id="d", label="", x_min="1", **common),  # geometry without a finding
        ],
    )
    problems = raised(manifest, tmp_path)
    expected = [
        "row 2, column 'x_min, y_min, x_max, y_max': box [0,31) x [0,10) lies outside image a",
        "row 3, column 'center_x, center_y': centre (15, 40) lies outside",
        "row 4, column 'mask_path'",
        "row 5, column 'mask_path'",
        "row 6, column 'y_max': box geometry is",
        "row 7: gives more than one ROI geometry",
        "row 8, column 'label': is empty",
    ]
    for text in expected:
        assert sum(text in p for p in problems) == 1, text
    assert len(problems) == len(expected)


def calcification_labels() -> np.ndarray:
    """Three calcifications labelled 1..3 on the 40 x 30 grid of the test images."""
    labels = np.zeros((HEIGHT, WIDTH), np.uint16)
    labels[4:6, 4:6], labels[20, 10], labels[30:33, 25] = 1, 2, 3
    return labels


@pytest.fixture
def truth_folder(image_folder) -> Path:
    """Truth for the test images: a 16-bit PNG label image, a 0/255 PNG mask, a TIFF label image, an .npy array."""
    truth = image_folder / "truth"
    truth.mkdir()
    labels = calcification_labels()
    Image.fromarray(labels).save(truth / "a_labels.png")
    Image.fromarray(np.where(labels > 0, 255, 0).astype(np.uint8)).save(truth / "b_mask.png")
    Image.fromarray(labels).save(truth / "c_labels.tif")
    np.save(truth / "d_labels.npy", labels.astype(np.int64) * 10)
    return image_folder


TRUTH_ROWS = [
    image_row(pixel_spacing_mm="0.1", truth_mask_path="truth/a_labels.png"),
    image_row(label="actionable", pixel_spacing_mm="0.1", truth_mask_path="truth/a_labels.png"),
    image_row(image_id="b", image_path="images/b.dcm", truth_mask_path="truth/b_mask.png"),
    image_row(image_id="c", subject_id="s2", image_path="images/c.pgm", label="", pixel_spacing_mm="0.1"),
    image_row(
        image_id="e",
        subject_id="s2",
        image_path="images/c.pgm",
        label="",
        pixel_spacing_mm="0.1",
        truth_mask_path="truth/c_labels.tif",
    ),
    image_row(
        image_id="f",
        subject_id="s3",
        image_path="images/a.png",
        pixel_spacing_mm="0.1",
        truth_mask_path="truth/d_labels.npy",
    ),
]


def test_truth_label_images_and_binary_masks_are_carried_into_images_tsv(truth_folder, tmp_path, monkeypatch):
    write_manifest(truth_folder, TRUTH_ROWS)
    monkeypatch.chdir(tmp_path)  # truth paths are relative to the manifest, like image paths
    truth = ingest(Path("data/manifest.csv"), tmp_path)["images"].set_index("image_id")["truth_mask_path"]
    assert truth.isna().to_dict() == {"a": False, "b": False, "c": True, "e": False, "f": False}
    assert truth.dropna().to_dict() == {
        "a": str(Path("data/truth/a_labels.png")),
        "b": str(Path("data/truth/b_mask.png")),
        "e": str(Path("data/truth/c_labels.tif")),
        "f": str(Path("data/truth/d_labels.npy")),
    }
    for image_id in ("a", "b", "e", "f"):  # the mask's components and the renumbered .npy give the same three
        np.testing.assert_array_equal(read_truth_labels(truth[image_id]), calcification_labels())


def test_truth_problems_of_every_image_are_reported_with_their_rows(truth_folder, tmp_path):
    truth = truth_folder / "truth"
    np.save(truth / "small.npy", np.zeros((5, 5), np.uint8))
    np.save(truth / "float.npy", calcification_labels().astype(np.float64))
    np.save(truth / "negative.npy", -calcification_labels().astype(np.int32))
    common = {"pixel_spacing_mm": "0.1"}
    manifest = write_manifest(
        truth_folder,
        [
            image_row(truth_mask_path="truth/gone.png", **common),
            image_row(truth_mask_path="truth/gone.png", **common),
            image_row(image_id="b", image_path="images/b.dcm", truth_mask_path="truth/small.npy"),
            image_row(image_id="c", image_path="images/c.pgm", truth_mask_path="truth/float.npy", **common),
            image_row(image_id="d", image_path="images/a.png", truth_mask_path="truth/negative.npy", **common),
            image_row(image_id="e", image_path="images/a.png", truth_mask_path="truth/a_labels.png", **common),
            image_row(image_id="e", image_path="images/a.png", truth_mask_path="truth/b_mask.png", **common),
        ],
    )
    problems = raised(manifest, tmp_path)
    assert problems == [
        "manifest.csv row 8, column 'truth_mask_path': image e has 'truth/b_mask.png' here but "
        "'truth/a_labels.png' in row 7",
        f"manifest.csv row(s) 2, 3, column 'truth_mask_path': {truth / 'gone.png'}: no such file",
        f"manifest.csv row(s) 4, column 'truth_mask_path': {truth / 'small.npy'} is 5 x 5 pixels, "
        f"not the {WIDTH} x {HEIGHT} pixels of image b",
        f"manifest.csv row(s) 5, column 'truth_mask_path': {truth / 'float.npy'}: truth values must be "
        "integers (labels) or booleans, not float64",
        f"manifest.csv row(s) 6, column 'truth_mask_path': {truth / 'negative.npy'}: truth values must be "
        "non-negative; found -3",
    ]


def test_source_files_are_the_manifest_and_every_image_mask_and_truth_it_names(truth_folder):
    manifest = write_manifest(truth_folder, [*TRUTH_ROWS, image_row(image_id="g", truth_mask_path="truth/gone.png")])
    folder = truth_folder
    assert source_files(manifest, PARAMS) == [
        manifest,
        *sorted(
            [
                folder / "images" / "a.png",
                folder / "images" / "b.dcm",
                folder / "images" / "c.pgm",
                folder / "truth" / "a_labels.png",
                folder / "truth" / "b_mask.png",
                folder / "truth" / "c_labels.tif",
                folder / "truth" / "d_labels.npy",
            ]
        ),
    ]


def test_the_segmentation_stage_reads_the_manifests_truth_from_images_tsv(truth_folder, tmp_path, monkeypatch):
    write_manifest(truth_folder, TRUTH_ROWS)
    monkeypatch.chdir(tmp_path)
    outputs = {kind: f"results/corpus/{kind}.tsv" for kind in ("images", "rois", "subjects")}
    build_corpus("csv", "data/manifest.csv", PARAMS, "results/corpus", outputs)
    images, rois = read_table(outputs["images"], "images"), read_table(outputs["rois"], "rois")
    kinds = truth_kinds(images, rois).set_axis(images["image_id"])
    assert kinds["truth_path"].notna().to_dict() == {"a": True, "b": True, "c": False, "e": True, "f": True}
    assert read_truth_labels(kinds.loc["b", "truth_path"]).max() == 3
    # an image without a mask among images with one has no path at all (not NaN, which reads as a path)
    assert kinds.loc["c", "truth_path"] is None and kinds.loc["c"]["truth_path"] is None
