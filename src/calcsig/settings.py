"""One stage's settings: a config section validated, completed with defaults, and cut to the keys it uses.

The workflow hands each rule only the config values that rule uses, so that a
change to any other value reruns nothing (Snakemake reruns a job whose
parameters changed). Library entry points call `section_params` with the tuple
of keys they use: the result holds exactly those keys, so reading any other key
is a KeyError in the tests rather than a silent default in a run.
"""

from __future__ import annotations

import copy
import functools

import jsonschema
import yaml

from .errors import ConfigError
from .paths import SCHEMA_DIR


@functools.cache
def section_schema(section: str) -> dict:
    """JSON Schema of one config section (``src/calcsig/schemas/config/<section>.schema.yaml``)."""
    return yaml.safe_load((SCHEMA_DIR / "config" / f"{section}.schema.yaml").read_text())


def _defaults(schema: dict) -> dict:
    out = {}
    for key, prop in schema.get("properties", {}).items():
        if "default" in prop:
            out[key] = copy.deepcopy(prop["default"])
        elif prop.get("type") == "object" and "properties" in prop:
            out[key] = _defaults(prop)
    return out


def section_params(section: str, params: dict | None, keys: tuple[str, ...] | None = None) -> dict:
    """`params` (part of config section `section`) validated, with schema defaults for missing keys.

    keys : the keys the caller uses; the result holds exactly these (all keys
        when None), so a stage cannot read a value the workflow did not hand it.
    Raises ConfigError naming the section and key.
    """
    schema = section_schema(section)
    given = dict(params or {})
    filled = _defaults(schema)
    for key, value in given.items():
        if isinstance(filled.get(key), dict) and isinstance(value, dict):
            filled[key] = {**filled[key], **value}
        else:
            filled[key] = value
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(filled), key=str)
    if errors:
        raise ConfigError(
            f"config section '{section}': "
            + "; ".join(f"{'.'.join(map(str, e.path)) or '(section)'}: {e.message}" for e in errors)
        )
    return filled if keys is None else {k: filled[k] for k in keys}
