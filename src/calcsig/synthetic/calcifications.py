"""Microcalcification clusters: class-dependent morphology, spatial layout and rendering.

A cluster's morphology parameters (median size, size spread, elongation,
irregularity, count, calcification type and distribution) are drawn from
ranges that move with the fine class's severity but overlap substantially,
so no single feature separates benign from actionable clusters.
Sizes are in millimetres; rendering converts them with the pixel spacing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

FINE_CLASSES = ("benign", "high_risk", "dcis", "invasive")
LABEL_OF_FINE_CLASS = {"benign": "benign", "high_risk": "actionable", "dcis": "actionable", "invasive": "actionable"}
# 0 = benign-like, 1 = the most suspicious appearance; high-risk lesions look
# half way between, which is one source of the overlap.
SEVERITY = {"benign": 0.0, "high_risk": 0.5, "dcis": 0.85, "invasive": 1.0}

MIN_DIAMETER_MM = 0.1
MAX_DIAMETER_MM = 1.0
# Gap left between neighbouring calcifications so each stays a separate object.
MIN_GAP_MM = 0.2

_DISTRIBUTIONS = ("diffuse", "regional", "grouped", "linear", "segmental")
_DISTRIBUTION_MIX = {0.0: (0.3, 0.35, 0.3, 0.05, 0.0), 1.0: (0.0, 0.15, 0.45, 0.2, 0.2)}
_CALC_TYPES = ("punctate", "round", "amorphous", "coarse_heterogeneous", "pleomorphic", "fine_linear")
_CALC_TYPE_MIX = {0.0: (0.4, 0.35, 0.15, 0.1, 0.0, 0.0), 1.0: (0.1, 0.0, 0.25, 0.15, 0.35, 0.15)}


@dataclass(frozen=True)
class Calcification:
    """One calcification, relative to its cluster's centre.

    offset_mm : (dy, dx) in mm from the cluster centre.
    diameter_mm : size (diameter of the equal-area ellipse before lobes), 0.1-1 mm.
    aspect : major/minor axis ratio (>= 1); orientation : major axis angle in radians.
    irregularity, lobes, lobe_phase : boundary radius scales by 1 + irregularity * cos(lobes * angle + phase).
    attenuation_per_mm : extra attenuation per mm of path through the calcification.
    """

    offset_mm: tuple[float, float]
    diameter_mm: float
    aspect: float
    orientation: float
    irregularity: float
    lobes: int
    lobe_phase: float
    attenuation_per_mm: float

    @property
    def half_length_mm(self) -> float:
        """Half of the longest extent, in mm."""
        return 0.5 * self.diameter_mm * np.sqrt(self.aspect) * (1.0 + self.irregularity)


@dataclass(frozen=True)
class ClusterDesign:
    fine_class: str
    calc_type: str
    calc_distribution: str
    calcifications: tuple[Calcification, ...]

    @property
    def label(self) -> str:
        return LABEL_OF_FINE_CLASS[self.fine_class]

    @property
    def radius_mm(self) -> float:
        """Radius in mm of the smallest centred disk holding every calcification."""
        return max(np.hypot(*c.offset_mm) + c.half_length_mm for c in self.calcifications)


def _lerp(benign: float, actionable: float, severity: float) -> float:
    return benign + (actionable - benign) * severity


def _mix(table: dict, severity: float) -> np.ndarray:
    p = (1.0 - severity) * np.asarray(table[0.0]) + severity * np.asarray(table[1.0])
    return p / p.sum()


def _pattern_sampler(distribution: str, rng: np.random.Generator, max_radius_mm: float):
    """A function drawing one (dy, dx, local line angle) for the distribution, scaled to fit max_radius_mm."""
    angle = rng.uniform(0.0, np.pi)
    if distribution == "diffuse":
        radius = rng.uniform(7.0, 12.0)
    elif distribution == "regional":
        radius = rng.uniform(4.0, 7.0)
    elif distribution == "grouped":
        radius = 2.5 * rng.uniform(0.8, 2.0)  # truncated Gaussian, 2.5 sigma
    elif distribution == "linear":
        radius = 0.5 * rng.uniform(4.0, 10.0)
    else:  # segmental: branches fanning out from one duct
        radius = rng.uniform(3.0, 8.0)
        branch_angles = angle + rng.normal(0.0, 0.45, size=rng.integers(2, 5))
    scale = min(1.0, max_radius_mm / radius)
    radius *= scale
    aspect_regional = rng.uniform(0.55, 0.9)

    def sample() -> tuple[float, float, float]:
        if distribution in ("diffuse", "regional"):
            r, t = radius * np.sqrt(rng.uniform()), rng.uniform(0.0, 2 * np.pi)
            u, v = r * np.cos(t), r * np.sin(t) * (aspect_regional if distribution == "regional" else 1.0)
            local = rng.uniform(0.0, np.pi)
        elif distribution == "grouped":
            while True:
                u, v = rng.normal(0.0, radius / 2.5, size=2)
                if np.hypot(u, v) <= radius:
                    break
            local = rng.uniform(0.0, np.pi)
        elif distribution == "linear":
            u, v, local = rng.uniform(-radius, radius), rng.normal(0.0, 0.25 * scale), angle
            return float(-u * np.sin(angle) + v * np.cos(angle)), float(u * np.cos(angle) + v * np.sin(angle)), local
        else:
            local = float(rng.choice(branch_angles))
            u, v = rng.uniform(0.0, radius), rng.normal(0.0, 0.3 * scale)
            return float(u * np.sin(local) + v * np.cos(local)), float(u * np.cos(local) - v * np.sin(local)), local
        dy = u * np.sin(angle) + v * np.cos(angle)
        dx = u * np.cos(angle) - v * np.sin(angle)
        return float(dy), float(dx), float(local)

    return sample


def _bounded_shape(diameter: float, aspect: float, irregularity: float) -> tuple[float, float]:
    """Shrink aspect, then irregularity, so that the longest extent stays <= MAX_DIAMETER_MM."""
    if diameter * np.sqrt(aspect) * (1.0 + irregularity) > MAX_DIAMETER_MM:
        aspect = max(1.0, (MAX_DIAMETER_MM / (diameter * (1.0 + irregularity))) ** 2)
    if diameter * np.sqrt(aspect) * (1.0 + irregularity) > MAX_DIAMETER_MM:
        irregularity = max(0.0, MAX_DIAMETER_MM / (diameter * np.sqrt(aspect)) - 1.0)
    return aspect, irregularity


def design_cluster(fine_class: str, rng: np.random.Generator, max_radius_mm: float = 12.0) -> ClusterDesign:
    """Draw a cluster of the given fine class.

    Parameters
    ----------
    fine_class : one of FINE_CLASSES.
    max_radius_mm : the layout is shrunk to fit a disk of this radius (mm), for small fields.
    """
    s = SEVERITY[fine_class]
    distribution = str(rng.choice(_DISTRIBUTIONS, p=_mix(_DISTRIBUTION_MIX, s)))
    calc_type = str(rng.choice(_CALC_TYPES, p=_mix(_CALC_TYPE_MIX, s)))
    median_diameter = rng.uniform(_lerp(0.22, 0.15, s), _lerp(0.6, 0.45, s))
    size_spread = rng.uniform(_lerp(0.08, 0.2, s), _lerp(0.3, 0.55, s))  # sd of log diameter
    max_aspect = rng.uniform(_lerp(1.05, 1.3, s), _lerp(1.5, 2.8, s))
    if calc_type == "fine_linear":
        max_aspect = max(max_aspect, 2.5)
    max_irregularity = rng.uniform(_lerp(0.0, 0.1, s), _lerp(0.15, 0.4, s))
    n_wanted = int(rng.integers(int(_lerp(4, 5, s)), int(_lerp(18, 30, s)) + 1))
    # calcium attenuates ~2-3 /mm at mammographic energies; cluster-wide load, then
    # per-calcification variation, so small ones with low load come out faint
    cluster_attenuation = rng.lognormal(np.log(2.2), 0.25)
    follows_line = distribution in ("linear", "segmental") or calc_type == "fine_linear"

    sample = _pattern_sampler(distribution, rng, max_radius_mm)
    placed: list[Calcification] = []
    for _ in range(n_wanted):
        diameter = float(np.clip(median_diameter * rng.lognormal(0.0, size_spread), MIN_DIAMETER_MM, MAX_DIAMETER_MM))
        aspect, irregularity = _bounded_shape(
            diameter, 1.0 + (max_aspect - 1.0) * rng.uniform(), max_irregularity * rng.uniform()
        )
        lobes, phase = int(rng.integers(2, 6)), float(rng.uniform(0.0, 2 * np.pi))
        attenuation = float(cluster_attenuation * rng.lognormal(0.0, 0.35))
        for _attempt in range(60):
            dy, dx, line_angle = sample()
            orientation = line_angle + rng.normal(0.0, 0.25) if follows_line else rng.uniform(0.0, np.pi)
            candidate = Calcification(
                (dy, dx), diameter, float(aspect), float(orientation), float(irregularity), lobes, phase, attenuation
            )
            if all(
                np.hypot(dy - o.offset_mm[0], dx - o.offset_mm[1])
                >= candidate.half_length_mm + o.half_length_mm + MIN_GAP_MM
                for o in placed
            ):
                placed.append(candidate)
                break
    centre = np.mean([c.offset_mm for c in placed], axis=0)
    placed = [replace(c, offset_mm=(c.offset_mm[0] - centre[0], c.offset_mm[1] - centre[1])) for c in placed]
    return ClusterDesign(fine_class, calc_type, distribution, tuple(placed))


def reproject_cluster(design: ClusterDesign, rng: np.random.Generator) -> ClusterDesign:
    """The same cluster seen in another projection: rotated and slightly foreshortened.

    Foreshortening is kept mild (>= 0.92) so calcifications stay separate objects.
    """
    angle, squash = rng.uniform(-0.6, 0.6), rng.uniform(0.92, 1.0)
    cos, sin = np.cos(angle), np.sin(angle)
    moved = []
    for c in design.calcifications:
        dy, dx = c.offset_mm
        moved.append(
            replace(
                c,
                offset_mm=(float((sin * dx + cos * dy) * squash), float(cos * dx - sin * dy)),
                orientation=float(c.orientation + angle),
            )
        )
    return replace(design, calcifications=tuple(moved))


@dataclass(frozen=True)
class RenderedCluster:
    """A cluster drawn on its own patch of the image.

    box : (row0, row1, col0, col1), half-open, in image pixels.
    attenuation : float32 patch, extra attenuation blurred by the PSF.
    labels : uint16 patch, 0 background and 1..n, one label per calcification.
    """

    box: tuple[int, int, int, int]
    attenuation: np.ndarray
    labels: np.ndarray


def _draw_calcification(
    calc: Calcification,
    centre_px: tuple[float, float],
    pixel_spacing_mm: float,
    box: tuple[int, int, int, int],
    supersample: int,
):
    """Partial-volume attenuation and coverage of one calcification on its small pixel window."""
    cy, cx = centre_px[0] + calc.offset_mm[0] / pixel_spacing_mm, centre_px[1] + calc.offset_mm[1] / pixel_spacing_mm
    reach = calc.half_length_mm / pixel_spacing_mm + 1.0
    r0, r1 = max(int(np.floor(cy - reach)), box[0]), min(int(np.ceil(cy + reach)) + 1, box[1])
    c0, c1 = max(int(np.floor(cx - reach)), box[2]), min(int(np.ceil(cx + reach)) + 1, box[3])
    if r0 >= r1 or c0 >= c1:
        return None
    sub = (np.arange(supersample) + 0.5) / supersample
    ys = ((np.arange(r0, r1)[:, None] + sub[None, :]).ravel() - cy) * pixel_spacing_mm  # pixel centres at +0.5
    xs = ((np.arange(c0, c1)[:, None] + sub[None, :]).ravel() - cx) * pixel_spacing_mm
    dy, dx = ys[:, None], xs[None, :]
    cos, sin = np.cos(calc.orientation), np.sin(calc.orientation)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    a = 0.5 * calc.diameter_mm * np.sqrt(calc.aspect)
    b = 0.5 * calc.diameter_mm / np.sqrt(calc.aspect)
    rho = np.hypot(u / a, v / b)
    edge = 1.0 + calc.irregularity * np.cos(calc.lobes * np.arctan2(v / b, u / a) + calc.lobe_phase)
    ratio = rho / edge
    inside = ratio < 1.0
    # path length through a roughly spherical body: diameter * sqrt(1 - r^2)
    path = np.where(inside, calc.diameter_mm * np.sqrt(np.clip(1.0 - ratio**2, 0.0, None)), 0.0)
    shape = (r1 - r0, supersample, c1 - c0, supersample)
    attenuation = (calc.attenuation_per_mm * path).reshape(shape).mean(axis=(1, 3))
    coverage = inside.reshape(shape).mean(axis=(1, 3))
    return (r0, r1, c0, c1), attenuation, coverage


def render_cluster(
    design: ClusterDesign,
    centre_px: tuple[float, float],
    image_shape: tuple[int, int],
    pixel_spacing_mm: float,
    psf_sigma_mm: float,
    supersample: int = 4,
) -> RenderedCluster:
    """Draw a cluster centred at `centre_px` (row, col; pixel units, pixel centres at i + 0.5).

    Each calcification is integrated over `supersample`^2 points per pixel
    (partial volume), then the cluster's patch is blurred by a Gaussian PSF of
    `psf_sigma_mm` (mm). A calcification's truth label covers the pixels it
    fills at least half, or its single best-covered pixel when it is smaller
    than that. Calcifications outside the image are dropped.
    """
    sigma_px = psf_sigma_mm / pixel_spacing_mm
    pad = design.radius_mm / pixel_spacing_mm + 3.0 * sigma_px + 2.0
    box = (
        max(int(np.floor(centre_px[0] - pad)), 0),
        min(int(np.ceil(centre_px[0] + pad)) + 1, image_shape[0]),
        max(int(np.floor(centre_px[1] - pad)), 0),
        min(int(np.ceil(centre_px[1] + pad)) + 1, image_shape[1]),
    )
    attenuation = np.zeros((box[1] - box[0], box[3] - box[2]), dtype=np.float32)
    labels = np.zeros(attenuation.shape, dtype=np.uint16)
    next_label = 1
    for calc in design.calcifications:
        drawn = _draw_calcification(calc, centre_px, pixel_spacing_mm, box, supersample)
        if drawn is None:
            continue
        (r0, r1, c0, c1), calc_attenuation, coverage = drawn
        window = (slice(r0 - box[0], r1 - box[0]), slice(c0 - box[2], c1 - box[2]))
        attenuation[window] += calc_attenuation
        mine = coverage >= 0.5
        if not mine.any():
            mine = np.zeros_like(mine)
            mine[np.unravel_index(np.argmax(coverage), coverage.shape)] = coverage.max() > 0
        # never overwrite a neighbour: the minimum gap makes this rare
        mine &= labels[window] == 0
        if mine.any():
            labels[window][mine] = next_label
            next_label += 1
    if sigma_px > 0:
        attenuation = ndimage.gaussian_filter(attenuation, sigma_px, mode="constant").astype(np.float32)
    return RenderedCluster(box, attenuation, labels)
