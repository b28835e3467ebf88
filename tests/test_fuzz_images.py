"""Fuzzing the raster readers: random bytes, truncated or damaged headers and odd pixel formats
either read as a 2-D integer image or raise ImageReadError naming the file, never anything else.

Derandomized and bounded for CI; CALCSIG_FUZZ_EXAMPLES=5000 explores further by hand.
"""

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from calcsig.imageio import ImageData, ImageReadError, read_image

FUZZ = settings(
    max_examples=int(os.environ.get("CALCSIG_FUZZ_EXAMPLES", 80)),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Pillow warns about the damage it is shown; the reader's verdict is what is tested
pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin"),
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
]
RASTER_SUFFIXES = [".png", ".pgm", ".pnm", ".tif", ".tiff", ".PNG"]


def read_or_refuse(path: Path) -> ImageData | None:
    """read_image's result, None when it refused with ImageReadError naming the file; checks what a read promises."""
    try:
        data = read_image(path)
    except ImageReadError as error:
        assert str(path) in str(error)
        return None
    assert data.pixels.ndim == 2 and data.pixels.size > 0
    assert np.issubdtype(data.pixels.dtype, np.integer)
    assert data.bits in (1, 8, 16) and data.pixel_spacing_mm is None
    assert (data.height, data.width) == data.pixels.shape
    return data


def encoded(pixels: np.ndarray, mode: str | None, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(pixels) if mode is None else Image.fromarray(pixels).convert(mode)
    image.save(buffer, format=fmt)
    return buffer.getvalue()


ARRAYS = st.tuples(st.integers(1, 24), st.integers(1, 24), st.sampled_from(["uint8", "uint16", "bool", "rgb"])).map(
    lambda spec: _array(*spec)
)


def _array(height: int, width: int, kind: str) -> np.ndarray:
    values = np.arange(height * width * (3 if kind == "rgb" else 1)) * 7919
    if kind == "bool":
        return (values % 2 == 0).reshape(height, width)
    if kind == "rgb":
        return (values % 256).astype(np.uint8).reshape(height, width, 3)
    return (values % (256 if kind == "uint8" else 65536)).astype(kind).reshape(height, width)


@FUZZ
@given(data=st.binary(max_size=2048), suffix=st.sampled_from(RASTER_SUFFIXES))
def test_random_bytes_are_refused_naming_the_file(data, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"image{suffix}"
        path.write_bytes(data)
        read_or_refuse(path)


@FUZZ
@given(
    pixels=ARRAYS,
    fmt=st.sampled_from([("PNG", ".png"), ("TIFF", ".tif"), ("PPM", ".pgm")]),
    cut=st.floats(0, 1),
)
def test_truncated_files_are_refused_or_read_whole(pixels, fmt, cut):
    name, suffix = fmt
    if name == "PPM" and pixels.dtype == bool:
        pixels = pixels.astype(np.uint8)
    data = encoded(pixels, None, name)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"image{suffix}"
        path.write_bytes(data[: int(len(data) * cut)])
        read_or_refuse(path)


@FUZZ
@given(
    pixels=ARRAYS,
    fmt=st.sampled_from([("PNG", ".png"), ("TIFF", ".tif"), ("PPM", ".pgm")]),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=6),
)
def test_damaged_headers_and_bodies_are_refused_or_read(pixels, fmt, flips):
    name, suffix = fmt
    if name == "PPM" and pixels.dtype == bool:
        pixels = pixels.astype(np.uint8)
    data = bytearray(encoded(pixels, None, name))
    for offset, xor in flips:
        data[offset % len(data)] ^= xor
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"image{suffix}"
        path.write_bytes(bytes(data))
        read_or_refuse(path)


@FUZZ
@given(
    pixels=ARRAYS,
    mode=st.sampled_from(["L", "I;16", "I", "F", "1", "RGB", "RGBA", "LA", "P", "CMYK", None]),
    fmt=st.sampled_from([("PNG", ".png"), ("TIFF", ".tiff")]),
)
def test_every_pixel_format_reads_as_2d_integers_or_is_refused(pixels, mode, fmt):
    name, suffix = fmt
    try:
        data = encoded(pixels, mode, name)
    except (OSError, ValueError, KeyError):
        return  # Pillow cannot write this mode in this format: nothing to read
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"image{suffix}"
        path.write_bytes(data)
        result = read_or_refuse(path)
    if result is not None and mode in ("L", None) and pixels.dtype == np.uint8 and pixels.ndim == 2:
        np.testing.assert_array_equal(result.pixels, pixels)


@FUZZ
@given(
    width=st.integers(-5, 10**6),
    height=st.integers(-5, 10**6),
    maxval=st.sampled_from([-1, 0, 1, 255, 256, 65535, 65536, 10**9]),
    body=st.binary(max_size=64),
)
def test_pgm_headers_with_wild_sizes_and_ranges_are_refused_or_read(width, height, maxval, body):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "image.pgm"
        path.write_bytes(f"P5\n{width} {height}\n{maxval}\n".encode() + body)
        read_or_refuse(path)


def test_a_header_claiming_a_gigapixel_image_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "bomb.pgm"
    path.write_bytes(b"P5\n100000 100000\n255\n" + bytes(16))
    data = read_or_refuse(path)
    assert data is None
    try:
        read_image(path)
    except ImageReadError as error:
        assert "Image size (10000000000 pixels) exceeds limit" in str(error)
