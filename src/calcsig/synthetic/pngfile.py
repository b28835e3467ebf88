"""Byte-reproducible 16-bit grayscale PNG encoding.

Written by hand (zlib + the PNG chunk layout) rather than through an imaging
library so that the bytes depend only on the pixels, and so that the file can
carry its pixel spacing (pHYs) and significant bits (sBIT), which readers such
as Pillow ignore but which document the image.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from ..paths import atomic_path

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def encode_png16(
    pixels: np.ndarray, pixel_spacing_mm: float | None = None, significant_bits: int = 16, compression_level: int = 1
) -> bytes:
    """Encode a 2-D uint16 array as a 16-bit grayscale PNG.

    Parameters
    ----------
    pixels : (rows, cols) uint16 array.
    pixel_spacing_mm : pixel edge in mm, stored in pHYs as pixels per metre
        (rounded to an integer, as PNG requires); None writes no pHYs.
    significant_bits : bits actually used (12-16), stored in sBIT.
    compression_level : zlib level; 1 because noisy images barely compress
        further and level 6 costs six times the time.
    """
    if pixels.ndim != 2 or pixels.dtype != np.uint16:
        raise ValueError(f"expected a 2-D uint16 array, got {pixels.ndim}-D {pixels.dtype}")
    rows, cols = pixels.shape
    # Each scanline is prefixed by filter type 0 (none); PNG stores 16-bit samples big-endian.
    raw = np.zeros((rows, 1 + 2 * cols), dtype=np.uint8)
    raw[:, 1:] = pixels.astype(">u2").view(np.uint8).reshape(rows, 2 * cols)
    parts = [
        _SIGNATURE,
        _chunk(b"IHDR", struct.pack(">IIBBBBB", cols, rows, 16, 0, 0, 0, 0)),
        _chunk(b"sBIT", bytes([significant_bits])),
    ]
    if pixel_spacing_mm is not None:
        per_metre = int(round(1000.0 / pixel_spacing_mm))
        parts.append(_chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)))
    parts.append(_chunk(b"IDAT", zlib.compress(raw.tobytes(), compression_level)))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


def write_png16(
    path: str | Path, pixels: np.ndarray, pixel_spacing_mm: float | None = None, significant_bits: int = 16
) -> bytes:
    """Write `pixels` as a 16-bit PNG at `path` atomically; return the file's bytes (for hashing)."""
    data = encode_png16(pixels, pixel_spacing_mm, significant_bits)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return data
