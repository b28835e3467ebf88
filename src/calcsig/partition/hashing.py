"""Image hashes for the audit: exact pixel content and a perceptual (DCT) hash.

`pixel_hash` hashes the decoded pixel values, not the file bytes, so the same
pixels stored in another container, compression level or integer dtype give
the same hash: values are normalised to little-endian int64 when they are all
integral (float64 otherwise), and the shape is part of the hash.

`perceptual_hash` is a DCT hash (pHash):
1. intensity normalisation: the image is clipped to its 1st..99th percentile
   and scaled to [0, 1], so a change of gain or offset (another detector
   calibration, an 8 to 16-bit rescale) does not change the hash;
2. area-average downsampling to a (4 * hash_size) square, which removes noise
   and makes a shift of a few pixels a sub-pixel change;
3. 2-D type-II DCT; the hash_size x hash_size lowest frequencies, without the
   DC term, are compared to their median, one bit each.
Two images are near duplicates when the Hamming distance of their hashes is
at most a threshold (see `hamming_matrix`).
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy.fft import dctn


def pixel_hash(pixels: np.ndarray) -> str:
    """SHA-256 hex digest of the pixel values and shape (dtype-normalised; see module docstring)."""
    array = np.asarray(pixels)
    if array.dtype == bool:
        array = array.astype(np.int64)
    if np.issubdtype(array.dtype, np.integer):
        values = array.astype("<i8")
        kind = b"int"
    else:
        as_float = array.astype(np.float64)
        if np.all(np.isfinite(as_float)) and np.all(as_float == np.round(as_float)):
            values = as_float.astype("<i8")
            kind = b"int"
        else:
            values = as_float.astype("<f8")
            kind = b"float"
    digest = hashlib.sha256()
    digest.update(kind + b":" + ",".join(str(s) for s in array.shape).encode() + b":")
    digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def _area_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Mean of the source pixels falling in each of size x size output cells (exact area weights)."""

    def weights(n: int) -> np.ndarray:
        edges = np.linspace(0.0, n, size + 1)
        left = np.arange(n)
        overlap = np.clip(
            np.minimum(edges[1:, None], left[None, :] + 1) - np.maximum(edges[:-1, None], left[None, :]), 0.0, None
        )
        return overlap / overlap.sum(axis=1, keepdims=True)

    rows, cols = image.shape
    return weights(rows) @ image @ weights(cols).T


def normalise_intensity(pixels: np.ndarray) -> np.ndarray:
    """Pixels clipped to their 1st..99th percentile and scaled to [0, 1] (all zeros when flat)."""
    image = np.asarray(pixels, dtype=np.float64)
    low, high = np.percentile(image, [1, 99])
    if high <= low:
        return np.zeros_like(image)
    return np.clip((image - low) / (high - low), 0.0, 1.0)


def perceptual_hash(pixels: np.ndarray, hash_size: int = 16) -> np.ndarray:
    """DCT perceptual hash as a packed uint8 array of hash_size**2 bits (see module docstring)."""
    image = np.asarray(pixels)
    if image.ndim == 3:
        image = image.mean(axis=2)
    if image.ndim != 2 or min(image.shape) < 1:
        raise ValueError(f"perceptual_hash needs a 2-D image, got shape {image.shape}")
    small = _area_resize(normalise_intensity(image), 4 * hash_size)
    coefficients = dctn(small, type=2, norm="ortho")[:hash_size, :hash_size].ravel()
    ac = coefficients[1:]
    bits = np.concatenate([[False], ac > np.median(ac)])
    # the DC bit is constant; keep it so the hash has exactly hash_size**2 bits
    return np.packbits(bits)


def hamming_matrix(hashes: np.ndarray, max_distance: int, chunk: int = 512) -> list[tuple[int, int, int]]:
    """Pairs (i, j, distance), i < j, of packed hashes (n, bytes) within `max_distance` bits."""
    hashes = np.asarray(hashes, dtype=np.uint8)
    found: list[tuple[int, int, int]] = []
    for start in range(0, len(hashes), chunk):
        block = hashes[start : start + chunk]
        distance = np.bitwise_count(block[:, None, :] ^ hashes[None, :, :]).sum(axis=2)
        rows, cols = np.nonzero(distance <= max_distance)
        for i, j in zip(rows + start, cols):
            if i < j:
                found.append((int(i), int(j), int(distance[i - start, j])))
    return found
