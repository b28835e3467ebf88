"""Subjects: site, demographics and the calcification clusters in their breast.

Confounding is deliberate: sites differ in the prevalence of actionable
findings (and, in acquisition.py, in intensity calibration) and in
race/ethnicity mix; breast density falls with age; actionable findings become
more likely with age and density.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .calcifications import ClusterDesign, design_cluster
from .settings import CorpusSettings, Site

DENSITIES = ("A", "B", "C", "D")
MEAN_AGE = 57.0
# Thresholds on the latent density score (sd ~1.12 after the age term) giving
# about 10 / 40 / 40 / 10 % of subjects in A / B / C / D.
_DENSITY_THRESHOLDS = (-1.43, 0.0, 1.43)
_ACTIONABLE_FINE_CLASSES = ("high_risk", "dcis", "invasive")
_ACTIONABLE_FINE_MIX = (0.25, 0.45, 0.30)


@dataclass(frozen=True)
class Subject:
    index: int  # position in the cohort; the subject_id is assigned later (see corpus.py)
    site: Site
    age: int
    density: str
    race_ethnicity: str
    laterality: str
    views: tuple[str, ...]
    clusters: tuple[ClusterDesign, ...]


def density_for_age(age: float, rng: np.random.Generator) -> str:
    """BI-RADS density category: a latent score that decreases 0.05 per year of age."""
    score = rng.normal() - 0.05 * (age - MEAN_AGE)
    return DENSITIES[int(np.searchsorted(_DENSITY_THRESHOLDS, score))]


def actionable_probability(site: Site, age: float, density: str) -> float:
    """Site prevalence on the logit scale, shifted up with age and dense breasts."""
    p = float(np.clip(site.actionable_prevalence, 1e-3, 1 - 1e-3))
    logit = np.log(p / (1 - p)) + 0.035 * (age - MEAN_AGE) + (0.25 if density in ("C", "D") else 0.0)
    return float(1.0 / (1.0 + np.exp(-logit)))


def draw_subject(index: int, settings: CorpusSettings, max_cluster_radius_mm: float) -> Subject:
    """Draw subject `index`; it has its own random stream, so adding subjects leaves earlier ones unchanged."""
    rng = np.random.default_rng([settings.seed, 0, index])
    weights = np.array([s.weight for s in settings.sites])
    site = settings.sites[int(rng.choice(len(weights), p=weights / weights.sum()))]
    age = int(np.clip(round(rng.normal(MEAN_AGE, 10.0)), 35, 89))
    density = density_for_age(age, rng)
    groups = sorted(site.race_ethnicity)
    mix = np.array([site.race_ethnicity[g] for g in groups], dtype=float)
    race_ethnicity = str(groups[int(rng.choice(len(groups), p=mix / mix.sum()))])
    laterality = "L" if rng.uniform() < 0.5 else "R"
    if rng.uniform() < settings.two_view_fraction:
        views = ("CC", "MLO")
    else:
        views = ("CC",) if rng.uniform() < 0.5 else ("MLO",)
    if rng.uniform() < actionable_probability(site, age, density):
        primary = str(rng.choice(_ACTIONABLE_FINE_CLASSES, p=_ACTIONABLE_FINE_MIX))
    else:
        primary = "benign"
    fine_classes = [primary] + (["benign"] if rng.uniform() < settings.second_cluster_fraction else [])
    clusters = tuple(design_cluster(fc, rng, max_cluster_radius_mm) for fc in fine_classes)
    return Subject(index, site, age, density, race_ethnicity, laterality, views, clusters)


def draw_cohort(settings: CorpusSettings) -> list[Subject]:
    """The main cohort: settings.n_subjects subjects.

    Clusters are limited to a radius of 18 % of the shorter field side so they
    fit inside the breast of small fields.
    """
    rows, cols = settings.shape
    max_radius_mm = 0.18 * min(rows, cols) * settings.pixel_spacing_mm
    return [draw_subject(i, settings, max_radius_mm) for i in range(settings.n_subjects)]
