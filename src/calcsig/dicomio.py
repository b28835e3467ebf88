"""Reading DICOM files: what is DICOM, headers without pixels, pixel spacing, pixel decoding.

Compressed pixel data is decoded with pylibjpeg and its plugins, through
pydicom: pylibjpeg-libjpeg (JPEG baseline, JPEG extended 12-bit, JPEG
lossless process 14 and SV1, JPEG-LS lossless and near-lossless),
pylibjpeg-openjpeg (JPEG 2000 lossless and lossy, HTJ2K) and pylibjpeg-rle
(RLE lossless). Uncompressed and deflated files need no plugin.

Why pylibjpeg rather than python-gdcm: it is the only pydicom backend that
decodes every syntax mammography archives export, 12-bit JPEG extended
included (pydicom's GDCM backend refuses 12-bit JPEG extended; Pillow decodes
only 8-bit JPEG and JPEG 2000); its wheels install with plain pip; and it is
the backend pydicom's own test suite is built around. Note for redistributors:
pylibjpeg-libjpeg is GPLv3, the other plugins are MIT.

One decoder is chosen per transfer syntax instead of pydicom's "first plugin
that works": lossy decoders may round differently, so a user with GDCM or
Pillow also installed still gets the same pixels, hence the same outputs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.filereader import read_partial
from pydicom.multival import MultiValue

from .errors import ImageReadError

PREAMBLE_BYTES = 128
PART10_PREFIX = b"DICM"
# Pixel Data, Float Pixel Data and Double Float Pixel Data: where a header ends.
PIXEL_DATA_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
# Pixel pitch may differ between rows and columns by rounding only.
ANISOTROPY_TOLERANCE = 0.01

NATIVE_SYNTAXES = frozenset(
    {
        uid.ImplicitVRLittleEndian,
        uid.ExplicitVRLittleEndian,
        uid.DeflatedExplicitVRLittleEndian,
        uid.ExplicitVRBigEndian,
    }
)
_LIBJPEG = (("pylibjpeg", "pylibjpeg"), ("libjpeg", "pylibjpeg-libjpeg"))
_OPENJPEG = (("pylibjpeg", "pylibjpeg"), ("openjpeg", "pylibjpeg-openjpeg"))
_RLE = (("pylibjpeg", "pylibjpeg"), ("rle", "pylibjpeg-rle"))
# (import name, pip package) of every module that decoding a compressed syntax needs.
DECODER_PACKAGES: dict[str, tuple[tuple[str, str], ...]] = {
    uid.JPEGBaseline8Bit: _LIBJPEG,
    uid.JPEGExtended12Bit: _LIBJPEG,
    uid.JPEGLossless: _LIBJPEG,
    uid.JPEGLosslessSV1: _LIBJPEG,
    uid.JPEGLSLossless: _LIBJPEG,
    uid.JPEGLSNearLossless: _LIBJPEG,
    uid.JPEG2000Lossless: _OPENJPEG,
    uid.JPEG2000: _OPENJPEG,
    uid.HTJ2KLossless: _OPENJPEG,
    uid.HTJ2KLosslessRPCL: _OPENJPEG,
    uid.HTJ2K: _OPENJPEG,
    uid.RLELossless: _RLE,
}
DECODING_PLUGIN = "pylibjpeg"
CONVERT_HINT = (
    "decompress it first, e.g. with GDCM (pip install python-gdcm; gdcmconv --raw IN OUT) "
    "or DCMTK (dcmdjpeg, dcmdjpls, dcmdrle)"
)
# Syntaxes calcsig does not decode, and what would.
OTHER_DECODERS = {
    uid.JPEG2000MCLossless: "GDCM (python-gdcm) reads JPEG 2000 Part 2 multi-component",
    uid.JPEG2000MC: "GDCM (python-gdcm) reads JPEG 2000 Part 2 multi-component",
}


def has_part10_preamble(path: str | Path) -> bool:
    """Whether `path` starts like a DICOM Part 10 file: a 128-byte preamble, then 'DICM'."""
    with open(path, "rb") as fh:
        head = fh.read(PREAMBLE_BYTES + len(PART10_PREFIX))
    return head[PREAMBLE_BYTES:] == PART10_PREFIX


@dataclass(frozen=True)
class DicomHeader:
    """A file's data elements up to its pixel data, and whether pixel data follows."""

    dataset: Dataset
    has_pixel_data: bool


def read_header(path: str | Path) -> DicomHeader:
    """Read a Part 10 file's header, stopping before the pixel data (nothing is decoded).

    This is pydicom's `stop_before_pixels`, which also tells whether the file
    has pixel data at all (structured reports and presentation states do not).
    Raises ImageReadError naming `path` when the file is not readable DICOM.
    """
    met: list[int] = []

    def at_pixel_data(tag, vr, length) -> bool:
        if tag in PIXEL_DATA_TAGS:
            met.append(int(tag))
            return True
        return False

    try:
        with open(path, "rb") as fh:
            dataset = read_partial(fh, stop_when=at_pixel_data)
    except Exception as exc:  # pydicom raises many types for a damaged header
        raise ImageReadError(path, f"unreadable DICOM header ({type(exc).__name__}: {exc})") from exc
    # pydicom reads what it can of a damaged file; a real object says how it is encoded and what it is.
    if "TransferSyntaxUID" not in dataset.file_meta:
        raise ImageReadError(path, "unreadable DICOM header: its file meta information has no TransferSyntaxUID")
    if "SOPClassUID" not in dataset and "MediaStorageSOPClassUID" not in dataset.file_meta:
        raise ImageReadError(path, "unreadable DICOM header: no SOPClassUID, so it is no DICOM object")
    return DicomHeader(dataset=dataset, has_pixel_data=bool(met))


def transfer_syntax_name(syntax: str) -> str:
    """'JPEG-LS Lossless Image Compression (1.2.840.10008.1.2.4.80)', or the bare UID when unknown."""
    name = uid.UID(syntax).name
    return f"{name} ({syntax})" if name and name != syntax else str(syntax)


def missing_decoder_packages(syntax: str) -> list[str]:
    """pip packages that decoding `syntax` needs and that cannot be imported here."""
    missing = []
    for module, package in DECODER_PACKAGES.get(syntax, ()):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    return missing


def decode_pixels(dataset: Dataset, path: str | Path) -> np.ndarray:
    """The stored pixel values of a fully read dataset (no photometric inversion), in native byte order.

    Raises ImageReadError naming `path` and the transfer syntax when it cannot
    be decoded, and which package would decode it.
    """
    syntax = dataset.file_meta.get("TransferSyntaxUID") if hasattr(dataset, "file_meta") else None
    if syntax is None:
        raise ImageReadError(path, "unreadable DICOM: no TransferSyntaxUID in its file meta information")
    if syntax in NATIVE_SYNTAXES:
        plugin = ""
    elif syntax in DECODER_PACKAGES:
        missing = missing_decoder_packages(syntax)
        if missing:
            raise ImageReadError(
                path,
                f"transfer syntax {transfer_syntax_name(syntax)} needs {', '.join(missing)} to decode; "
                f"install it (pip install {' '.join(missing)})",
            )
        plugin = DECODING_PLUGIN
    else:
        other = OTHER_DECODERS.get(syntax)
        raise ImageReadError(
            path,
            f"transfer syntax {transfer_syntax_name(syntax)} is not one calcsig decodes"
            + (f"; {other}" if other else "")
            + f"; {CONVERT_HINT}",
        )
    try:
        dataset.pixel_array_options(decoding_plugin=plugin)
        pixels = dataset.pixel_array
    except Exception as exc:  # pydicom and the codecs raise many types for damaged pixel data
        decoder = "pydicom" if not plugin else "+".join(p for _, p in DECODER_PACKAGES[syntax])
        raise ImageReadError(
            path,
            f"unreadable DICOM pixel data in transfer syntax {transfer_syntax_name(syntax)}, "
            f"decoded with {decoder} ({type(exc).__name__}: {exc})",
        ) from exc
    # Big-endian files decode to big-endian arrays; later stages expect the machine's byte order.
    return pixels if pixels.dtype.isnative else pixels.astype(pixels.dtype.newbyteorder("="))


def read_dataset(path: str | Path) -> Dataset:
    """Read a whole DICOM file (pixel data not yet decoded); ImageReadError naming `path` if unreadable."""
    try:
        return pydicom.dcmread(path)
    except Exception as exc:  # pydicom raises many types for a damaged file
        raise ImageReadError(path, f"unreadable DICOM ({type(exc).__name__}: {exc})") from exc


def _spacing_pair(dataset: Dataset, keyword: str, path: str | Path) -> tuple[float, float] | None:
    value = dataset.get(keyword)
    if value is None or value == "" or (hasattr(value, "__len__") and len(value) == 0):
        return None
    values = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
    try:
        row, column = (float(v) for v in values) if len(values) == 2 else (float(values[0]),) * 2
    except (TypeError, ValueError) as exc:
        raise ImageReadError(path, f"{keyword} {values!r} is not numeric") from exc
    if row <= 0 or column <= 0:
        raise ImageReadError(path, f"{keyword} {values} is not positive")
    if abs(row - column) > ANISOTROPY_TOLERANCE * max(row, column):
        raise ImageReadError(path, f"{keyword} {values} describes non-square pixels, which calcsig does not support")
    return row, column


def magnification_factor(dataset: Dataset, path: str | Path) -> float:
    """EstimatedRadiographicMagnificationFactor (source-detector over source-object distance); 1 when absent."""
    value = dataset.get("EstimatedRadiographicMagnificationFactor")
    if value is None or value == "":
        return 1.0
    try:
        factor = float(value)
    except (TypeError, ValueError) as exc:
        raise ImageReadError(path, f"EstimatedRadiographicMagnificationFactor {value!r} is not numeric") from exc
    if not factor > 0:
        raise ImageReadError(path, f"EstimatedRadiographicMagnificationFactor {value!r} is not positive")
    return factor


def pixel_spacing_mm(dataset: Dataset, path: str | Path) -> float | None:
    """Pixel edge in mm in the plane of the breast, or None when the file gives no spacing.

    ImagerPixelSpacing (0018,1164) is the pitch at the detector; the breast
    lies between source and detector, so its image is magnified by
    EstimatedRadiographicMagnificationFactor (0018,1114; about 1.1 for contact
    views, 1.5-2 for magnification views) and the pitch in the breast plane is
    ImagerPixelSpacing / factor. PixelSpacing (0028,0030) is, in projection
    radiography, already the spacing in the patient (corrected or calibrated),
    so it is preferred when both are given: it is the modality's own, possibly
    fiducial, calibration and dividing it again would correct twice. The one
    exception is a PixelSpacing that merely repeats ImagerPixelSpacing without
    a PixelSpacingCalibrationType (0028,0A02): that is the detector pitch
    copied over, and it is corrected like ImagerPixelSpacing.
    Raises ImageReadError for a spacing that is not numeric, not positive or
    not square.
    """
    spacing = _spacing_pair(dataset, "PixelSpacing", path)
    imager = _spacing_pair(dataset, "ImagerPixelSpacing", path)
    if spacing is not None:
        calibrated = str(dataset.get("PixelSpacingCalibrationType", "")).strip() != ""
        copied = imager is not None and np.allclose(spacing, imager, rtol=1e-6, atol=0)
        if calibrated or not copied:
            return spacing[0]
    if imager is not None:
        return imager[0] / magnification_factor(dataset, path)
    return None
