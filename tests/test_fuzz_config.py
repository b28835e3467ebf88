"""Fuzzing the config loader: any YAML text, any document, any value for a known key
either loads or raises ConfigError naming what is wrong, never anything else.

Derandomized and bounded for CI; CALCSIG_FUZZ_EXAMPLES=5000 explores further by hand.
"""

import math
import os
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calcsig.config import config_schema, load_config, parse_config_text
from calcsig.errors import ConfigError

FUZZ = settings(
    max_examples=int(os.environ.get("CALCSIG_FUZZ_EXAMPLES", 100)),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    st.sampled_from(["synthetic", "mini_mias", "csv", "small", "large", "fail", "skip", "fg_", "\x00", "..", "/"]),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers(-3, 3), st.booleans()), children, max_size=4),
    ),
    max_leaves=12,
)


def _leaf_keys(schema: dict, prefix: tuple = ()) -> list[tuple]:
    keys = []
    for key, prop in schema.get("properties", {}).items():
        keys.append((*prefix, key))
        if "properties" in prop:
            keys += _leaf_keys(prop, (*prefix, key))
    return keys


KNOWN_KEYS = _leaf_keys(config_schema())


def nested(path: tuple, value) -> dict:
    for key in reversed(path):
        value = {key: value}
    return value


def load_or_refuse(config) -> dict | None:
    with tempfile.TemporaryDirectory() as base:
        try:
            loaded = load_config(config, base=base)
        except ConfigError as error:
            assert str(error)
            return None
    return loaded


def finite_numbers_only(node) -> bool:
    if isinstance(node, float):
        return math.isfinite(node)
    if isinstance(node, dict):
        return all(finite_numbers_only(v) for v in node.values())
    if isinstance(node, list):
        return all(finite_numbers_only(v) for v in node)
    return True


@FUZZ
@given(text=st.text(max_size=200))
def test_any_text_parses_to_a_mapping_or_raises_config_error(text):
    try:
        assert isinstance(parse_config_text(text, "fuzz.yaml"), dict)
    except ConfigError as error:
        assert str(error).startswith("config file fuzz.yaml")


@FUZZ
@given(document=DOCUMENTS)
def test_any_yaml_document_loads_or_raises_config_error(document):
    text = yaml.safe_dump(document, allow_unicode=True)
    try:
        config = parse_config_text(text, "fuzz.yaml")
    except ConfigError:
        return
    load_or_refuse(config)


@FUZZ
@given(entries=st.lists(st.tuples(st.sampled_from(KNOWN_KEYS), DOCUMENTS), min_size=1, max_size=4))
def test_any_values_for_known_keys_load_or_raise_config_error(entries):
    config: dict = {}
    for path, value in entries:
        node = config
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[path[-1]] = value
    loaded = load_or_refuse(config)
    if loaded is not None:
        assert finite_numbers_only(loaded)


def typed_values(prop: dict) -> st.SearchStrategy:
    """Values of the type the schema asks for, bounds ignored: they reach the cross-key checks."""
    if "enum" in prop:
        return st.sampled_from(prop["enum"])
    types = prop.get("type", "string")
    types = types if isinstance(types, list) else [types]
    options = []
    for kind in types:
        if kind == "number":
            options.append(st.floats(-1e3, 1e3, allow_nan=False) | st.sampled_from([0.0, 1e-12, 1e300]))
        elif kind == "integer":
            options.append(st.integers(-3, 300))
        elif kind == "boolean":
            options.append(st.booleans())
        elif kind == "null":
            options.append(st.none())
        elif kind == "array":
            options.append(st.lists(typed_values(prop.get("items", {})), max_size=4))
        elif kind == "object":
            fields = {k: typed_values(v) for k, v in prop.get("properties", {}).items()}
            options.append(st.fixed_dictionaries({}, optional=fields))
        else:
            options.append(st.sampled_from(["", "x", "fg_", "small", "resources/model_grid.yaml", "Info.txt"]))
    return st.one_of(options)


def _property(path: tuple) -> dict:
    node = config_schema()
    for key in path:
        node = node["properties"][key]
    return node


TYPED_ENTRIES = st.sampled_from(KNOWN_KEYS).flatmap(
    lambda path: st.tuples(st.just(path), typed_values(_property(path)))
)


@FUZZ
@given(entries=st.lists(TYPED_ENTRIES, min_size=1, max_size=6))
def test_well_typed_values_for_known_keys_load_or_raise_config_error(entries):
    config: dict = {}
    for path, value in entries:
        node = config
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[path[-1]] = value
    load_or_refuse(config)


@FUZZ
@given(path=st.sampled_from(KNOWN_KEYS), value=st.sampled_from([math.nan, math.inf, -math.inf]))
def test_a_non_finite_number_is_refused_naming_its_key(path, value):
    try:
        load_config(nested(path, value), base=Path(__file__).parent)
    except ConfigError as error:
        assert f"config key '{'.'.join(path)}" in str(error)
    else:
        raise AssertionError(f"{'.'.join(path)} = {value} was accepted")
