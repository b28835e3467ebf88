"""Writing small, real DICOM files for the tests (pydicom, and real codecs for compressed syntaxes).

Compressed pixel data is encoded by real encoders, never hand-made: pydicom's
own RLE encoder, CharLS through pyjpegls (JPEG-LS), OpenJPEG through
pylibjpeg-openjpeg (JPEG 2000), libjpeg-turbo through imagecodecs (JPEG
baseline, 12-bit extended, lossless process 14 and SV1) and OpenJPH through
imagecodecs (HTJ2K).
"""

from pathlib import Path

import numpy as np
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid


def _pair(spacing):
    return [spacing, spacing] if np.isscalar(spacing) else list(spacing)


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    pixel_spacing=None,
    imager_pixel_spacing=None,
) -> Path:
    """A single-frame grayscale DICOM of `pixels`; spacings in mm (a number or a (row, column) pair)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if pixel_spacing is not None:
        ds.PixelSpacing = _pair(pixel_spacing)
    if imager_pixel_spacing is not None:
        ds.ImagerPixelSpacing = _pair(imager_pixel_spacing)
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def mammogram_pixels(bits: int, shape=(48, 40), seed: int = 0) -> np.ndarray:
    """A smooth breast-like ramp with bright specks and noise, using the whole `bits`-bit range.

    The extremes 0 and 2**bits - 1 are always present, so a decoder that
    clips, shifts or loses the top bit cannot pass an exact comparison.
    """
    rng = np.random.default_rng(seed)
    top = (1 << bits) - 1
    rows, columns = np.mgrid[0 : shape[0], 0 : shape[1]]
    smooth = 0.25 + 0.5 * np.exp(-(((rows - shape[0] / 2) / shape[0]) ** 2 + (columns / shape[1]) ** 2))
    values = smooth * top + rng.normal(0, top * 0.01, shape)
    values[5:7, 9:11] = top * 0.97  # a calcification-like speck
    pixels = np.clip(np.rint(values), 0, top).astype(np.uint8 if bits <= 8 else np.uint16)
    pixels[0, 0], pixels[-1, -1] = 0, top
    return pixels


DEFAULT_TAGS = {
    "SOPClassUID": uid.DigitalMammographyXRayImageStorageForPresentation,
    "Modality": "MG",
    "PatientID": "P001",
    "PatientAge": "057Y",
    "StudyDate": "20240115",
    "ImageLaterality": "L",
    "ViewPosition": "CC",
    "PresentationIntentType": "FOR PRESENTATION",
    "Manufacturer": "ACME Imaging",
    "PixelSpacing": [0.07, 0.07],
}


def mammogram(pixels: np.ndarray, bits_stored: int | None = None, photometric="MONOCHROME2", **tags) -> Dataset:
    """An uncompressed digital mammography dataset of `pixels` with the tags an archive records.

    `tags` override DEFAULT_TAGS by keyword; a value of None leaves the tag out.
    StudyInstanceUID and SOPInstanceUID are generated unless given. Signed
    `pixels` (int8, int16) give PixelRepresentation 1.
    """
    values = {**DEFAULT_TAGS, "StudyInstanceUID": generate_uid(), "SOPInstanceUID": generate_uid(), **tags}
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    for keyword, value in values.items():
        if value is not None:
            setattr(ds, keyword, value)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(pixels.dtype.kind == "i")
    ds.PixelData = pixels.tobytes()
    return ds


# Transfer syntaxes the tests write, and whether decoding must give the source pixels back exactly.
LOSSLESS_SYNTAXES = [
    uid.ExplicitVRLittleEndian,
    uid.ImplicitVRLittleEndian,
    uid.DeflatedExplicitVRLittleEndian,
    uid.RLELossless,
    uid.JPEGLSLossless,
    uid.JPEG2000Lossless,
    uid.JPEGLossless,
    uid.JPEGLosslessSV1,
    uid.HTJ2KLossless,
    uid.ExplicitVRBigEndian,
]
LOSSY_SYNTAXES = [uid.JPEGLSNearLossless, uid.JPEG2000, uid.HTJ2K, uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit]
JPEG_LS_NEAR = 2  # the near-lossless bound: no decoded value differs from the source by more


def encode(ds: Dataset, syntax: str) -> Dataset:
    """`ds` (uncompressed, as from `mammogram`) re-encoded in transfer syntax `syntax`, in place."""
    pixels = np.frombuffer(ds.PixelData, dtype=np.uint8 if ds.BitsAllocated == 8 else np.uint16).reshape(
        ds.Rows, ds.Columns
    )
    if ds.PixelRepresentation == 1:
        # JPEG codestreams carry no sign: signed samples are their two's complement in BitsStored bits.
        pixels = pixels & np.array((1 << ds.BitsStored) - 1, dtype=pixels.dtype)
    if syntax in (uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian, uid.DeflatedExplicitVRLittleEndian):
        ds.file_meta.TransferSyntaxUID = syntax
    elif syntax == uid.RLELossless:
        ds.compress(syntax, encoding_plugin="pydicom", generate_instance_uid=False)
    elif syntax == uid.JPEGLSLossless:
        ds.compress(syntax, encoding_plugin="pyjpegls", generate_instance_uid=False)
    elif syntax == uid.JPEGLSNearLossless:
        ds.compress(syntax, encoding_plugin="pyjpegls", jls_error=JPEG_LS_NEAR, generate_instance_uid=False)
    elif syntax == uid.JPEG2000Lossless:
        ds.compress(syntax, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    elif syntax == uid.JPEG2000:
        ds.compress(syntax, encoding_plugin="pylibjpeg", j2k_psnr=[60], generate_instance_uid=False)
    elif syntax == uid.ExplicitVRBigEndian:
        # The retired big-endian syntax stores 16-bit samples most significant byte first.
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder(">")).tobytes()
        ds.file_meta.TransferSyntaxUID = syntax
    elif syntax in (uid.JPEGLossless, uid.JPEGLosslessSV1, uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit):
        _encode_jpeg(ds, pixels, syntax)
    elif syntax in (uid.HTJ2KLossless, uid.HTJ2K):
        _encode_htj2k(ds, pixels, syntax)
    else:
        raise ValueError(f"the tests have no encoder for {syntax}")
    return ds


def _encode_jpeg(ds: Dataset, pixels: np.ndarray, syntax: str) -> None:
    import imagecodecs

    if syntax == uid.JPEGLossless:
        # Process 14 with predictor 7 ((a + b) / 2): a predictor other than SV1's.
        frame = imagecodecs.jpeg8_encode(pixels, lossless=True, predictor=7, bitspersample=ds.BitsStored)
    elif syntax == uid.JPEGLosslessSV1:
        frame = imagecodecs.jpeg8_encode(pixels, lossless=True, predictor=1, bitspersample=ds.BitsStored)
    else:
        precision = 8 if syntax == uid.JPEGBaseline8Bit else 12
        if ds.BitsStored > precision:
            raise ValueError(f"{syntax.name} holds at most {precision} bits, not {ds.BitsStored}")
        frame = imagecodecs.jpeg8_encode(pixels, level=95, bitspersample=precision)
        ds.LossyImageCompression = "01"
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = syntax


def _encode_htj2k(ds: Dataset, pixels: np.ndarray, syntax: str) -> None:
    import imagecodecs

    if syntax == uid.HTJ2KLossless:
        frame = imagecodecs.htj2k_encode(pixels, reversible=True)
    else:
        frame = imagecodecs.htj2k_encode(pixels, level=0.001, reversible=False)  # quantisation step
        ds.LossyImageCompression = "01"
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = syntax


def save(ds: Dataset, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_mammogram(path: Path, pixels: np.ndarray, syntax: str = ExplicitVRLittleEndian, **tags) -> Path:
    """A mammogram file of `pixels` in transfer syntax `syntax`; `tags` as for `mammogram`."""
    return save(encode(mammogram(pixels, **tags), syntax), path)


def write_encapsulated(path: Path, frames: list[np.ndarray], syntax: str, bits_stored: int, **tags) -> Path:
    """A mammogram whose frames are each encoded as is by imagecodecs in `syntax` (JPEG-LS or JPEG lossless SV1).

    The header says `bits_stored` whatever the frames hold, so that tests can
    write files whose pixel data contradicts their header.
    """
    import imagecodecs

    encoders = {
        uid.JPEGLSLossless: imagecodecs.jpegls_encode,
        uid.JPEGLosslessSV1: lambda a: imagecodecs.jpeg8_encode(a, lossless=True, predictor=1, bitspersample=16),
    }
    ds = mammogram(frames[0], bits_stored=bits_stored, **tags)
    # Signed frames are encoded as their 16-bit two's complement, whatever BitsStored says.
    ds.PixelData = encapsulate([encoders[syntax](frame.view(f"u{frame.itemsize}")) for frame in frames])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = syntax
    if len(frames) > 1:
        ds.NumberOfFrames = len(frames)
    return save(ds, path)


def write_pixelless(path: Path, sop_class: str, modality: str, patient_id="P001", **tags) -> Path:
    """A DICOM object without pixel data (a structured report, a presentation state, ...)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = tags.pop("SOPInstanceUID", generate_uid())
    ds.StudyInstanceUID = tags.pop("StudyInstanceUID", generate_uid())
    ds.Modality = modality
    ds.PatientID = patient_id
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return save(ds, path)
