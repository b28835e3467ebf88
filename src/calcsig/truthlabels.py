"""Per-calcification truth of one mammogram: reading, checking and numbering its label image.

Pixel-level truth marks every calcification of an image on the image's own
pixel grid, 0 being background. It is given as either

- a label image: each calcification its own positive integer. Any distinct
  values will do; they are renumbered 1..n in increasing order, because the
  evaluation counts calcifications as the largest label; or
- a binary mask: one nonzero value (1, 255, True) for every calcification
  pixel. Each 8-connected component is one calcification (the connectivity
  the HDoG segmentation labels its own objects with), so calcifications
  that touch become one; give a label image to keep them apart.

An image whose nonzero pixels all share one value is read as a binary mask;
a label image of a single calcification reads the same, unless that
calcification's pixels are not connected.

Files are PNG or TIFF (one channel of integers: 1, 8, 16 or 32 bit, or a
palette image whose indices are the labels) or NumPy .npy (a 2-D integer or
boolean array). Values must be non-negative.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from .errors import ImageReadError

TRUTH_SUFFIXES = (".png", ".tif", ".tiff", ".npy")
# Pillow modes holding one channel of integers: bilevel, 8-bit, palette indices, 16-bit, 32-bit signed.
INTEGER_MODES = ("1", "L", "P", "I;16", "I;16B", "I;16L", "I")
CONNECTIVITY = np.ones((3, 3), dtype=bool)  # 8-connected


def load_truth_values(path: str | Path) -> np.ndarray:
    """The stored values of a truth file, checked: a 2-D array of non-negative integers (or booleans).

    Raises ImageReadError naming `path` when the file is missing, of another
    type, unreadable, not 2-D, not integer or has negative values.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "no such file")
    suffix = path.suffix.lower()
    if suffix not in TRUTH_SUFFIXES:
        raise ImageReadError(path, f"unsupported truth file type {path.suffix!r}; expected PNG, TIFF or .npy")
    values = _load_npy(path) if suffix == ".npy" else _load_raster(path)
    if values.ndim != 2:
        raise ImageReadError(path, f"truth must be one 2-D image; found an array of shape {values.shape}")
    if values.dtype.kind not in "biu":
        raise ImageReadError(path, f"truth values must be integers (labels) or booleans, not {values.dtype}")
    if values.dtype.kind == "i" and values.size and int(values.min()) < 0:
        raise ImageReadError(path, f"truth values must be non-negative; found {int(values.min())}")
    return values


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ImageReadError(path, f"unreadable .npy file ({type(exc).__name__}: {exc})") from exc


def _load_raster(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            pages = getattr(image, "n_frames", 1)
            if pages > 1:
                raise ImageReadError(path, f"truth must be one 2-D image; the file has {pages} pages")
            image.load()
            mode = image.mode
            values = np.asarray(image)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise ImageReadError(path, f"unreadable image ({type(exc).__name__}: {exc})") from exc
    if mode not in INTEGER_MODES:
        raise ImageReadError(
            path,
            f"pixel mode {mode} is not one channel of integers; save the truth as a grayscale "
            "label image (e.g. uint16 PNG) or a binary mask",
        )
    return values


def truth_labels(values: np.ndarray) -> np.ndarray:
    """Calcification labels 1..n (0 background, int32) of a checked label image or binary mask.

    values : 2-D array of non-negative integers or booleans. With one nonzero
    value it is a binary mask, labelled by 8-connected components (in
    scipy's raster order); otherwise its distinct nonzero values are
    renumbered 1..n in increasing order.
    """
    nonzero = values != 0
    distinct = np.unique(values[nonzero])
    if distinct.size <= 1:
        labels, _ = ndi.label(nonzero, structure=CONNECTIVITY)
        return labels.astype(np.int32, copy=False)
    if int(distinct[-1]) == distinct.size:  # already 1..n
        return values.astype(np.int32)
    labels = np.zeros(values.shape, dtype=np.int32)
    labels[nonzero] = np.searchsorted(distinct, values[nonzero]) + 1
    return labels


def read_truth_labels(path: str | Path) -> np.ndarray:
    """The calcification labels 1..n (int32, 0 background) of the truth file at `path`.

    See the module docstring for what a truth file may hold; raises
    ImageReadError naming `path` when it is not a valid one.
    """
    return truth_labels(load_truth_values(path))


def truth_problem(path: str | Path, height: int, width: int, image_id: str) -> str | None:
    """What makes `path` unfit as the truth of image `image_id` of `height` x `width` pixels; None when fit."""
    try:
        values = load_truth_values(path)
    except ImageReadError as exc:
        return str(exc)
    if values.shape != (height, width):
        return (
            f"{path} is {values.shape[1]} x {values.shape[0]} pixels, not the {width} x {height} pixels "
            f"of image {image_id}"
        )
    return None
