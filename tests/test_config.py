"""Config validation: defaults from the schema, one clear line per problem naming the key."""

from pathlib import Path

import pytest
import yaml

from calcsig.config import load_config
from calcsig.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def schema(tmp_path):
    """A two-file schema: a top level that $refs a stage section, like config.schema.yaml."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "stage.schema.yaml").write_text(
        yaml.safe_dump(
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "sigma_mm": {"type": "number", "default": 0.1, "exclusiveMinimum": 0},
                    "scales": {"type": "array", "items": {"type": "number"}, "default": [1, 2]},
                },
            }
        )
    )
    top = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "seed": {"type": "integer", "default": 7},
            "data": {"type": ["string", "null"], "default": None, "x-existing-path": True},
            "stage": {"$ref": "config/stage.schema.yaml"},
        },
    }
    path = tmp_path / "config.schema.yaml"
    path.write_text(yaml.safe_dump(top))
    return path


def test_an_empty_config_is_completed_with_every_default(schema):
    assert load_config({}, schema_path=schema) == {
        "seed": 7,
        "data": None,
        "stage": {"sigma_mm": 0.1, "scales": [1, 2]},
    }


def test_given_values_win_over_defaults_and_siblings_keep_theirs(schema):
    config = load_config({"stage": {"sigma_mm": 0.2}}, schema_path=schema)
    assert config["stage"] == {"sigma_mm": 0.2, "scales": [1, 2]}


def test_a_wrong_type_names_the_dotted_key(schema):
    with pytest.raises(ConfigError) as error:
        load_config({"stage": {"sigma_mm": "wide"}}, schema_path=schema)
    assert str(error.value) == "config key 'stage.sigma_mm': 'wide' is not of type 'number'"


def test_an_unknown_key_is_named_with_the_keys_allowed_there(schema):
    with pytest.raises(ConfigError) as error:
        load_config({"stage": {"sigma": 0.2}}, schema_path=schema)
    assert str(error.value) == "config key 'stage.sigma': unknown key (allowed here: scales, sigma_mm)"


def test_an_unknown_top_level_key_is_named(schema):
    with pytest.raises(ConfigError, match=r"config key 'sead': unknown key"):
        load_config({"sead": 1}, schema_path=schema)


def test_a_missing_file_is_named_with_its_key(schema, tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config({"data": "nowhere/Info.txt"}, schema_path=schema, base=tmp_path)
    assert str(error.value) == "config key 'data': file or folder 'nowhere/Info.txt' does not exist"


def test_an_existing_file_passes(schema, tmp_path):
    (tmp_path / "Info.txt").write_text("x")
    assert load_config({"data": "Info.txt"}, schema_path=schema, base=tmp_path)["data"] == "Info.txt"


def test_the_shipped_config_is_valid_and_every_key_is_documented():
    with open(REPO / "config.yaml") as fh:
        config = load_config(yaml.safe_load(fh), base=REPO)
    assert config["corpus"]["source"] == "synthetic"
    from calcsig.config import config_schema

    def undocumented(node, where):
        for key, prop in node.get("properties", {}).items():
            if "description" not in prop:
                yield f"{where}{key}"
            for branch in [prop] + prop.get("anyOf", []):
                if "properties" in branch:
                    yield from undocumented(branch, f"{where}{key}.")

    assert list(undocumented(config_schema(), "")) == []


def test_a_real_source_without_a_path_is_refused():
    with pytest.raises(ConfigError, match=r"config key 'corpus.path': required when corpus.source is 'mini_mias'"):
        load_config({"corpus": {"source": "mini_mias"}})
