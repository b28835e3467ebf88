"""The corpus.synthetic config section: defaults from its schema, presets, and a typed view."""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import jsonschema
import yaml

from ..errors import ConfigError
from ..paths import SCHEMA_DIR

SCHEMA_PATH = SCHEMA_DIR / "config" / "corpus_synthetic.schema.yaml"

# Full-field digital mammography detector: 3328 x 2560 pixels at 0.07 mm.
FULL_FIELD_SHAPE = (3328, 2560)
FULL_FIELD_SPACING_MM = 0.07


@functools.cache
def section_schema() -> dict:
    """The JSON Schema of the corpus.synthetic section."""
    with open(SCHEMA_PATH) as fh:
        return yaml.safe_load(fh)


def _fill_defaults(value, schema: dict):
    """Return `value` with every absent key set to its schema default, recursively."""
    if value is None and "default" in schema:
        value = copy.deepcopy(schema["default"])
    if isinstance(value, dict) and "properties" in schema:
        value = dict(value)
        for key, prop in schema["properties"].items():
            if key not in value and "default" in prop:
                value[key] = copy.deepcopy(prop["default"])
            if key in value:
                value[key] = _fill_defaults(value[key], prop)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        value = [_fill_defaults(item, schema["items"]) for item in value]
    return value


def with_defaults(params: dict | None) -> dict:
    """Validate a (partial) corpus.synthetic section and fill in every default.

    The top-level `seed`, which the caller passes along in the same dict, is
    set aside; any other unknown key is an error. Raises ConfigError naming
    the key at fault.
    """
    schema = section_schema()
    own = {k: v for k, v in (params or {}).items() if k != "seed"}
    filled = _fill_defaults(own, schema)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(filled), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        key = ".".join(str(p) for p in ("corpus", "synthetic", *first.path))
        raise ConfigError(f"config key {key}: {first.message}")
    return filled


@dataclass(frozen=True)
class Site:
    name: str
    weight: float
    actionable_prevalence: float
    gain: float
    offset: float  # fraction of the full scale
    race_ethnicity: dict


@dataclass(frozen=True)
class CorpusSettings:
    """Everything the generator needs, in physical units."""

    seed: int
    n_subjects: int
    pixel_spacing_mm: float
    shape: tuple[int, int]  # rows, cols
    bits: int
    two_view_fraction: float
    second_cluster_fraction: float
    psf_sigma_mm: float
    photons_per_mm2: float
    roi_margin_mm: float
    sites: tuple[Site, ...]
    enrichment_subjects: int  # 0 when enrichment is off
    exact_duplicates: int  # 0 when duplicates are off
    near_duplicates: int


def resolve_settings(params: dict | None, seed: int) -> CorpusSettings:
    """Turn a corpus.synthetic section (partial or complete) and the seed into CorpusSettings."""
    p = with_defaults(params)
    if p["preset"] == "full_field":
        spacing, shape = FULL_FIELD_SPACING_MM, FULL_FIELD_SHAPE
    else:
        spacing = float(p["pixel_spacing_mm"])
        shape = (int(round(p["image_height_mm"] / spacing)), int(round(p["image_width_mm"] / spacing)))
    if min(shape) < 64:
        raise ConfigError(
            f"config keys corpus.synthetic.image_height_mm/image_width_mm: the field is "
            f"{shape[0]} x {shape[1]} pixels; at least 64 x 64 are needed to hold a cluster"
        )
    names = [s["name"] for s in p["sites"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"config key corpus.synthetic.sites: site names repeat: {names}")
    sites = tuple(
        Site(
            s["name"],
            float(s["weight"]),
            float(s["actionable_prevalence"]),
            float(s["gain"]),
            float(s["offset"]),
            dict(s["race_ethnicity"]),
        )
        for s in p["sites"]
    )
    for site in sites:
        if sum(site.race_ethnicity.values()) <= 0:
            raise ConfigError(f"config key corpus.synthetic.sites ({site.name}).race_ethnicity: weights sum to 0")
    return CorpusSettings(
        seed=int(seed),
        n_subjects=int(p["n_subjects"]),
        pixel_spacing_mm=spacing,
        shape=shape,
        bits=int(p["bits"]),
        two_view_fraction=float(p["two_view_fraction"]),
        second_cluster_fraction=float(p["second_cluster_fraction"]),
        psf_sigma_mm=float(p["psf_sigma_mm"]),
        photons_per_mm2=float(p["photons_per_mm2"]),
        roi_margin_mm=float(p["roi_margin_mm"]),
        sites=sites,
        enrichment_subjects=int(p["enrichment"]["n_subjects"]) if p["enrichment"]["enabled"] else 0,
        exact_duplicates=int(p["duplicates"]["n_exact"]) if p["duplicates"]["enabled"] else 0,
        near_duplicates=int(p["duplicates"]["n_near"]) if p["duplicates"]["enabled"] else 0,
    )
