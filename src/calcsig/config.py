"""Configuration: JSON Schema validation with defaults, and one-line errors.

`workflow/schemas/config.schema.yaml` describes config.yaml; each stage's
section lives in its own file under `workflow/schemas/config/` and is pulled in
with a `$ref` to that file (optionally with a `#/json/pointer`). Defaults come
from the schema, so a partial config (e.g. one given with --configfile) is
complete after loading.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import jsonschema
import yaml

from .errors import ConfigError
from .paths import SCHEMA_DIR

CONFIG_SCHEMA = SCHEMA_DIR / "config.schema.yaml"


def _resolve_pointer(document, pointer: str):
    for part in [p for p in pointer.split("/") if p]:
        document = document[part.replace("~1", "/").replace("~0", "~")]
    return document


def _inline_refs(node, base: Path):
    """Replace every {"$ref": "file.yaml#/pointer"} by the referenced schema, recursively."""
    if isinstance(node, dict):
        if set(node) - {"description"} == {"$ref"} and not node["$ref"].startswith("#"):
            file_part, _, pointer = node["$ref"].partition("#")
            target = (base / file_part).resolve()
            with open(target) as fh:
                loaded = _resolve_pointer(yaml.safe_load(fh), pointer)
            resolved = _inline_refs(loaded, target.parent)
            if "description" in node:
                resolved = {**resolved, "description": node["description"]}
            return resolved
        return {key: _inline_refs(value, base) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_refs(item, base) for item in node]
    return node


@functools.cache
def _config_schema_cached(path: str) -> dict:
    with open(path) as fh:
        return _inline_refs(yaml.safe_load(fh), Path(path).parent)


def config_schema(path: str | Path = CONFIG_SCHEMA) -> dict:
    """The full config schema with every section file inlined."""
    return copy.deepcopy(_config_schema_cached(str(Path(path).resolve())))


def _object_branch(schema: dict) -> dict | None:
    """The object-typed schema of a property (also inside anyOf [object, null])."""
    if "properties" in schema:
        return schema
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        if "properties" in option:
            return option
    return None


def fill_defaults(config: dict, schema: dict) -> dict:
    """A copy of `config` with every missing key that has a schema default filled in."""
    config = copy.deepcopy(config)
    properties = schema.get("properties", {})
    for key, prop in properties.items():
        if key not in config and "default" in prop:
            config[key] = copy.deepcopy(prop["default"])
        branch = _object_branch(prop)
        if branch is not None:
            if key not in config and "default" not in prop and branch.get("type") == "object":
                config[key] = {}
            if isinstance(config.get(key), dict):
                config[key] = fill_defaults(config[key], branch)
    return config


def _key_of(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    key = _key_of(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unexpected = sorted(set(error.instance) - set(allowed))
        where = "" if key == "<top level>" else f"{key}."
        return f"config key '{where}{unexpected[0]}': unknown key (allowed here: {', '.join(allowed)})"
    return f"config key '{key}': {error.message}"


def _check_paths(config, schema: dict, prefix: str, base: Path, problems: list[str]) -> None:
    """Keys marked `x-existing-path: true` must name a file or folder that exists."""
    if not isinstance(config, dict):
        return
    for key, prop in schema.get("properties", {}).items():
        value = config.get(key)
        dotted = f"{prefix}{key}"
        if prop.get("x-existing-path") and value not in (None, ""):
            if not (base / str(value)).exists():
                problems.append(f"config key '{dotted}': file or folder {value!r} does not exist")
        branch = _object_branch(prop)
        if branch is not None:
            _check_paths(value, branch, f"{dotted}.", base, problems)


def load_config(config: dict, *, base: str | Path = ".", schema_path: str | Path = CONFIG_SCHEMA) -> dict:
    """Validate `config`, fill defaults, check that named files exist; return the result.

    Raises ConfigError whose message has one line per problem, each naming the
    dotted key (e.g. ``segment.sigma_min_mm``) and what is wrong.
    """
    schema = config_schema(schema_path)
    filled = fill_defaults(config or {}, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(filled), key=lambda e: (_key_of(e), e.message))
    problems = [_describe(e) for e in errors]
    if not problems:
        _check_paths(filled, schema, "", Path(base), problems)
    for source in ("mini_mias", "cbis_ddsm", "csv"):
        if not problems and filled.get("corpus", {}).get("source") == source and not filled["corpus"].get("path"):
            problems.append(f"config key 'corpus.path': required when corpus.source is {source!r}")
    if problems:
        raise ConfigError("\n".join(problems))
    return filled
