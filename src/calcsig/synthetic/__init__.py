"""Deterministic synthetic mammography corpus with exact calcification ground truth.

Modules, one job each: settings (the config section), anatomy (breast shape,
parenchyma), calcifications (cluster morphology and rendering), cohort
(subjects, demographics, sites), acquisition (quantum noise, calibration),
mammogram (one image), duplicates (near-duplicate changes), pngfile (16-bit PNG),
corpus (the whole corpus and its tables).
"""

from .corpus import generate_corpus
from .settings import CorpusSettings, resolve_settings, with_defaults

__all__ = ["CorpusSettings", "generate_corpus", "resolve_settings", "with_defaults"]
