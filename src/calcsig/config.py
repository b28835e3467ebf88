"""Configuration: reading config files, JSON Schema validation with defaults, cross-key checks, one-line errors.

`src/calcsig/schemas/config.schema.yaml` describes config.yaml; each stage's
section lives in its own file under `src/calcsig/schemas/config/` and is pulled in
with a `$ref` to that file (optionally with a `#/json/pointer`). Defaults come
from the schema, so a partial config (e.g. one given with --configfile) is
complete after loading.

`load_config` finds every problem at once, so that a run stops when the
Snakefile is parsed, not hours later inside a job: schema errors (types, ranges,
unknown keys), then files that must exist, then keys that contradict each
other or the resource files they name (`cross_key_problems`; the list of
constraints is in docs/reliability.md).

`python -m calcsig.config FILE...` checks config files the way the workflow
reads them (each file merged over the previous), naming file and line of a YAML
error; Snakemake reads --configfile before calcsig code runs and reports such
errors without them.
"""

from __future__ import annotations

import copy
import functools
import math
import sys
from collections.abc import Callable
from pathlib import Path

import jsonschema
import yaml

from .errors import ConfigError
from .paths import PACKAGE_DIR, SCHEMA_DIR

CONFIG_SCHEMA = SCHEMA_DIR / "config.schema.yaml"
# Partition fractions are shares of one whole; rounding in a hand-written file is forgiven up to this.
FRACTION_SUM_TOLERANCE = 1e-3
# The synthetic generator needs this many pixels per side to hold a cluster (calcsig.synthetic.settings).
SYNTHETIC_MIN_SIDE_PX = 64
FULL_FIELD_SIDE_MM = (232.96, 179.2)
# pyradiomics parameter files: the sections it knows, and the 2-D feature classes the cropped extractor
# computes (calcsig.features.radiomics_fast.FEATURE_CLASS_ORDER; a test keeps the two equal).
RADIOMICS_SECTIONS = ("setting", "imageType", "featureClass", "voxelSetting")
RADIOMICS_2D_CLASSES = ("shape2D", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
# Feature family switch (features.families) that produces each column prefix the model can use.
LOCAL_FAMILY_SWITCH = {"fg_": "foreground_radiomics", "bg_": "background_radiomics", "rp_": "regionprops"}
GLOBAL_FAMILY_SWITCH = {"topo_": "topology", "hc_": "handcrafted", "dist_": "distribution"}
GRID_PARAMETER_PREFIXES = ("aggregate__", "classifier__")
RADIOMICS_FILE_SWITCH = {"radiomics_foreground": "foreground_radiomics", "radiomics_background": "background_radiomics"}


# ---------------------------------------------------------------- reading files


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""


class _DuplicateKey(yaml.constructor.ConstructorError):
    """A mapping gives the same key twice."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key (a list or mapping); construct_mapping reports it
            continue
        if first is not None:
            raise _DuplicateKey(
                None, None, f"key {key!r} is given twice (first on line {first.line + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def parse_config_text(text: str, where: str) -> dict:
    """The mapping in YAML (or JSON) `text`; ConfigError naming `where`, line and column when it is not one."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        raise ConfigError(f"config file {where}{_yaml_error_text(error)}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {where}: not valid YAML: {error}") from None
    except RecursionError:
        raise ConfigError(f"config file {where}: nested too deeply to be a config") from None
    if data is None:
        raise ConfigError(
            f"config file {where}: is empty (or only comments); a config file holds keys at top level, "
            "e.g. 'corpus:' with its settings below"
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {where}: holds a {_type_name(data)} at top level; a config file holds keys at "
            "top level, e.g. 'corpus:' with its settings below"
        )
    return data


def _yaml_error_text(error: yaml.MarkedYAMLError) -> str:
    """', line L, column C: what' for a YAML error, with where the construct it was inside began."""
    mark, context = error.problem_mark, error.context_mark
    if mark is None:
        mark, context = context, None
    position = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    if isinstance(error, _DuplicateKey):
        return f"{position}: {error.problem}; give each key once"
    text = f"{position}: not valid YAML: {error.problem or error.context}"
    if error.context and error.problem and context is not None and context.line != getattr(mark, "line", None):
        text += f" ({error.context} that starts on line {context.line + 1}, column {context.column + 1})"
    elif error.context and error.problem:
        text += f" ({error.context})"
    return text


def read_config_file(path: str | Path) -> dict:
    """The config mapping in a YAML or JSON file.

    Raises ConfigError naming the file when it is missing, unreadable, not
    UTF-8, empty, not a mapping at top level, or not valid YAML (then also
    line and column); a key given twice in one mapping is an error too.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path}: does not exist")
    if not path.is_file():
        raise ConfigError(f"config file {path}: is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"config file {path}: is not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise ConfigError(f"config file {path}: cannot be read ({error.strerror})") from None
    return parse_config_text(text, str(path))


def merge_configs(base: dict, *overrides: dict) -> dict:
    """A copy of `base` with each override merged over it in order, as Snakemake merges
    --configfile over the workflow's configfile: mappings merge key by key, any
    other value (lists included) replaces."""
    merged = copy.deepcopy(base)
    for override in overrides:
        _merge_into(merged, override)
    return merged


def _merge_into(target: dict, override: dict) -> None:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


# ---------------------------------------------------------------- schema


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
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        unexpected = sorted((k for k in error.instance if k not in allowed), key=str)
        if unexpected:
            where = "" if key == "<top level>" else f"{key}."
            return f"config key '{where}{unexpected[0]}': unknown key (allowed here: {', '.join(allowed)})"
    return f"config key '{key}': {_shorten(error.message)}"


def _shorten(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _type_name(value) -> str:
    return {dict: "mapping", list: "list", str: "text", bool: "boolean", int: "number", float: "number"}.get(
        type(value), type(value).__name__
    )


def _check_paths(config, schema: dict, prefix: str, base: Path, problems: list[str]) -> None:
    """Keys marked `x-existing-path: true` must name a file or folder that exists."""
    if not isinstance(config, dict):
        return
    for key, prop in schema.get("properties", {}).items():
        value = config.get(key)
        dotted = f"{prefix}{key}"
        if prop.get("x-existing-path") and value not in (None, ""):
            if not _exists(base / str(value)):
                problems.append(f"config key '{dotted}': file or folder {value!r} does not exist")
        branch = _object_branch(prop)
        if branch is not None:
            _check_paths(value, branch, f"{dotted}.", base, problems)


def _non_finite(node, prefix: str):
    """(dotted key, value) of every NaN or infinite number in a config."""
    if isinstance(node, float) and not math.isfinite(node):
        yield prefix or "<top level>", node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _non_finite(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _non_finite(value, f"{prefix}.{index}")


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a NUL byte or an over-long name is no file
        return False


def load_config(config: dict, *, base: str | Path = ".", schema_path: str | Path = CONFIG_SCHEMA) -> dict:
    """Validate `config`, fill defaults, check files and cross-key constraints; return the result.

    Raises ConfigError whose message has one line per problem, each naming the
    dotted key (e.g. ``segment.sigma_min_mm``) and what is wrong. Paths are
    relative to `base` (the working directory); shipped resources (grid file,
    pyradiomics files) are looked up there first, then in the repository.
    Cross-key constraints are checked only against the real schema (a test
    schema has none of those keys).
    """
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ConfigError(f"config: expected keys at top level, got a {_type_name(config)}")
    schema = config_schema(schema_path)
    filled = fill_defaults(config, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(filled), key=lambda e: (_key_of(e), e.message))
    problems = [_describe(e) for e in errors]
    faulted = {_key_of(e) for e in errors}
    # JSON Schema bounds never reject NaN (every comparison is false), and YAML spells it .nan
    problems += [
        f"config key '{key}': {value} is not a finite number"
        for key, value in _non_finite(filled, "")
        if key not in faulted
    ]
    if not problems:
        _check_paths(filled, schema, "", Path(base), problems)
    if not problems and Path(schema_path).resolve() == CONFIG_SCHEMA.resolve():
        problems += cross_key_problems(filled, base=base)
    if problems:
        raise ConfigError("\n".join(problems))
    return filled


# ---------------------------------------------------------------- cross-key constraints


def resource_path(path: str, base: str | Path = ".") -> Path:
    """A parameter file named in config: relative to `base` (the working directory) when it
    is there, else one shipped with calcsig (`resources/...` names src/calcsig/resources/...)."""
    candidate = Path(base) / path
    return candidate if Path(path).is_absolute() or _exists(candidate) else PACKAGE_DIR / path


def cross_key_problems(config: dict, base: str | Path = ".") -> list[str]:
    """Every contradiction between keys of a schema-valid, defaults-filled config, one line each.

    Each line names the key(s) and what to change. The constraints are those
    that make a run fail or measure nothing whatever the corpus; the corpus
    itself is checked after ingest (calcsig.checks.check_corpus).
    """
    problems: list[str] = []
    for check in _CHECKS:
        problems += check(config, Path(base))
    return problems


def _corpus_path_matches_source(config: dict, base: Path) -> list[str]:
    corpus = config["corpus"]
    source, path = corpus["source"], corpus.get("path")
    if source == "synthetic":
        return []
    if not path:
        return [f"config key 'corpus.path': required when corpus.source is {source!r}"]
    where = base / path
    if source == "mini_mias":
        if not where.is_dir():
            return [f"config key 'corpus.path': {path!r} must be the mini-MIAS folder (Info.txt and images)"]
        info = corpus["mini_mias"]["info_file"]
        if not (where / info).is_file():
            return [
                f"config keys 'corpus.path' and 'corpus.mini_mias.info_file': {path!r} holds no truth file {info!r}"
            ]
    if source == "csv" and not where.is_file():
        return [f"config key 'corpus.path': {path!r} must be the CSV manifest file (docs/manifest.md), not a folder"]
    if source == "cbis_ddsm":
        from .ingest.cbis_ddsm import find_tables  # deferred: only this source needs the adapter

        subsets = corpus["cbis_ddsm"]["subsets"]
        if not find_tables(where, subsets):
            names = ", ".join(f"{s}_case_description_{{train,test}}_set.csv" for s in subsets)
            return [
                f"config keys 'corpus.path' and 'corpus.cbis_ddsm.subsets': {path!r} holds no case description "
                f"table of the subsets {subsets} (looked for {names})"
            ]
    return []


def _synthetic_field_mm(config: dict) -> tuple[float, float, float] | None:
    """(height mm, width mm, spacing mm) of the synthetic images, or None for a real source."""
    corpus = config["corpus"]
    if corpus["source"] != "synthetic":
        return None
    synthetic = corpus["synthetic"]
    if synthetic["preset"] == "full_field":
        return (*FULL_FIELD_SIDE_MM, 0.07)
    return synthetic["image_height_mm"], synthetic["image_width_mm"], synthetic["pixel_spacing_mm"]


def _synthetic_corpus(config: dict, base: Path) -> list[str]:
    field = _synthetic_field_mm(config)
    if field is None:
        return []
    synthetic = config["corpus"]["synthetic"]
    height_mm, width_mm, spacing = field
    problems = []
    shape = (int(round(height_mm / spacing)), int(round(width_mm / spacing)))
    if min(shape) < SYNTHETIC_MIN_SIDE_PX:
        problems.append(
            "config keys 'corpus.synthetic.image_height_mm', 'image_width_mm' and 'pixel_spacing_mm': the field is "
            f"{shape[0]} x {shape[1]} pixels; the generator needs at least {SYNTHETIC_MIN_SIDE_PX} per side"
        )
    names = [site["name"] for site in synthetic["sites"]]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"config key 'corpus.synthetic.sites': site name(s) {repeated} repeat; give each site its own")
    for index, site in enumerate(synthetic["sites"]):
        race = site.get("race_ethnicity", {"default": 1})
        if sum(race.values()) <= 0:
            problems.append(
                f"config key 'corpus.synthetic.sites.{index}.race_ethnicity': the weights of site "
                f"{site['name']!r} sum to 0; give at least one category a positive weight"
            )
    duplicates = synthetic["duplicates"]
    n_copies = duplicates["n_exact"] + duplicates["n_near"]
    if duplicates["enabled"] and n_copies > synthetic["n_subjects"]:
        problems.append(
            "config keys 'corpus.synthetic.duplicates.n_exact' and 'n_near': "
            f"{n_copies} duplicates for {synthetic['n_subjects']} subjects (corpus.synthetic.n_subjects); "
            "the main subset is sure to hold only one image per subject, so ask for at most that many"
        )
    return problems


def _field_holds_the_margins(config: dict, base: Path) -> list[str]:
    """Sizes known before ingest (the synthetic field) against the margins and the QC minimum."""
    field = _synthetic_field_mm(config)
    if field is None:
        return []
    side = min(field[:2])
    problems = []
    border = config["segment"]["border_margin_mm"]
    if 2 * border >= side:
        problems.append(
            f"config keys 'segment.border_margin_mm' and 'corpus.synthetic.image_height_mm'/'image_width_mm': "
            f"two border margins of {border:g} mm cover the whole {side:g} mm side of the synthetic images, "
            "leaving no breast to search"
        )
    qc_min = config["qc"]["min_image_side_mm"]
    if side < qc_min:
        problems.append(
            f"config keys 'qc.min_image_side_mm' and 'corpus.synthetic.image_height_mm'/'image_width_mm': every "
            f"synthetic image ({side:g} mm on its short side) is below the QC minimum of {qc_min:g} mm"
        )
    band = config["masks"]["background_band_mm"]
    margin = config["corpus"]["synthetic"]["roi_margin_mm"]
    if band > margin:
        problems.append(
            f"config keys 'masks.background_band_mm' and 'corpus.synthetic.roi_margin_mm': a {band:g} mm background "
            f"band does not fit in the {margin:g} mm margin of each synthetic ROI box, so the bands of the outer "
            "calcifications would be cut by the box; narrow the band or widen the margin"
        )
    return problems


def _partition(config: dict, base: Path) -> list[str]:
    partition = config["partition"]
    problems = []
    fractions = partition["fractions"]
    total = sum(fractions.values())
    if not math.isclose(total, 1.0, abs_tol=FRACTION_SUM_TOLERANCE):
        shares = ", ".join(f"{k} {fractions[k]:g}" for k in ("train", "dev", "eval"))
        problems.append(
            f"config keys 'partition.fractions.train', 'dev' and 'eval': the shares ({shares}) sum to {total:g}, "
            "not 1 (keys left out take their defaults 0.6, 0.15, 0.25)"
        )
    if partition["split_file"] and partition["use_given_split"]:
        problems.append(
            "config keys 'partition.split_file' and 'partition.use_given_split': both name a given split; set one"
        )
    if partition["audit_policy"] == "fail":
        undeclared = [s for s in partition["enrichment_subsets"] if s not in partition["declared_enrichment"]]
        if undeclared:
            problems.append(
                f"config keys 'partition.enrichment_subsets' and 'partition.declared_enrichment': {undeclared} are "
                "forced into train but not declared, so with audit_policy fail the audit would stop the run "
                "on their subjects' overlap; declare them too"
            )
    bits = partition["hash_size"] ** 2
    if partition["near_duplicate_hamming"] >= bits:
        problems.append(
            f"config keys 'partition.near_duplicate_hamming' and 'partition.hash_size': a distance of "
            f"{partition['near_duplicate_hamming']} bits covers every pair of {bits}-bit hashes, so every pair "
            "of images would be a near duplicate"
        )
    return problems


def _segment(config: dict, base: Path) -> list[str]:
    segment, masks = config["segment"], config["masks"]
    problems = []
    if segment["sigma_min_mm"] > segment["sigma_max_mm"]:
        problems.append(
            f"config keys 'segment.sigma_min_mm' ({segment['sigma_min_mm']:g}) and 'segment.sigma_max_mm' "
            f"({segment['sigma_max_mm']:g}): the smallest DoG sigma exceeds the largest"
        )
    largest = segment["max_area_mm2"]
    if largest > 0 and segment["min_area_mm2"] > largest:
        problems.append(
            f"config keys 'segment.min_area_mm2' ({segment['min_area_mm2']:g}) and 'segment.max_area_mm2' "
            f"({largest:g}): no object can be both; every candidate would be dropped"
        )
    if largest > 0 and masks["min_area_mm2"] > largest:
        problems.append(
            f"config keys 'masks.min_area_mm2' ({masks['min_area_mm2']:g}) and 'segment.max_area_mm2' "
            f"({largest:g}): the masks stage would drop every object the segment stage reports"
        )
    return problems


def _qc(config: dict, base: Path) -> list[str]:
    qc = config["qc"]
    if qc["min_breast_fraction"] > qc["max_breast_fraction"]:
        return [
            f"config keys 'qc.min_breast_fraction' ({qc['min_breast_fraction']:g}) and 'qc.max_breast_fraction' "
            f"({qc['max_breast_fraction']:g}): no breast area passes both"
        ]
    return []


def _radiomics_files(config: dict, base: Path) -> list[str]:
    problems = []
    families = config["features"]["families"]
    for key, switch in RADIOMICS_FILE_SWITCH.items():
        if families[switch]:
            problems += _radiomics_file_problems(f"features.{key}", config["features"][key], base)
    return problems


def _radiomics_file_problems(key: str, name: str, base: Path) -> list[str]:
    """A pyradiomics parameter file must exist, parse, and hold settings the cropped extractor accepts."""
    path = resource_path(name, base)
    try:
        settings = read_config_file(path)
    except ConfigError as error:
        return [f"config key '{key}': {str(error).replace('config file ', 'pyradiomics file ', 1)}"]
    problems = []
    unknown = sorted(set(map(str, settings)) - set(RADIOMICS_SECTIONS))
    if unknown:
        problems.append(f"unknown section(s) {unknown} (pyradiomics knows {', '.join(RADIOMICS_SECTIONS)})")
    image_types = settings.get("imageType") or {"Original": {}}
    if not isinstance(image_types, dict) or set(image_types) != {"Original"}:
        names = sorted(map(str, image_types)) if isinstance(image_types, dict) else image_types
        problems.append(f"imageType {names}: only Original is supported (filters see beyond each object's box)")
    setting = settings.get("setting") or {}
    if not isinstance(setting, dict):
        problems.append("setting must be a mapping of pyradiomics settings")
        setting = {}
    for name, refused in (
        ("normalize", bool(setting.get("normalize"))),
        ("resampledPixelSpacing", setting.get("resampledPixelSpacing") is not None),
        ("resegmentRange", setting.get("resegmentRange") is not None),
        ("voxelBased", bool(setting.get("voxelBased"))),
    ):
        if refused:
            problems.append(f"setting {name} is not supported by the cropped extractor")
    classes = settings.get("featureClass") or {}
    if not isinstance(classes, dict) or not classes:
        problems.append("featureClass must name at least one feature class")
    else:
        unsupported = sorted(set(map(str, classes)) - set(RADIOMICS_2D_CLASSES))
        if unsupported:
            problems.append(
                f"feature class(es) {unsupported} are not computed for 2-D objects "
                f"(supported: {', '.join(RADIOMICS_2D_CLASSES)})"
            )
    return [f"config key '{key}': {path}: {p}" for p in problems]


def _model_families(config: dict, base: Path) -> list[str]:
    families, model = config["features"]["families"], config["model"]
    problems = []
    for prefix in model["families"]:
        switch = LOCAL_FAMILY_SWITCH.get(prefix)
        if switch and not families[switch]:
            problems.append(
                f"config keys 'model.families' and 'features.families.{switch}': the model aggregates {prefix} "
                f"features but {switch} is switched off, so there would be none; switch it on or drop {prefix}"
            )
    for prefix in model["global_prefixes"]:
        switch = GLOBAL_FAMILY_SWITCH.get(prefix)
        if switch and not families[switch]:
            problems.append(
                f"config keys 'model.global_prefixes' and 'features.families.{switch}': the model uses {prefix} "
                f"features but {switch} is switched off, so there would be none; switch it on or drop {prefix}"
            )
    return problems


def _model_sensitivities(config: dict, base: Path) -> list[str]:
    model = config["model"]
    if model["margin_sensitivity"] > model["target_sensitivity"]:
        return [
            f"config keys 'model.margin_sensitivity' and 'model.target_sensitivity': the margin operating point "
            f"({model['margin_sensitivity']:g}) must not aim above the target ({model['target_sensitivity']:g}); "
            "lower the margin or raise the target"
        ]
    return []


def _model_grid(config: dict, base: Path) -> list[str]:
    model = config["model"]
    path = resource_path(model["grid_file"], base)
    try:
        grids = read_config_file(path)
    except ConfigError as error:
        return [f"config key 'model.grid_file': {str(error).replace('config file ', 'grid file ', 1)}"]
    name = model["grid"]
    if name not in grids:
        return [f"config key 'model.grid': {path} has no grid named {name!r} (it has {', '.join(map(str, grids))})"]
    grid = grids[name]
    if not isinstance(grid, dict):
        return [f"config key 'model.grid': grid {name!r} of {path} must map each model to its parameters"]
    needed = [model["main_model"]] + [b for b in ("mean_std", "mask_brf") if model["baselines"][b]]
    problems = []
    for entry in dict.fromkeys(needed):
        if entry not in grid:
            problems.append(
                f"config key 'model.grid': grid {name!r} of {path} has no entry for model {entry!r}, which this "
                "config runs"
            )
            continue
        parameters = grid[entry] or {}
        if not isinstance(parameters, dict):
            problems.append(f"config key 'model.grid': {path} {name}.{entry} must map parameters to value lists")
            continue
        for parameter, values in parameters.items():
            where = f"config key 'model.grid': {path} {name}.{entry}.{parameter}"
            if not str(parameter).startswith(GRID_PARAMETER_PREFIXES):
                problems.append(f"{where}: not a pipeline parameter (names start with aggregate__ or classifier__)")
            elif not isinstance(values, list) or not values:
                problems.append(f"{where}: must be a non-empty list of values to search")
    return problems


_CHECKS: tuple[Callable[[dict, Path], list[str]], ...] = (
    _corpus_path_matches_source,
    _synthetic_corpus,
    _field_holds_the_margins,
    _partition,
    _segment,
    _qc,
    _radiomics_files,
    _model_families,
    _model_sensitivities,
    _model_grid,
)


# ---------------------------------------------------------------- command line


def load_workflow_config(
    command_line: dict | None, config_file: str | Path = "config.yaml", base: str | Path = "."
) -> dict:
    """The run's config: `config_file` read by calcsig, the command line's config merged over it, loaded.

    For a Snakefile without a `configfile:` directive, where Snakemake's
    `config` holds only what --configfile and --config gave: a YAML error in
    `config_file` is then reported with its file and line, and a key given
    twice is refused (Snakemake reports neither). As with the directive, a
    missing `config_file` is an error unless the command line gave a config.
    """
    path = Path(base) / config_file
    if _exists(path) or not command_line:
        defaults = read_config_file(path)
    else:
        defaults = {}
    return load_config(merge_configs(defaults, command_line or {}), base=base)


def check_config_files(paths: list[str | Path], base: str | Path = ".") -> dict:
    """Read each config file, merge them in order and load the result (ConfigError on any problem)."""
    config: dict = {}
    for path in paths:
        config = merge_configs(config, read_config_file(path))
    return load_config(config, base=base)


def main(argv: list[str] | None = None) -> int:
    """`python -m calcsig.config config.yaml [override.yaml ...]`: check config files before a run."""
    paths = list(sys.argv[1:] if argv is None else argv)
    if not paths or paths[0] in ("-h", "--help"):
        print("usage: python -m calcsig.config config.yaml [override.yaml ...]", file=sys.stderr)
        return 2
    try:
        check_config_files(paths)
    except ConfigError as error:
        print(f"calcsig: invalid configuration:\n{error}", file=sys.stderr)
        return 1
    print(f"calcsig: configuration valid ({' + '.join(map(str, paths))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
