"""Near-duplicate films: the same image after a mild change, as a re-scan or re-export would make."""

from __future__ import annotations

import numpy as np


def shift_padded(array: np.ndarray, dy: int, dx: int, mode: str = "edge") -> np.ndarray:
    """Shift `array` by (dy, dx) pixels (positive = down/right), padding the uncovered edge.

    mode "edge" replicates the border (for pixels), "constant" pads with 0 (for label images).
    """
    rows, cols = array.shape
    padded = np.pad(array, ((abs(dy), abs(dy)), (abs(dx), abs(dx))), mode=mode)
    r0, c0 = abs(dy) - dy, abs(dx) - dx
    return padded[r0 : r0 + rows, c0 : c0 + cols]


def near_duplicate(pixels: np.ndarray, bits: int, kind: str, rng: np.random.Generator):
    """A mildly changed copy of a stored image.

    kind "rescale": intensities scaled by 1 +- (1 to 3) %; kind "shift": moved
    by up to 4 pixels with the edge replicated. Both add slight Gaussian noise
    (0.1 % of the full scale). Returns (pixels, (dy, dx)) where (dy, dx) is the
    shift applied, so ROIs and truth can follow.
    """
    full = 2**bits - 1
    values = pixels.astype(np.float64)
    dy = dx = 0
    if kind == "rescale":
        values *= 1.0 + rng.choice([-1.0, 1.0]) * rng.uniform(0.01, 0.03)
    elif kind == "shift":
        while dy == 0 and dx == 0:
            dy, dx = (int(v) for v in rng.integers(-4, 5, size=2))
        values = shift_padded(values, dy, dx)
    else:
        raise ValueError(f"unknown near-duplicate kind {kind!r}; expected 'rescale' or 'shift'")
    values += rng.normal(0.0, 0.001 * full, size=values.shape)
    return np.clip(np.rint(values), 0, full).astype(np.uint16), (dy, dx)


def shift_box(box_xyxy: tuple[int, int, int, int], dy: int, dx: int, shape: tuple[int, int]):
    """A half-open (x0, y0, x1, y1) box moved by (dy, dx) and clipped to an image of `shape` (rows, cols)."""
    x0, y0, x1, y1 = box_xyxy
    return (max(x0 + dx, 0), max(y0 + dy, 0), min(x1 + dx, shape[1]), min(y1 + dy, shape[0]))
