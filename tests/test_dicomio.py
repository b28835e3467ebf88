"""calcsig.dicomio: every transfer syntax archives export decodes; spacing in the breast plane; clear errors.

Each compressed file is encoded here by a real encoder (tests/dicom_files.py)
and decoded by calcsig's chosen decoder: imagecodecs for JPEG and JPEG-LS,
pylibjpeg-openjpeg for JPEG 2000 and HTJ2K, pylibjpeg-rle for RLE.
"""

import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_files import (
    JPEG_LS_NEAR,
    LOSSLESS_SYNTAXES,
    mammogram,
    mammogram_pixels,
    write_encapsulated,
    write_mammogram,
    write_pixelless,
)
from pydicom import dcmread, uid

from calcsig.dicomio import decode_pixels, has_part10_preamble, pixel_spacing_mm, read_header
from calcsig.errors import ImageReadError
from calcsig.imageio import read_image


@pytest.mark.parametrize("bits", [8, 12, 16])
@pytest.mark.parametrize("syntax", LOSSLESS_SYNTAXES, ids=lambda s: s.name)
def test_lossless_transfer_syntaxes_decode_to_the_source_pixels_exactly(tmp_path, syntax, bits):
    source = mammogram_pixels(bits)
    path = write_mammogram(tmp_path / "image.dcm", source, syntax, bits_stored=bits)
    assert dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax
    image = read_image(path)
    assert image.pixels.dtype == source.dtype
    np.testing.assert_array_equal(image.pixels, source)
    assert (image.bits, image.photometric, image.pixel_spacing_mm) == (bits, "MONOCHROME2", 0.07)


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_jpeg_ls_near_lossless_stays_within_its_error_bound(tmp_path, bits):
    source = mammogram_pixels(bits)
    image = read_image(write_mammogram(tmp_path / "near.dcm", source, uid.JPEGLSNearLossless, bits_stored=bits))
    error = np.abs(image.pixels.astype(np.int64) - source)
    assert error.max() == JPEG_LS_NEAR  # the bound is reached (it is lossy) and never exceeded


def psnr_db(decoded: np.ndarray, source: np.ndarray, bits: int) -> float:
    error = decoded.astype(np.float64) - source
    return float(10 * np.log10(((1 << bits) - 1) ** 2 / np.mean(error**2)))


@pytest.mark.parametrize(
    ("syntax", "bits", "min_psnr_db"),
    [
        (uid.JPEG2000, 12, 57.0),  # encoded for 60 dB
        (uid.JPEG2000, 16, 57.0),
        (uid.HTJ2K, 16, 65.0),  # quantisation step 0.001 of the 16-bit range
        (uid.JPEGBaseline8Bit, 8, 40.0),  # quality 95
        (uid.JPEGExtended12Bit, 12, 60.0),  # quality 95, 12-bit precision
    ],
    ids=lambda v: getattr(v, "name", str(v)),
)
def test_lossy_syntaxes_decode_close_to_the_source_in_its_bit_depth(tmp_path, syntax, bits, min_psnr_db):
    source = mammogram_pixels(bits)
    image = read_image(write_mammogram(tmp_path / "lossy.dcm", source, syntax, bits_stored=bits))
    assert image.pixels.dtype == source.dtype and image.pixels.shape == source.shape
    assert image.pixels.max() <= (1 << bits) - 1
    assert psnr_db(image.pixels, source, bits) >= min_psnr_db


def signed_pixels(bits: int) -> np.ndarray:
    """The mammogram of `bits` bits shifted to the signed range [-2**(bits-1), 2**(bits-1) - 1], as int16."""
    return (mammogram_pixels(bits).astype(np.int32) - (1 << (bits - 1))).astype(np.int16)


@pytest.mark.parametrize("bits", [12, 16])
@pytest.mark.parametrize("syntax", [uid.JPEGLossless, uid.JPEGLosslessSV1, uid.JPEGLSLossless], ids=lambda s: s.name)
def test_signed_pixels_come_back_sign_extended_from_bits_stored(tmp_path, syntax, bits):
    source = signed_pixels(bits)
    image = read_image(write_mammogram(tmp_path / "signed.dcm", source, syntax, bits_stored=bits))
    assert image.pixels.dtype == np.int16
    np.testing.assert_array_equal(image.pixels, source)
    assert source.min() == -(1 << (bits - 1))  # the most negative value, whose sign bit is bit BitsStored - 1


def test_signed_values_sign_extended_by_the_encoder_are_read_too(tmp_path):
    source = signed_pixels(12)  # held in int16, so its 16-bit pattern is already sign-extended
    path = write_encapsulated(tmp_path / "extended.dcm", [source], uid.JPEGLosslessSV1, bits_stored=12)
    np.testing.assert_array_equal(read_image(path).pixels, source)


def test_signed_values_that_are_no_bits_stored_number_are_refused(tmp_path):
    source = signed_pixels(12)
    source[0, 0] = 5000  # a 13-bit number: neither a 12-bit pattern nor sign-extended from one
    path = write_encapsulated(tmp_path / "wide.dcm", [source], uid.JPEGLosslessSV1, bits_stored=12)
    with pytest.raises(ImageReadError, match=r"wide.dcm: decoded values such as 5000 are neither 12-bit two's"):
        read_image(path)


PYDICOM_TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def test_a_jpeg_ls_file_of_another_encoder_decodes_to_its_uncompressed_original():
    # pydicom ships one 16-bit MR slice (PixelRepresentation 1) uncompressed and JPEG-LS encoded by another tool.
    original, compressed = PYDICOM_TEST_FILES / "MR_small.dcm", PYDICOM_TEST_FILES / "MR_small_jpeg_ls_lossless.dcm"
    if not compressed.is_file():
        pytest.skip(f"pydicom's test files are not installed ({PYDICOM_TEST_FILES})")
    expected = dcmread(original).pixel_array
    decoded = read_image(compressed).pixels
    assert decoded.dtype == expected.dtype == np.int16
    np.testing.assert_array_equal(decoded, expected)


def test_every_frame_of_a_multi_frame_file_is_decoded(tmp_path):
    frames = [mammogram_pixels(12, seed=seed) for seed in (1, 2)]
    path = write_encapsulated(tmp_path / "two.dcm", frames, uid.JPEGLSLossless, bits_stored=12)
    decoded = decode_pixels(dcmread(path), path)
    np.testing.assert_array_equal(decoded, np.stack(frames))


def test_decoded_values_beyond_bits_stored_are_refused(tmp_path):
    path = write_encapsulated(tmp_path / "liar.dcm", [mammogram_pixels(16)], uid.JPEGLSLossless, bits_stored=12)
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    assert str(caught.value) == (
        f"{path}: decoded values reach 65535, beyond BitsStored 12 (at most 4095) "
        "(transfer syntax JPEG-LS Lossless Image Compression (1.2.840.10008.1.2.4.80))"
    )


def test_a_frame_of_another_size_than_the_header_says_is_refused(tmp_path):
    path = write_encapsulated(tmp_path / "small.dcm", [mammogram_pixels(12)], uid.JPEGLosslessSV1, bits_stored=12)
    ds = dcmread(path)
    ds.Rows = 50
    ds.save_as(path)
    with pytest.raises(ImageReadError, match=r"small.dcm: decoded frame of shape \(48, 40\) is not the 50 Rows x 40"):
        read_image(path)


def test_a_colour_jpeg_is_refused_naming_its_samples_per_pixel(tmp_path):
    path = write_mammogram(tmp_path / "grey.dcm", mammogram_pixels(8), uid.JPEGBaseline8Bit)
    ds = dcmread(path)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "YBR_FULL_422", 0
    ds.save_as(path)
    with pytest.raises(ImageReadError, match=r"grey.dcm: SamplesPerPixel 3: calcsig decodes grayscale images only"):
        decode_pixels(dcmread(path), path)


def test_compressed_monochrome1_is_inverted_after_decoding(tmp_path):
    source = mammogram_pixels(12)
    path = write_mammogram(tmp_path / "m1.dcm", source, uid.JPEG2000Lossless, bits_stored=12, photometric="MONOCHROME1")
    image = read_image(path)
    np.testing.assert_array_equal(image.pixels, 4095 - source)
    assert image.photometric == "MONOCHROME1"


@pytest.mark.parametrize(
    ("syntax", "module", "package"),
    [
        (uid.JPEGLSLossless, "imagecodecs", "imagecodecs"),
        (uid.JPEGLosslessSV1, "imagecodecs", "imagecodecs"),
        (uid.JPEGBaseline8Bit, "imagecodecs", "imagecodecs"),
        (uid.JPEG2000Lossless, "openjpeg", "pylibjpeg-openjpeg"),
        (uid.RLELossless, "rle", "pylibjpeg-rle"),
    ],
    ids=lambda v: getattr(v, "name", str(v)),
)
def test_a_missing_codec_names_the_transfer_syntax_and_the_package_to_install(
    tmp_path, monkeypatch, syntax, module, package
):
    bits = 8 if syntax == uid.JPEGBaseline8Bit else 12
    path = write_mammogram(tmp_path / "image.dcm", mammogram_pixels(bits), syntax, bits_stored=bits)
    monkeypatch.setitem(sys.modules, module, None)  # the codec package is not installed
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    assert str(caught.value) == (
        f"{path}: transfer syntax {syntax.name} ({syntax}) needs {package} to decode; "
        f"install it (pip install {package})"
    )


def relabel_syntax(path, syntax: str):
    ds = dcmread(path)
    ds.file_meta.TransferSyntaxUID = syntax
    ds.save_as(path)
    return path


def test_a_syntax_calcsig_does_not_decode_is_named_with_what_would_decode_it(tmp_path):
    path = write_mammogram(tmp_path / "mc.dcm", mammogram_pixels(12), uid.JPEG2000Lossless, bits_stored=12)
    relabel_syntax(path, uid.JPEG2000MCLossless)
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    message = str(caught.value)
    assert message.startswith(
        f"{path}: transfer syntax JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only) "
        "(1.2.840.10008.1.2.4.92) is not one calcsig decodes; GDCM (python-gdcm) reads JPEG 2000 Part 2"
    )
    assert "gdcmconv --raw" in message


def test_a_private_syntax_is_named_by_its_uid(tmp_path):
    path = write_mammogram(tmp_path / "private.dcm", mammogram_pixels(12), uid.JPEG2000Lossless, bits_stored=12)
    relabel_syntax(path, "1.2.826.0.1.3680043.99.1")
    with pytest.raises(ImageReadError, match=r"transfer syntax 1\.2\.826\.0\.1\.3680043\.99\.1 is not one calcsig"):
        read_image(path)


def test_damaged_compressed_pixel_data_names_the_syntax_and_the_decoder(tmp_path):
    path = write_mammogram(tmp_path / "cut.dcm", mammogram_pixels(12), uid.JPEGLSLossless, bits_stored=12)
    data = path.read_bytes()
    start_of_frame = data.index(b"\xff\xd8\xff\xf7")  # SOI then the JPEG-LS frame header
    path.write_bytes(data[:start_of_frame] + bytes(4) + data[start_of_frame + 4 :])
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    assert str(caught.value).startswith(
        f"{path}: unreadable DICOM pixel data in transfer syntax JPEG-LS Lossless Image Compression "
        "(1.2.840.10008.1.2.4.80), decoded with imagecodecs jpegls_decode ("
    )


def test_decoding_needs_a_transfer_syntax(tmp_path):
    ds = mammogram(mammogram_pixels(8))
    del ds.file_meta.TransferSyntaxUID
    with pytest.raises(ImageReadError, match="x.dcm: unreadable DICOM: no TransferSyntaxUID"):
        decode_pixels(ds, tmp_path / "x.dcm")


@pytest.mark.parametrize("syntax", [uid.ExplicitVRLittleEndian, uid.DeflatedExplicitVRLittleEndian, uid.RLELossless])
def test_a_header_is_read_without_its_pixels_and_says_that_they_follow(tmp_path, syntax):
    path = write_mammogram(tmp_path / "image", mammogram_pixels(12), syntax, bits_stored=12, PatientID="P9")
    header = read_header(path)
    assert header.has_pixel_data
    assert "PixelData" not in header.dataset
    assert (header.dataset.PatientID, header.dataset.Rows, header.dataset.BitsStored) == ("P9", 48, 12)


def test_a_structured_report_has_no_pixel_data(tmp_path):
    header = read_header(write_pixelless(tmp_path / "sr.dcm", uid.ComprehensiveSRStorage, "SR"))
    assert not header.has_pixel_data
    assert header.dataset.Modality == "SR"


def test_the_part10_preamble_says_what_is_dicom(tmp_path):
    dicom = write_mammogram(tmp_path / "no_suffix", mammogram_pixels(8))
    text = tmp_path / "fake.dcm"
    text.write_text("not DICOM at all")
    assert has_part10_preamble(dicom)
    assert not has_part10_preamble(text)


def dataset_with(**tags):
    return mammogram(mammogram_pixels(8), **{"PixelSpacing": None, **tags})


def test_imager_pixel_spacing_is_divided_by_the_magnification_factor(tmp_path):
    ds = dataset_with(ImagerPixelSpacing=[0.085, 0.085], EstimatedRadiographicMagnificationFactor=1.0625)
    assert pixel_spacing_mm(ds, tmp_path / "x.dcm") == pytest.approx(0.08)


def test_imager_pixel_spacing_without_a_magnification_factor_is_taken_as_is(tmp_path):
    assert pixel_spacing_mm(dataset_with(ImagerPixelSpacing=[0.1, 0.1]), tmp_path / "x.dcm") == pytest.approx(0.1)


def test_pixel_spacing_that_differs_from_the_detector_pitch_is_already_in_the_breast_plane(tmp_path):
    ds = dataset_with(
        PixelSpacing=[0.065, 0.065], ImagerPixelSpacing=[0.07, 0.07], EstimatedRadiographicMagnificationFactor=1.08
    )
    assert pixel_spacing_mm(ds, tmp_path / "x.dcm") == pytest.approx(0.065)


def test_pixel_spacing_copied_from_the_detector_pitch_is_corrected_for_magnification(tmp_path):
    ds = dataset_with(
        PixelSpacing=[0.07, 0.07], ImagerPixelSpacing=[0.07, 0.07], EstimatedRadiographicMagnificationFactor=1.4
    )
    assert pixel_spacing_mm(ds, tmp_path / "x.dcm") == pytest.approx(0.05)


def test_calibrated_pixel_spacing_is_trusted_even_when_it_equals_the_detector_pitch(tmp_path):
    ds = dataset_with(
        PixelSpacing=[0.07, 0.07],
        ImagerPixelSpacing=[0.07, 0.07],
        EstimatedRadiographicMagnificationFactor=1.4,
        PixelSpacingCalibrationType="GEOMETRY",
    )
    assert pixel_spacing_mm(ds, tmp_path / "x.dcm") == pytest.approx(0.07)


def test_no_spacing_tag_gives_none(tmp_path):
    assert pixel_spacing_mm(dataset_with(), tmp_path / "x.dcm") is None


def test_a_non_positive_magnification_factor_is_refused_naming_file_and_tag(tmp_path):
    ds = dataset_with(ImagerPixelSpacing=[0.07, 0.07], EstimatedRadiographicMagnificationFactor=0)
    with pytest.raises(ImageReadError, match=r"x.dcm: EstimatedRadiographicMagnificationFactor .* is not positive"):
        pixel_spacing_mm(ds, tmp_path / "x.dcm")
