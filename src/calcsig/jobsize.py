"""Job sizes for a cluster scheduler (memory, wall time) from measured per-rule costs.

A rule's cost is measured once on a finished run (``benchmarks/resources.py``
reads its ``benchmark:`` files): the median wall seconds and peak resident
memory of its jobs, and the work those jobs did in megapixels. A job of another
run is sized by the ratio of its work to the measured work:

- wall time: ``TIME_MARGIN`` x measured seconds x ratio, at least
  ``MIN_RUNTIME_MIN`` minutes (a cluster job also waits for its node, starts
  Python twice and writes to a shared file system);
- memory: ``MEMORY_MARGIN`` x measured peak x the ratio of the largest image
  (per-item rules hold one image at a time) or of the corpus (rules that see the
  whole corpus), at least ``MIN_MEMORY_MB``;

and both grow with the attempt number, so a job killed for its time or memory
limit gets twice as much when retried.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

TIME_MARGIN = 3.0
MEMORY_MARGIN = 2.0
MIN_RUNTIME_MIN = 10
MIN_MEMORY_MB = 1000
# scheduler memory requests are rounded up to this many MB
MEMORY_STEP_MB = 100


@dataclass(frozen=True)
class RuleCost:
    """What one job of a rule cost when measured.

    seconds: median wall seconds per job.
    megapixels: the work of that job, in megapixels (on the detection grid).
    peak_mb: median peak resident memory per job, in MB.
    largest_megapixels: the largest single image a measured job held, in megapixels
        (per-item rules); None for rules that see the whole corpus.
    """

    seconds: float
    megapixels: float
    peak_mb: float
    largest_megapixels: float | None = None

    @classmethod
    def from_dict(cls, values: dict) -> RuleCost:
        largest = values.get("largest_megapixels")
        return cls(
            seconds=float(values["seconds"]),
            megapixels=float(values["megapixels"]),
            peak_mb=float(values["peak_mb"]),
            largest_megapixels=None if largest is None else float(largest),
        )


def work_megapixels(height_px: int, width_px: int, pixel_spacing_mm: float, working_spacing_mm: float | None) -> float:
    """Megapixels an image costs the image stages: on the grid detection runs on.

    Images coarser than ``working_spacing_mm`` are upsampled by the smallest
    integer factor reaching it (``calcsig.segment``), which multiplies their
    pixels by its square; None means no upsampling.
    """
    factor = 1
    if working_spacing_mm:
        factor = max(1, math.ceil(pixel_spacing_mm / working_spacing_mm - 1e-9))
    return height_px * width_px * factor**2 / 1e6


def image_work(images: pd.DataFrame, working_spacing_mm: float | None) -> pd.Series:
    """Work megapixels of each image with pixels of an images.tsv table, indexed by image_id."""
    with_pixels = images[images["has_pixels"].astype(str).str.lower() == "true"]
    work = [
        work_megapixels(int(float(h)), int(float(w)), float(s), working_spacing_mm)
        for h, w, s in zip(with_pixels["height"], with_pixels["width"], with_pixels["pixel_spacing_mm"])
    ]
    return pd.Series(work, index=with_pixels["image_id"].to_numpy(), dtype=float)


def runtime_minutes(cost: RuleCost, megapixels: float, attempt: int = 1) -> int:
    """Wall-time request (minutes) of a job doing `megapixels` of work."""
    ratio = max(1.0, megapixels / cost.megapixels) if cost.megapixels > 0 else 1.0
    minutes = TIME_MARGIN * cost.seconds * ratio / 60.0
    return max(MIN_RUNTIME_MIN, math.ceil(minutes)) * attempt


def memory_mb(cost: RuleCost, megapixels: float, largest_megapixels: float | None = None, attempt: int = 1) -> int:
    """Memory request (MB) of a job: scaled by its largest image for per-item rules, else by its whole work."""
    if cost.largest_megapixels is not None and largest_megapixels is not None:
        ratio = largest_megapixels / cost.largest_megapixels
    else:
        ratio = megapixels / cost.megapixels if cost.megapixels > 0 else 1.0
    needed = MEMORY_MARGIN * cost.peak_mb * max(1.0, ratio)
    rounded = math.ceil(needed / MEMORY_STEP_MB) * MEMORY_STEP_MB
    return max(MIN_MEMORY_MB, rounded) * attempt
