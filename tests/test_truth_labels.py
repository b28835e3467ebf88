"""calcsig.truthlabels: per-calcification truth files as users give them, read to labels 1..n."""

import numpy as np
import pytest
from PIL import Image

from calcsig.errors import ImageReadError
from calcsig.truthlabels import read_truth_labels, truth_labels, truth_problem

# Three calcifications: a 2x2 square, a diagonal of three pixels (8-connected only), a single pixel.
THREE = np.zeros((12, 10), np.uint16)
THREE[1:3, 1:3] = 1
THREE[5, 5], THREE[6, 6], THREE[7, 7] = 2, 2, 2
THREE[10, 2] = 3


def objects(labels: np.ndarray) -> list[set]:
    """Each label's pixels as a set of (row, column), in label order."""
    return [set(zip(*np.nonzero(labels == k))) for k in range(1, int(labels.max()) + 1)]


def test_a_label_image_1_to_n_is_read_as_it_is(tmp_path):
    path = tmp_path / "truth.png"
    Image.fromarray(THREE).save(path)
    labels = read_truth_labels(path)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, THREE)


def test_a_binary_mask_becomes_one_label_per_8_connected_component(tmp_path):
    path = tmp_path / "mask.png"
    Image.fromarray(np.where(THREE > 0, 255, 0).astype(np.uint8)).save(path)
    labels = read_truth_labels(path)
    assert sorted(map(sorted, objects(labels))) == sorted(map(sorted, objects(THREE)))


def test_touching_calcifications_in_a_binary_mask_become_one(tmp_path):
    mask = np.zeros((6, 6), bool)
    mask[1:3, 1:3] = True
    mask[3, 3] = True  # touches the square at a corner
    np.save(tmp_path / "mask.npy", mask)
    assert read_truth_labels(tmp_path / "mask.npy").max() == 1


def test_label_values_with_gaps_are_renumbered_1_to_n_in_increasing_order(tmp_path):
    values = THREE.astype(np.int64) * 7  # labels 7, 14, 21
    np.save(tmp_path / "gaps.npy", values)
    np.testing.assert_array_equal(read_truth_labels(tmp_path / "gaps.npy"), THREE)


def test_a_tiff_label_image_is_read_and_an_empty_truth_has_no_calcification(tmp_path):
    Image.fromarray(THREE).save(tmp_path / "truth.tif")
    np.testing.assert_array_equal(read_truth_labels(tmp_path / "truth.tif"), THREE)
    assert not truth_labels(np.zeros((4, 4), np.uint8)).any()


def save_pages(path, pages):
    first, *rest = [Image.fromarray(page) for page in pages]
    first.save(path, save_all=True, append_images=rest)


@pytest.mark.parametrize(
    ("name", "write", "message"),
    [
        ("float.npy", lambda p: np.save(p, THREE.astype(np.float32)), "truth values must be integers"),
        ("negative.npy", lambda p: np.save(p, -THREE.astype(np.int32)), "must be non-negative; found -3"),
        ("stack.npy", lambda p: np.save(p, np.stack([THREE, THREE])), "one 2-D image; found an array of shape"),
        ("rgb.png", lambda p: Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(p), "pixel mode RGB is not one"),
        ("float.tif", lambda p: Image.fromarray(THREE.astype(np.float32)).save(p), "pixel mode F is not one"),
        ("pages.tif", lambda p: save_pages(p, [THREE, THREE]), "one 2-D image; the file has 2 pages"),
        ("truth.jpg", lambda p: Image.fromarray(THREE.astype(np.uint8)).save(p), "unsupported truth file type"),
        ("broken.png", lambda p: p.write_bytes(b"not a PNG"), "unreadable image"),
    ],
)
def test_files_that_are_no_truth_are_refused_naming_the_file(tmp_path, name, write, message):
    path = tmp_path / name
    write(path)
    with pytest.raises(ImageReadError, match=message) as caught:
        read_truth_labels(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_a_truth_of_another_size_than_its_image_is_named_with_both_sizes(tmp_path):
    np.save(tmp_path / "t.npy", THREE)
    assert truth_problem(tmp_path / "t.npy", 12, 10, "a") is None
    assert (
        truth_problem(tmp_path / "t.npy", 20, 10, "a")
        == f"{tmp_path / 't.npy'} is 10 x 12 pixels, not the 10 x 20 pixels of image a"
    )
    assert truth_problem(tmp_path / "none.png", 12, 10, "a") == f"{tmp_path / 'none.png'}: no such file"
