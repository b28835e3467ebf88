"""calcsig.imageio.read_image: DICOM (spacing, MONOCHROME1), PNG, PGM, TIFF, and clear errors."""

import numpy as np
import pytest
from dicom_files import write_dicom
from PIL import Image

from calcsig.errors import CalcsigError
from calcsig.imageio import ImageData, ImageReadError, read_image


def ramp(dtype, top: int, shape=(6, 9)) -> np.ndarray:
    return np.linspace(0, top, num=shape[0] * shape[1]).astype(dtype).reshape(shape)


def test_dicom_monochrome1_is_inverted_within_its_stored_bits(tmp_path):
    stored = ramp(np.uint16, 4095)
    image = read_image(
        write_dicom(tmp_path / "m1.dcm", stored, "MONOCHROME1", bits_stored=12, pixel_spacing=[0.07, 0.07])
    )
    assert isinstance(image, ImageData)
    assert image.pixels.dtype == np.uint16
    np.testing.assert_array_equal(image.pixels, 4095 - stored)
    assert (image.bits, image.photometric, image.pixel_spacing_mm) == (12, "MONOCHROME1", 0.07)
    assert (image.height, image.width) == stored.shape


def test_dicom_monochrome2_is_kept_as_stored(tmp_path):
    stored = ramp(np.uint16, 16383)
    image = read_image(write_dicom(tmp_path / "m2.dcm", stored, bits_stored=14))
    np.testing.assert_array_equal(image.pixels, stored)
    assert (image.bits, image.photometric) == (14, "MONOCHROME2")


def test_pixel_spacing_wins_over_imager_pixel_spacing(tmp_path):
    stored = ramp(np.uint16, 1000)
    both = write_dicom(tmp_path / "both.dcm", stored, pixel_spacing=[0.1, 0.1], imager_pixel_spacing=[0.085, 0.085])
    imager_only = write_dicom(tmp_path / "imager.dcm", stored, imager_pixel_spacing=[0.085, 0.085])
    neither = write_dicom(tmp_path / "neither.dcm", stored)
    assert read_image(both).pixel_spacing_mm == pytest.approx(0.1)
    assert read_image(imager_only).pixel_spacing_mm == pytest.approx(0.085)
    assert read_image(neither).pixel_spacing_mm is None


def test_non_square_pixels_are_refused_naming_the_file(tmp_path):
    path = write_dicom(tmp_path / "aniso.dcm", ramp(np.uint16, 10), pixel_spacing=[0.1, 0.2])
    with pytest.raises(ImageReadError, match="aniso.dcm.*non-square"):
        read_image(path)


def test_dicom_without_suffix_is_recognised_by_its_preamble(tmp_path):
    stored = ramp(np.uint8, 255)
    path = write_dicom(tmp_path / "000000", stored, pixel_spacing=[0.05, 0.05])
    image = read_image(path)
    np.testing.assert_array_equal(image.pixels, stored)
    assert image.bits == 8


@pytest.mark.parametrize("suffix", [".png", ".pgm", ".tif"])
def test_16_bit_rasters_keep_values_and_dtype(tmp_path, suffix):
    stored = ramp(np.uint16, 65535)
    path = tmp_path / f"img{suffix}"
    Image.fromarray(stored).save(path)
    image = read_image(path)
    assert image.pixels.dtype == np.uint16
    np.testing.assert_array_equal(image.pixels, stored)
    assert (image.bits, image.pixel_spacing_mm, image.photometric) == (16, None, "MONOCHROME2")


@pytest.mark.parametrize("suffix", [".png", ".pgm", ".tiff"])
def test_8_bit_rasters_keep_values_and_dtype(tmp_path, suffix):
    stored = ramp(np.uint8, 255)
    path = tmp_path / f"img{suffix}"
    Image.fromarray(stored).save(path)
    image = read_image(path)
    assert image.pixels.dtype == np.uint8
    np.testing.assert_array_equal(image.pixels, stored)
    assert image.bits == 8


def test_missing_file_error_names_it(tmp_path):
    with pytest.raises(ImageReadError, match="nowhere.png: no such file") as caught:
        read_image(tmp_path / "nowhere.png")
    assert isinstance(caught.value, CalcsigError)


def test_corrupt_files_error_names_them(tmp_path):
    png = tmp_path / "broken.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    dcm = tmp_path / "broken.dcm"
    dcm.write_bytes(b"\0" * 128 + b"DICM" + b"garbage")
    with pytest.raises(ImageReadError, match="broken.png: unreadable"):
        read_image(png)
    with pytest.raises(ImageReadError, match="broken.dcm: unreadable DICOM"):
        read_image(dcm)


def test_colour_and_unknown_types_are_refused(tmp_path):
    rgb = tmp_path / "colour.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(rgb)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(ImageReadError, match="colour.png: expected a grayscale image"):
        read_image(rgb)
    with pytest.raises(ImageReadError, match="notes.txt: unsupported image type"):
        read_image(text)
