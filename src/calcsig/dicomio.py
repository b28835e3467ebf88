"""Reading DICOM files: what is DICOM, headers without pixels, pixel spacing, pixel decoding.

Compressed pixel data is decoded by one fixed decoder per transfer syntax,
all under permissive licences (calcsig is BSD-3-Clause):

- JPEG baseline 8-bit, JPEG extended 12-bit, JPEG lossless process 14 (any
  predictor) and SV1: libjpeg-turbo through imagecodecs (`jpeg8_decode`);
- JPEG-LS lossless and near-lossless: CharLS through imagecodecs (`jpegls_decode`);
- JPEG 2000 lossless and lossy, HTJ2K: OpenJPEG through pylibjpeg-openjpeg,
  called by pydicom with its pylibjpeg plugin;
- RLE lossless: pylibjpeg-rle, called by pydicom with its pylibjpeg plugin.

Uncompressed and deflated files need no codec. Licences (from each
package's metadata): imagecodecs BSD-3-Clause (its wheels bundle
libjpeg-turbo under the IJG, BSD-3-Clause and zlib licences, CharLS BSD-3-Clause
and OpenJPEG BSD-2-Clause); pylibjpeg, pylibjpeg-openjpeg and pylibjpeg-rle
MIT; pydicom MIT. The GPLv3 pylibjpeg-libjpeg is deliberately not used, and
python-gdcm is not used because pydicom's GDCM backend refuses 12-bit JPEG
extended.

imagecodecs is called directly, frame by frame (frames from
`pydicom.encaps.generate_frames`), rather than through a pydicom plugin:
pydicom has no imagecodecs plugin, and its plugins for these syntaxes are
GPL (pylibjpeg-libjpeg), GDCM or Pillow (8-bit JPEG only). The codecs return
the sample values of the codestream's precision; calcsig then applies what
pydicom does after decoding: values are checked to fit BitsStored, stored in
the container of BitsAllocated, and sign-extended from BitsStored when
PixelRepresentation is 1 (JPEG-LS and JPEG carry no sign; see `stored_values`). Only grayscale
(SamplesPerPixel 1) data is decoded this way, so PlanarConfiguration, which
only orders the samples of colour pixels, never applies; a colour file is
an error naming it.

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
from pydicom.encaps import generate_frames
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
_IMAGECODECS = (("imagecodecs", "imagecodecs"),)
_OPENJPEG = (("pylibjpeg", "pylibjpeg"), ("openjpeg", "pylibjpeg-openjpeg"))
_RLE = (("pylibjpeg", "pylibjpeg"), ("rle", "pylibjpeg-rle"))
# (import name, pip package) of every module that decoding a compressed syntax needs.
DECODER_PACKAGES: dict[str, tuple[tuple[str, str], ...]] = {
    uid.JPEGBaseline8Bit: _IMAGECODECS,
    uid.JPEGExtended12Bit: _IMAGECODECS,
    uid.JPEGLossless: _IMAGECODECS,
    uid.JPEGLosslessSV1: _IMAGECODECS,
    uid.JPEGLSLossless: _IMAGECODECS,
    uid.JPEGLSNearLossless: _IMAGECODECS,
    uid.JPEG2000Lossless: _OPENJPEG,
    uid.JPEG2000: _OPENJPEG,
    uid.HTJ2KLossless: _OPENJPEG,
    uid.HTJ2KLosslessRPCL: _OPENJPEG,
    uid.HTJ2K: _OPENJPEG,
    uid.RLELossless: _RLE,
}
# The imagecodecs function that decodes one frame of each syntax decoded by imagecodecs directly.
IMAGECODECS_FUNCTIONS = {
    uid.JPEGBaseline8Bit: "jpeg8_decode",
    uid.JPEGExtended12Bit: "jpeg8_decode",
    uid.JPEGLossless: "jpeg8_decode",
    uid.JPEGLosslessSV1: "jpeg8_decode",
    uid.JPEGLSLossless: "jpegls_decode",
    uid.JPEGLSNearLossless: "jpegls_decode",
}
# The other compressed syntaxes are decoded by pydicom with this plugin only.
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


def decoder_name(syntax: str) -> str:
    """What decodes `syntax`, as error messages name it: 'imagecodecs jpegls_decode', 'pydicom', ..."""
    if syntax in IMAGECODECS_FUNCTIONS:
        return f"imagecodecs {IMAGECODECS_FUNCTIONS[syntax]}"
    if syntax in DECODER_PACKAGES:
        return "+".join(package for _, package in DECODER_PACKAGES[syntax])
    return "pydicom"


def decode_pixels(dataset: Dataset, path: str | Path) -> np.ndarray:
    """The stored pixel values of a fully read dataset (no photometric inversion), in native byte order.

    Raises ImageReadError naming `path` and the transfer syntax when it cannot
    be decoded, and which package would decode it.
    """
    syntax = dataset.file_meta.get("TransferSyntaxUID") if hasattr(dataset, "file_meta") else None
    if syntax is None:
        raise ImageReadError(path, "unreadable DICOM: no TransferSyntaxUID in its file meta information")
    if syntax not in NATIVE_SYNTAXES and syntax not in DECODER_PACKAGES:
        other = OTHER_DECODERS.get(syntax)
        raise ImageReadError(
            path,
            f"transfer syntax {transfer_syntax_name(syntax)} is not one calcsig decodes"
            + (f"; {other}" if other else "")
            + f"; {CONVERT_HINT}",
        )
    missing = missing_decoder_packages(syntax)
    if missing:
        raise ImageReadError(
            path,
            f"transfer syntax {transfer_syntax_name(syntax)} needs {', '.join(missing)} to decode; "
            f"install it (pip install {' '.join(missing)})",
        )
    try:
        if syntax in IMAGECODECS_FUNCTIONS:
            pixels = _decode_with_imagecodecs(dataset, syntax)
        else:
            dataset.pixel_array_options(decoding_plugin="" if syntax in NATIVE_SYNTAXES else DECODING_PLUGIN)
            pixels = dataset.pixel_array
    except _UnfitPixelData as exc:
        raise ImageReadError(path, f"{exc} (transfer syntax {transfer_syntax_name(syntax)})") from None
    except Exception as exc:  # pydicom and the codecs raise many types for damaged pixel data
        raise ImageReadError(
            path,
            f"unreadable DICOM pixel data in transfer syntax {transfer_syntax_name(syntax)}, "
            f"decoded with {decoder_name(syntax)} ({type(exc).__name__}: {exc})",
        ) from exc
    # Big-endian files decode to big-endian arrays; later stages expect the machine's byte order.
    return pixels if pixels.dtype.isnative else pixels.astype(pixels.dtype.newbyteorder("="))


class _UnfitPixelData(ValueError):
    """Decoded pixel data that contradicts the file's Image Pixel description (size, bits, samples)."""


def _decode_with_imagecodecs(dataset: Dataset, syntax: str) -> np.ndarray:
    """Every frame of an encapsulated grayscale dataset, decoded by imagecodecs; one frame gives 2-D."""
    decode = getattr(importlib.import_module("imagecodecs"), IMAGECODECS_FUNCTIONS[syntax])
    samples = int(dataset.get("SamplesPerPixel", 1))
    if samples != 1:
        raise _UnfitPixelData(f"SamplesPerPixel {samples}: calcsig decodes grayscale images only")
    rows, columns = int(dataset.Rows), int(dataset.Columns)
    bits_allocated, bits_stored = int(dataset.BitsAllocated), int(dataset.get("BitsStored", dataset.BitsAllocated))
    if bits_allocated not in (8, 16) or not 1 <= bits_stored <= bits_allocated:
        raise _UnfitPixelData(
            f"BitsAllocated {bits_allocated} with BitsStored {bits_stored} is not JPEG data "
            "(8 or 16 bits allocated, at most that many stored)"
        )
    signed = int(dataset.get("PixelRepresentation", 0)) == 1
    n_frames = int(dataset.get("NumberOfFrames", 1) or 1)
    extended = None
    if "ExtendedOffsetTable" in dataset and "ExtendedOffsetTableLengths" in dataset:
        extended = (dataset.ExtendedOffsetTable, dataset.ExtendedOffsetTableLengths)
    codestreams = generate_frames(dataset.PixelData, number_of_frames=n_frames, extended_offsets=extended)
    frames = [
        stored_values(decode(codestream), (rows, columns), bits_allocated, bits_stored, signed)
        for _, codestream in zip(range(n_frames), codestreams)
    ]
    if len(frames) != n_frames:
        raise _UnfitPixelData(f"NumberOfFrames is {n_frames} but the pixel data holds {len(frames)} frame(s)")
    return frames[0] if n_frames == 1 else np.stack(frames)


def stored_values(
    decoded: np.ndarray, shape: tuple[int, int], bits_allocated: int, bits_stored: int, signed: bool
) -> np.ndarray:
    """A decoded grayscale frame as DICOM stores it: the BitsAllocated container, signed when it is.

    `decoded` holds the codec's unsigned sample values, which must have
    `shape` (rows, columns). Unsigned values must fit in `bits_stored` bits.
    Signed values (PixelRepresentation 1) are the two's complement of
    `bits_stored` bits, or that value already sign-extended to the container
    (encoders that compress signed 12-bit data at 16-bit precision write
    it so); both are sign-extended from bit `bits_stored` - 1, as pydicom does.
    Raises ValueError saying what does not fit.
    """
    if decoded.shape != shape:
        raise _UnfitPixelData(
            f"decoded frame of shape {decoded.shape} is not the {shape[0]} Rows x {shape[1]} Columns of its header"
        )
    unsigned = np.dtype(np.uint8 if bits_allocated == 8 else np.uint16)
    top = (1 << bits_stored) - 1
    largest = int(decoded.max()) if decoded.size else 0
    if largest > np.iinfo(unsigned).max:
        raise _UnfitPixelData(f"decoded values reach {largest}, beyond BitsAllocated {bits_allocated}")
    values = decoded.astype(unsigned)
    if not signed:
        if largest > top:
            raise _UnfitPixelData(f"decoded values reach {largest}, beyond BitsStored {bits_stored} (at most {top})")
        return values
    values = values.view(np.dtype(f"i{unsigned.itemsize}"))
    half = 1 << (bits_stored - 1)
    fits = (values.view(unsigned) <= top) | ((values >= -half) & (values < half))
    if not fits.all():
        raise _UnfitPixelData(
            f"decoded values such as {int(values.view(unsigned)[~fits][0])} are neither {bits_stored}-bit two's "
            f"complement nor sign-extended from it (BitsStored {bits_stored}, PixelRepresentation 1)"
        )
    unused = bits_allocated - bits_stored
    return (values << unused) >> unused  # arithmetic shift: the stored sign bit fills the unused bits


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
