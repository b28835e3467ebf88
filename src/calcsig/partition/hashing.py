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

`image_hashes` hashes every image of a corpus table; `write_hashes` /
`read_hashes` keep the result in a TSV (image_id, pixel_hash, phash as hex,
problem for an unreadable file), so that the partition and the audit read each
image once between them.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.fft import dctn

from ..errors import CalcsigError
from ..parallel import ordered_map
from ..paths import atomic_path

HASH_COLUMNS = ["image_id", "pixel_hash", "phash", "problem"]


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


def image_hashes(images: pd.DataFrame, hash_size: int, workers: int = 1) -> tuple[pd.DataFrame, list[dict]]:
    """Pixel and perceptual hash of every image with pixels.

    Returns a frame indexed by image_id with columns pixel_hash and phash (packed
    bytes; None for images without pixels) and the list of unreadable images
    ({image_id, path, problem}). workers : processes reading and hashing the
    images (the result does not depend on it).
    """
    rows = [(row["image_id"], row.get("has_pixels"), row.get("path")) for _, row in images.iterrows()]
    hashed = ordered_map(functools.partial(_hash_image, hash_size=hash_size), rows, workers)
    records = [{"image_id": image_id, "pixel_hash": pixel, "phash": phash} for image_id, pixel, phash, _ in hashed]
    unreadable = [problem for *_, problem in hashed if problem is not None]
    return pd.DataFrame.from_records(records, columns=["image_id", "pixel_hash", "phash"]).set_index(
        "image_id"
    ), unreadable


def _hash_image(row: tuple, hash_size: int) -> tuple:
    """(image_id, pixel hash, perceptual hash, problem or None) of one images.tsv row.

    calcsig.imageio is imported here so that a metadata-only corpus needs no image reader.
    """
    from ..imageio import read_image

    image_id, has_pixels, path = row
    has = bool(has_pixels) if not pd.isna(has_pixels) else False
    if not (has and isinstance(path, str) and path):
        return image_id, None, None, None
    try:
        pixels = read_image(path).pixels
        return image_id, pixel_hash(pixels), perceptual_hash(pixels, hash_size), None
    except (CalcsigError, OSError, ValueError) as error:
        return image_id, None, None, {"image_id": image_id, "path": path, "problem": str(error)}


def write_hashes(hashes: pd.DataFrame, unreadable: list[dict], out: str | Path) -> None:
    """Write the hash table atomically: one row per image, phash as hex, empty cells for no pixels."""
    problem = {u["image_id"]: u["problem"] for u in unreadable}
    table = pd.DataFrame(
        {
            "image_id": hashes.index,
            "pixel_hash": [h if isinstance(h, str) else "" for h in hashes["pixel_hash"]],
            "phash": [bytes(np.asarray(h, dtype=np.uint8)).hex() if h is not None else "" for h in hashes["phash"]],
            "problem": [problem.get(i, "") for i in hashes.index],
        }
    )
    with atomic_path(out) as tmp:
        table.to_csv(tmp, sep="\t", index=False)


def read_hashes(path: str | Path, images: pd.DataFrame, hash_size: int) -> tuple[pd.DataFrame, list[dict]]:
    """Read a table written by `write_hashes` back as `image_hashes` returns it.

    Raises CalcsigError when the table misses a column, misses an image of
    `images`, or holds perceptual hashes of another size than hash_size**2 bits
    (it was made with other settings: rerun the partition).
    """
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in HASH_COLUMNS if c not in table.columns]
    if missing:
        raise CalcsigError(f"{path}: missing column(s) {', '.join(missing)}")
    table = table.drop_duplicates("image_id").set_index("image_id")
    absent = sorted(set(images["image_id"]) - set(table.index))
    if absent:
        raise CalcsigError(
            f"{path}: no hash row for {len(absent)} image(s) of images.tsv, e.g. {absent[:5]}; "
            "the hashes are older than the corpus: rerun the partition"
        )
    n_bytes = (hash_size * hash_size + 7) // 8
    wrong = [i for i, h in table["phash"].items() if h and len(h) != 2 * n_bytes]
    if wrong:
        raise CalcsigError(
            f"{path}: perceptual hash of image {wrong[0]} is not {hash_size}x{hash_size} bits "
            "(made with another partition.hash_size): rerun the partition"
        )
    table = table.loc[list(images["image_id"])]
    index = pd.Index(table.index, name="image_id")
    hashes = pd.DataFrame(
        {
            "pixel_hash": pd.Series([h or None for h in table["pixel_hash"]], index=index, dtype=object),
            "phash": pd.Series(
                [np.frombuffer(bytes.fromhex(h), dtype=np.uint8) if h else None for h in table["phash"]],
                index=index,
                dtype=object,
            ),
        }
    )
    path_of = images.set_index("image_id")["path"] if "path" in images.columns else pd.Series(dtype=object)
    unreadable = [{"image_id": i, "path": path_of.get(i), "problem": p} for i, p in table["problem"].items() if p]
    return hashes, unreadable


PAIR_COLUMNS = ["image_a", "image_b", "method", "distance", "pixel_hash"]


def duplicate_pairs(hashes: pd.DataFrame, max_distance: int) -> pd.DataFrame:
    """Pairs of images that are copies of each other, judged by their pixels.

    hashes: as `image_hashes` returns (image_id index, pixel_hash, phash; None
    for images without pixels). A pair is ``exact`` when both pixel hashes are
    equal (``distance`` 0, ``pixel_hash`` the shared digest) and ``perceptual``
    when the perceptual hashes are at most `max_distance` bits apart and the
    pixels differ. Returns columns image_a < image_b, method, distance,
    pixel_hash: exact pairs first (by digest, then IDs), then perceptual pairs
    by IDs. Images without pixels are in no pair.
    """
    from itertools import combinations

    rows = []
    hashed = hashes[hashes["pixel_hash"].notna()]
    for digest, members in hashed.groupby("pixel_hash", sort=True):
        for a, b in combinations(sorted(members.index), 2):
            rows.append((a, b, "exact", 0, digest))
    with_phash = hashes[hashes["phash"].notna()]
    near = []
    if len(with_phash) > 1:
        ids = list(with_phash.index)
        packed = np.stack([np.asarray(h, dtype=np.uint8) for h in with_phash["phash"]])
        digests = with_phash["pixel_hash"].to_numpy()
        for i, j, distance in hamming_matrix(packed, max_distance):
            if digests[i] is not None and digests[i] == digests[j]:
                continue
            a, b = sorted((ids[i], ids[j]))
            near.append((a, b, "perceptual", distance, None))
    rows += sorted(near)
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)
