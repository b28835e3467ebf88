"""Reading mammograms from disk: DICOM, PNG, PGM and TIFF, as stored integer arrays.

`read_image` is the one entry point. Pixels come back in their stored integer
dtype with calcifications bright: a DICOM stored as MONOCHROME1 (low values
bright) is inverted within its stored bit range. DICOM reading, decoding of
compressed transfer syntaxes and pixel spacing are in `calcsig.dicomio`
(PixelSpacing, else ImagerPixelSpacing corrected for magnification). Pixel
spacing comes from DICOM only; the resolution tags of PNG and TIFF files are
usually display defaults (72 dpi), not the detector pitch, so raster images
report None and the source supplies the spacing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ImageReadError

DICOM_SUFFIXES = (".dcm", ".dicom")
RASTER_SUFFIXES = (".png", ".pgm", ".pnm", ".tif", ".tiff")


@dataclass(frozen=True)
class ImageData:
    """One grayscale image.

    pixels: 2-D integer array (rows x columns) in the file's stored dtype, bright = dense.
    pixel_spacing_mm: pixel edge in millimetres, or None when the file does not say.
    bits: stored bits per pixel (DICOM BitsStored; 8 or 16 for rasters, 1 for bilevel).
    photometric: the file's photometric interpretation as stored (MONOCHROME1,
        MONOCHROME2); `pixels` are always in the MONOCHROME2 sense.
    """

    pixels: np.ndarray
    pixel_spacing_mm: float | None
    bits: int
    photometric: str

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


def read_image(path: str | Path) -> ImageData:
    """Read a DICOM, PNG, PGM or TIFF image; raise ImageReadError naming `path` when it cannot."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "no such file")
    if _is_dicom(path):
        return _read_dicom(path)
    if path.suffix.lower() in RASTER_SUFFIXES:
        return _read_raster(path)
    raise ImageReadError(path, f"unsupported image type {path.suffix!r}; expected DICOM, PNG, PGM or TIFF")


def _is_dicom(path: Path) -> bool:
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    # DICOM files from archives often have no suffix; the Part 10 preamble says what they are.
    with open(path, "rb") as fh:
        head = fh.read(132)
    return head[128:132] == b"DICM"


def _read_dicom(path: Path) -> ImageData:
    from . import dicomio  # deferred: only DICOM sources need pydicom and its codecs

    dataset = dicomio.read_dataset(path)
    pixels = dicomio.decode_pixels(dataset, path)
    if pixels.ndim != 2:
        raise ImageReadError(path, f"expected one grayscale frame, found pixel data of shape {pixels.shape}")
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ImageReadError(path, f"photometric interpretation {photometric} is not grayscale")
    bits = int(dataset.get("BitsStored", pixels.dtype.itemsize * 8))
    if photometric == "MONOCHROME1":
        pixels = _invert_stored_range(pixels, bits, signed=int(dataset.get("PixelRepresentation", 0)) == 1)
    return ImageData(
        pixels=pixels, pixel_spacing_mm=dicomio.pixel_spacing_mm(dataset, path), bits=bits, photometric=photometric
    )


def _invert_stored_range(pixels: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    """Mirror values within the stored range so that the brightest becomes the darkest."""
    if signed:
        # [-2^(b-1), 2^(b-1) - 1] maps onto itself by v -> -1 - v.
        return (-1 - pixels.astype(np.int64)).astype(pixels.dtype)
    top = (1 << bits) - 1
    return (top - pixels.astype(np.int64)).astype(pixels.dtype)


def _read_raster(path: Path) -> ImageData:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            pixels = np.asarray(image)
    except Image.DecompressionBombError as exc:
        # the header claims more pixels than any mammogram has; reading on would exhaust memory
        raise ImageReadError(path, f"refused: {exc}") from exc
    except Exception as exc:  # Pillow raises many types (TypeError, struct.error, ...) on a damaged file
        raise ImageReadError(path, f"unreadable image ({type(exc).__name__}: {exc})") from exc
    if pixels.ndim != 2:
        raise ImageReadError(path, f"expected a grayscale image, found mode {mode} with shape {pixels.shape}")
    if mode == "1":
        return ImageData(pixels=pixels.astype(np.uint8), pixel_spacing_mm=None, bits=1, photometric="MONOCHROME2")
    if mode == "L":
        return ImageData(pixels=pixels, pixel_spacing_mm=None, bits=8, photometric="MONOCHROME2")
    if mode.startswith("I;16"):
        return ImageData(pixels=pixels.astype(np.uint16), pixel_spacing_mm=None, bits=16, photometric="MONOCHROME2")
    if mode == "I":
        # Pillow widens some 16-bit files to 32-bit signed; keep them 16-bit when the values fit.
        if pixels.size and (pixels.min() < 0 or pixels.max() > np.iinfo(np.uint16).max):
            raise ImageReadError(path, "32-bit pixel values outside the 16-bit range are not supported")
        return ImageData(pixels=pixels.astype(np.uint16), pixel_spacing_mm=None, bits=16, photometric="MONOCHROME2")
    raise ImageReadError(path, f"pixel mode {mode} is not integer grayscale")
