"""Config files: a broken file is named with its line, files merge as Snakemake merges them, and a CLI checks them."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from calcsig.config import load_config, load_workflow_config, main, merge_configs, read_config_file
from calcsig.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as error:
        read_config_file(path)
    return str(error.value)


def test_a_missing_config_file_is_named(tmp_path):
    assert error_of(tmp_path / "my.yaml") == f"config file {tmp_path / 'my.yaml'}: does not exist"
    assert error_of(tmp_path) == f"config file {tmp_path}: is not a file"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_an_empty_config_file_says_what_a_config_file_holds(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    assert error_of(path) == (
        f"config file {path}: is empty (or only comments); a config file holds keys at top level, "
        "e.g. 'corpus:' with its settings below"
    )


def test_a_config_file_that_is_not_a_mapping_is_refused(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- corpus\n- segment\n")
    assert "holds a list at top level" in error_of(path)


def test_a_yaml_syntax_error_names_file_line_and_column(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("corpus:\n  source: synthetic\nsegment:\n  sigma_min_mm: [0.1\n")
    assert error_of(path) == (
        f"config file {path}, line 5, column 1: not valid YAML: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence that starts on line 4, column 17)"
    )


def test_a_tab_in_the_indentation_names_its_line(tmp_path):
    path = tmp_path / "tab.yaml"
    path.write_text("segment:\n\tsigma_min_mm: 0.1\n")
    assert error_of(path).startswith(f"config file {path}, line 2, column 1: not valid YAML: found character '\\t'")


def test_a_key_given_twice_is_refused_instead_of_silently_taking_the_last(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("seed: 1\nsegment:\n  sigma_min_mm: 0.1\n  sigma_min_mm: 0.2\n")
    assert error_of(path) == (
        f"config file {path}, line 4, column 3: key 'sigma_min_mm' is given twice (first on line 3); give each key once"
    )


def test_a_binary_file_is_named_as_not_text(tmp_path):
    path = tmp_path / "image.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    assert error_of(path) == f"config file {path}: is not UTF-8 text (byte 0)"


def test_json_is_read_too(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"seed": 3, "segment": {"sigma_min_mm": 0.1}}')
    assert read_config_file(path) == {"seed": 3, "segment": {"sigma_min_mm": 0.1}}


def test_overrides_merge_mapping_by_mapping_and_replace_lists():
    base = {"seed": 1, "segment": {"sigma_min_mm": 0.1, "sigma_max_mm": 0.2}, "partition": {"covariates": ["a", "b"]}}
    merged = merge_configs(base, {"segment": {"sigma_max_mm": 0.3}, "partition": {"covariates": ["c"]}}, {"seed": 2})
    assert merged == {
        "seed": 2,
        "segment": {"sigma_min_mm": 0.1, "sigma_max_mm": 0.3},
        "partition": {"covariates": ["c"]},
    }
    assert base["segment"]["sigma_max_mm"] == 0.2


def test_the_workflow_config_is_the_file_with_the_command_line_merged_over_it(tmp_path):
    (tmp_path / "config.yaml").write_text((REPO / "config.yaml").read_text())
    config = load_workflow_config({"segment": {"sigma_max_mm": 0.3}}, base=tmp_path)
    assert config["segment"]["sigma_max_mm"] == 0.3
    assert config["segment"]["sigma_min_mm"] == 0.0826
    assert config["seed"] == 20261122


def test_the_workflow_config_file_may_be_absent_only_when_the_command_line_gives_one(tmp_path):
    assert load_workflow_config({"seed": 5}, base=tmp_path)["seed"] == 5
    with pytest.raises(ConfigError, match="config.yaml: does not exist"):
        load_workflow_config({}, base=tmp_path)


def test_a_broken_workflow_config_file_is_named_with_its_line(tmp_path):
    (tmp_path / "config.yaml").write_text("seed: 1\nseed: 2\n")
    with pytest.raises(ConfigError, match=r"config.yaml, line 2, column 1: key 'seed' is given twice"):
        load_workflow_config({"segment": {"sigma_max_mm": 0.3}}, base=tmp_path)


@pytest.mark.parametrize("value", [[1, 2], "corpus", 3])
def test_a_config_that_is_not_a_mapping_is_refused(value):
    with pytest.raises(ConfigError, match="config: expected keys at top level"):
        load_config(value)


def test_the_command_line_check_reports_every_problem_and_its_exit_status(tmp_path, capsys):
    (tmp_path / "mine.yaml").write_text("segment:\n  sigma_min_mm: 0.5\nmodel:\n  grid: huge\n")
    assert main([str(REPO / "config.yaml"), str(tmp_path / "mine.yaml")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("calcsig: invalid configuration:\n")
    assert "'segment.sigma_min_mm' (0.5) and 'segment.sigma_max_mm' (0.217)" in err
    assert "config key 'model.grid'" in err
    assert main([str(REPO / "config.yaml")]) == 0
    assert "configuration valid" in capsys.readouterr().out


def test_the_command_line_check_runs_as_a_module(tmp_path):
    (tmp_path / "broken.yaml").write_text("model: {grid: small\n")
    result = subprocess.run(
        [sys.executable, "-m", "calcsig.config", str(REPO / "config.yaml"), str(tmp_path / "broken.yaml")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 1
    assert f"config file {tmp_path / 'broken.yaml'}, line 2, column 1: not valid YAML" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_shipped_config_file_reads_as_yaml_does():
    assert read_config_file(REPO / "config.yaml") == yaml.safe_load((REPO / "config.yaml").read_text())
