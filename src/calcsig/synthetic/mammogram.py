"""One synthetic mammogram: anatomy + clusters -> noisy, calibrated integer image with truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .acquisition import calibrate, quantum_noisy_attenuation
from .anatomy import breast_geometry, glandular_fraction, power_law_texture, tissue_attenuation
from .calcifications import ClusterDesign, render_cluster, reproject_cluster
from .cohort import Subject
from .settings import CorpusSettings

VIEWS = ("CC", "MLO")


@dataclass(frozen=True)
class ClusterRoi:
    """Where one cluster landed: its index in subject.clusters and its ROI box (x0, y0, x1, y1), half-open, px."""

    cluster_index: int
    box_xyxy: tuple[int, int, int, int]


@dataclass(frozen=True)
class View:
    pixels: np.ndarray  # uint16, stored values
    labels: np.ndarray  # uint16 truth: 0 background, 1..n calcifications
    rois: tuple[ClusterRoi, ...]


def _place(
    design: ClusterDesign,
    allowed: np.ndarray,
    pixel_spacing_mm: float,
    margin_mm: float,
    rng: np.random.Generator,
    block: int = 4,
) -> tuple[float, float]:
    """A cluster centre (row, col) whose disk plus margin lies in `allowed`; the safest spot when none does.

    Distances are computed on `block` x `block` pixel blocks (a block counts as
    allowed only when all its pixels are), which is conservative and 16 times
    cheaper than on the full grid.
    """
    rows, cols = allowed.shape
    padded = np.zeros((-(-rows // block) * block, -(-cols // block) * block), dtype=bool)
    padded[:rows, :cols] = allowed
    coarse = padded.reshape(padded.shape[0] // block, block, padded.shape[1] // block, block).all(axis=(1, 3))
    distance = ndimage.distance_transform_edt(np.pad(coarse, 1))[1:-1, 1:-1] * block - block
    needed = (design.radius_mm + margin_mm) / pixel_spacing_mm + 1.0
    candidates = np.flatnonzero(distance.ravel() >= needed)
    flat = int(candidates[rng.integers(candidates.size)]) if candidates.size else int(np.argmax(distance))
    row, col = np.unravel_index(flat, coarse.shape)
    # centre of the chosen block
    return min((row + 0.5) * block, rows - 0.5), min((col + 0.5) * block, cols - 0.5)


def _roi_box(
    labels_patch: np.ndarray, patch_box: tuple[int, int, int, int], margin_px: int, shape: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    rows, cols = np.nonzero(labels_patch)
    if rows.size == 0:
        return None
    y0, y1 = patch_box[0] + rows.min() - margin_px, patch_box[0] + rows.max() + 1 + margin_px
    x0, x1 = patch_box[2] + cols.min() - margin_px, patch_box[2] + cols.max() + 1 + margin_px
    return (int(max(x0, 0)), int(max(y0, 0)), int(min(x1, shape[1])), int(min(y1, shape[0])))


def render_view(subject: Subject, view: str, exam: int, settings: CorpusSettings) -> View:
    """Render one view (CC or MLO) of the subject's breast at examination `exam` (1 = main).

    Each (subject, exam, view) has its own random stream, so any image can be
    regenerated alone. The first exam's CC view shows the clusters as designed;
    other views and exams show them reprojected (rotated, foreshortened) at a
    position drawn anew inside the breast.
    """
    rng = np.random.default_rng([settings.seed, 1, subject.index, exam, VIEWS.index(view)])
    spacing, shape = settings.pixel_spacing_mm, settings.shape
    field_mm = min(shape) * spacing
    # the skin falloff is shortened on small test fields so that some interior remains
    geometry = breast_geometry(
        shape, spacing, view, subject.laterality, rng, skin_falloff_mm=min(10.0, 0.12 * field_mm)
    )
    texture = power_law_texture(shape, spacing, rng)
    glandular = glandular_fraction(texture, geometry.thickness > 0, subject.density, rng)
    attenuation = tissue_attenuation(geometry, glandular)

    labels = np.zeros(shape, dtype=np.uint16)
    allowed = geometry.interior.copy()
    margin_px = int(round(settings.roi_margin_mm / spacing))
    rois = []
    for index, design in enumerate(subject.clusters):
        if exam != 1 or view != "CC":
            design = reproject_cluster(design, rng)
        centre = _place(design, allowed, spacing, settings.roi_margin_mm, rng)
        drawn = render_cluster(design, centre, shape, spacing, settings.psf_sigma_mm)
        r0, r1, c0, c1 = drawn.box
        attenuation[r0:r1, c0:c1] += drawn.attenuation
        patch = labels[r0:r1, c0:c1]
        new = (drawn.labels > 0) & (patch == 0)
        patch[new] = drawn.labels[new] + labels.max()
        box = _roi_box(np.where(new, drawn.labels, 0), drawn.box, margin_px, shape)
        if box is not None:
            rois.append(ClusterRoi(index, box))
            # keep later clusters out of this one's ROI
            allowed[box[1] : box[3], box[0] : box[2]] = False
    # labels stay 1..n even if a calcification was lost to an overlap
    present = np.unique(labels[labels > 0])
    lookup = np.zeros(int(labels.max()) + 1, dtype=np.uint16)
    lookup[present] = np.arange(1, present.size + 1, dtype=np.uint16)
    labels = lookup[labels]

    photons_per_pixel = settings.photons_per_mm2 * spacing * spacing
    measured = quantum_noisy_attenuation(attenuation, photons_per_pixel, rng)
    pixels = calibrate(measured, settings.bits, subject.site.gain, subject.site.offset)
    return View(pixels, labels, tuple(rois))
