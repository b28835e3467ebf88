"""Image hashes: pixel content hash survives re-encoding; perceptual hash finds near copies only."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from calcsig.partition.hashing import hamming_matrix, perceptual_hash, pixel_hash

THRESHOLD = 36  # partition.near_duplicate_hamming default
HASH_SIZE = 16


def mammogram_like(seed: int, shape=(320, 256), laterality: str = "L") -> np.ndarray:
    """A 16-bit breast-shaped phantom: half-ellipse silhouette, tissue texture at several scales, noise."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    centre_row = shape[0] / 2 + rng.normal(0, 10)
    radius_r, radius_c = shape[0] * rng.uniform(0.4, 0.48), shape[1] * rng.uniform(0.7, 0.9)
    x = cols if laterality == "L" else shape[1] - 1 - cols
    inside = ((rows - centre_row) / radius_r) ** 2 + (x / radius_c) ** 2 <= 1
    tissue = sum(gaussian_filter(rng.normal(size=shape), sigma) * sigma for sigma in (2, 6, 15))
    image = np.where(inside, 9000 + 6000 * np.tanh(tissue), 300) + rng.normal(0, 60, shape)
    return np.clip(image, 0, 16383).astype(np.uint16)


def test_pixel_hash_ignores_encoding_and_dtype(tmp_path):
    pixels = mammogram_like(1)
    fast, small = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(pixels).save(fast, compress_level=0)
    Image.fromarray(pixels).save(small, compress_level=9)
    assert hashlib.sha256(fast.read_bytes()).hexdigest() != hashlib.sha256(small.read_bytes()).hexdigest()
    decoded = [np.asarray(Image.open(p)) for p in (fast, small)]
    assert pixel_hash(decoded[0]) == pixel_hash(decoded[1]) == pixel_hash(pixels)
    low = (pixels // 128).astype(np.uint8)
    assert pixel_hash(low) == pixel_hash(low.astype(np.uint16)) == pixel_hash(low.astype(float))


def test_pixel_hash_sees_one_pixel_and_the_shape():
    pixels = mammogram_like(2)
    changed = pixels.copy()
    changed[100, 100] += 1
    assert pixel_hash(changed) != pixel_hash(pixels)
    assert pixel_hash(pixels.reshape(256, 320)) != pixel_hash(pixels)


def distance(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.bitwise_count(perceptual_hash(a, HASH_SIZE) ^ perceptual_hash(b, HASH_SIZE)).sum())


def test_perceptual_hash_catches_noisy_rescaled_and_shifted_copies():
    rng = np.random.default_rng(3)
    original = mammogram_like(3)
    rescaled = np.clip(original * 1.07 + 200 + rng.normal(0, 40, original.shape), 0, 65535).astype(np.uint16)
    shifted = np.zeros_like(original)
    shifted[2:, :-2] = original[:-2, 2:]
    eight_bit = (original // 64).astype(np.uint8)
    assert perceptual_hash(original, HASH_SIZE).size * 8 == HASH_SIZE**2
    assert distance(original, rescaled) <= 8
    assert distance(original, eight_bit) <= 4
    assert distance(original, shifted) <= THRESHOLD


def test_perceptual_hash_separates_unrelated_images():
    images = [mammogram_like(seed, laterality="L") for seed in range(10, 22)]
    hashes = np.stack([perceptual_hash(image, HASH_SIZE) for image in images])
    assert hamming_matrix(hashes, THRESHOLD) == []
    pairs = hamming_matrix(hashes, HASH_SIZE**2)
    assert len(pairs) == len(images) * (len(images) - 1) // 2
    assert min(d for _, _, d in pairs) > THRESHOLD


def test_hamming_matrix_pairs_and_chunks():
    hashes = np.array([[0b00000000], [0b00000011], [0b11111111], [0b00000001]], dtype=np.uint8)
    found = hamming_matrix(hashes, 1, chunk=3)
    assert sorted(found) == [(0, 3, 1), (1, 3, 1)]


def test_flat_image_hashes_without_error():
    assert perceptual_hash(np.full((64, 64), 7, np.uint16), 8).shape == (8,)
    with pytest.raises(ValueError):
        perceptual_hash(np.zeros(5), 8)
