"""Every leaf key of the config schema, and a valid changed value for each (for the rerun-scope test).

A leaf is a key whose value is not an object with fixed properties: scalars,
lists, and free-form mappings (cohort.label_map). `changed_config(key, config)`
returns a partial config that changes only that key, to a value the schema
and the config checks accept.
"""

from __future__ import annotations

import copy

from calcsig.config import GLOBAL_FAMILY_SWITCH, LOCAL_FAMILY_SWITCH, config_schema

# Keys whose generic change would be invalid or meaningless on the tiny synthetic corpus: the change to make instead.


def _family_off(family: str) -> dict:
    """Switching a feature family off, and the model's use of its prefix with it (else the config is refused)."""
    defaults = {
        key: config_schema()["properties"]["model"]["properties"][key]["default"]
        for key in ("families", "global_prefixes")
    }
    switches = {"families": LOCAL_FAMILY_SWITCH, "global_prefixes": GLOBAL_FAMILY_SWITCH}
    model = {
        key: [prefix for prefix in defaults[key] if switches[key].get(prefix) != family]
        for key in defaults
        if family in switches[key].values()
    }
    return {"features": {"families": {family: False}}, "model": model}


SPECIAL = {
    "partition.fractions.train": {"partition": {"fractions": {"train": 0.55, "dev": 0.20}}},
    "partition.fractions.dev": {"partition": {"fractions": {"dev": 0.20, "eval": 0.20}}},
    "partition.fractions.eval": {"partition": {"fractions": {"eval": 0.30, "train": 0.55}}},
    "partition.external": {"partition": {"external": {"column": "site", "values": ["site_c"]}}},
    "corpus.source": {"corpus": {"source": "csv", "path": "manifest.csv"}},
    "corpus.path": {"corpus": {"path": "manifest.csv"}},
    "cohort.abnormality": {"cohort": {"abnormality": []}},
    "cohort.calc_type": {"cohort": {"calc_type": ["PLEOMORPHIC", "AMORPHOUS", "PUNCTATE", "COARSE", "ROUND"]}},
    "cohort.calc_distribution": {"cohort": {"calc_distribution": ["CLUSTERED", "SEGMENTAL", "LINEAR", "REGIONAL"]}},
    "cohort.label_map": {"cohort": {"label_map": {"dcis": "exclude"}}},
    "model.grid_file": {"model": {"grid_file": "grid_copy.yaml"}},
    "features.radiomics_foreground": {"features": {"radiomics_foreground": "foreground_copy.yaml"}},
    "features.radiomics_background": {"features": {"radiomics_background": "background_copy.yaml"}},
    "partition.split_file": {"partition": {"split_file": "splits.tsv"}},
    "partition.numeric_covariates": {"partition": {"numeric_covariates": []}},
    # a subset forced into train must be declared too; dropping the default one is a valid change
    "partition.enrichment_subsets": {"partition": {"enrichment_subsets": []}},
    # narrower: a wider band would not fit the tiny config's ROI margin
    "masks.background_band_mm": {"masks": {"background_band_mm": 1.5}},
    # at or above the margin operating point's sensitivity (0.95)
    "model.target_sensitivity": {"model": {"target_sensitivity": 0.98}},
    # a (low, high) range
    "segment.insertion_contrast_snr": {"segment": {"insertion_contrast_snr": [5.0, 12.0]}},
    "corpus.cbis_ddsm.image_root": {"corpus": {"cbis_ddsm": {"image_root": "cbis_images"}}},
    "corpus.dicom_dir.labels": {"corpus": {"dicom_dir": {"labels": "labels.csv"}}},
    "model.grid": {"model": {"grid": "large"}},
    **{
        f"features.families.{family}": _family_off(family)
        for family in (*LOCAL_FAMILY_SWITCH.values(), *GLOBAL_FAMILY_SWITCH.values())
    },
}


def _is_branch(prop: dict) -> dict | None:
    if "properties" in prop and prop.get("type", "object") == "object":
        return prop
    for option in prop.get("anyOf", []) + prop.get("oneOf", []):
        if "properties" in option:
            return None  # nullable object (e.g. partition.external): a leaf, changed as a whole
    return None


def leaf_keys(schema: dict | None = None, prefix: str = "") -> dict[str, dict]:
    """{dotted key: its schema} for every leaf of the config schema."""
    schema = config_schema() if schema is None else schema
    out = {}
    for key, prop in schema.get("properties", {}).items():
        dotted = f"{prefix}{key}"
        branch = _is_branch(prop)
        if branch is not None:
            out.update(leaf_keys(branch, dotted + "."))
        else:
            out[dotted] = prop
    return out


def _get(config: dict, dotted: str):
    node = config
    for part in dotted.split("."):
        node = node[part]
    return node


def _nest(dotted: str, value) -> dict:
    out: dict = {}
    node = out
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _types(prop: dict) -> list[str]:
    t = prop.get("type", [])
    return t if isinstance(t, list) else [t]


def changed_value(prop: dict, current):
    """A value of the same schema other than `current`."""
    if "enum" in prop:
        return next(v for v in prop["enum"] if v != current)
    types = _types(prop)
    if "boolean" in types:
        return not current
    if current is None and "null" in types:
        if "integer" in types or "number" in types:
            return max(prop.get("minimum", 1), 1)
        if "string" in types:
            return "x"
    if "integer" in types:
        top = prop.get("maximum")
        return current + 1 if top is None or current + 1 <= top else current - 1
    if "number" in types:
        step = abs(current) * 0.25 if current else 0.25
        top = prop.get("maximum", prop.get("exclusiveMaximum"))
        return current + step if top is None or current + step < top else current - step / 2
    if "array" in types:
        if len(current) > 1:
            return current[:-1]
        items = prop.get("items", {})
        if "enum" in items:
            return [*current, next(v for v in items["enum"] if v not in current)]
        return [*current, current[-1] * 2] if current and isinstance(current[-1], (int, float)) else [*current, "x"]
    if "string" in types:
        return f"{current}, changed"
    raise ValueError(f"no generic change for a value of schema {prop}")


def changed_config(dotted: str, config: dict) -> dict:
    """A partial config that changes only `dotted` (relative to the full config `config`)."""
    if dotted in SPECIAL:
        return copy.deepcopy(SPECIAL[dotted])
    prop = leaf_keys()[dotted]
    return _nest(dotted, changed_value(prop, _get(config, dotted)))
