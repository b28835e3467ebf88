"""Reruns are minimal: changing one config key plans exactly the rules docs/reruns.md lists for it.

Every leaf key of the config schema is changed in turn on a finished tiny run,
and the rules `snakemake -n` plans are compared with the documented table.
`python tests/test_reruns.py <finished workdir>` prints the observed table.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from config_changes import changed_config, leaf_keys
from test_workflow import REPO, TINY, jobs_planned

from calcsig.config import load_config
from calcsig.paths import RESOURCE_DIR

pytestmark = pytest.mark.workflow

DOC = REPO / "docs" / "reruns.md"
TABLE_ROW = re.compile(r"^\|\s*`(?P<key>[^`]+)`\s*\|\s*(?P<rules>[^|]*)\|")


def documented() -> dict[str, set[str]]:
    """docs/reruns.md's table: key -> rules rerun (a dash for none)."""
    out = {}
    for line in DOC.read_text().splitlines():
        match = TABLE_ROW.match(line)
        if match:
            rules = match["rules"].strip()
            out[match["key"]] = set() if rules in ("-", "") else {r.strip() for r in rules.split(",")}
    return out


def prepare_support_files(workdir: Path) -> None:
    """Files some changed values point at (a copy of a shipped resource, a manifest, a split file)."""
    shutil.copy(RESOURCE_DIR / "model_grid.yaml", workdir / "grid_copy.yaml")
    shutil.copy(RESOURCE_DIR / "radiomics_foreground.yaml", workdir / "foreground_copy.yaml")
    shutil.copy(RESOURCE_DIR / "radiomics_background.yaml", workdir / "background_copy.yaml")
    (workdir / "manifest.csv").write_text("image_id,subject_id,image_path,label\n")
    (workdir / "splits.tsv").write_text("subject_id\tsplit\n")
    (workdir / "cbis_images").mkdir(exist_ok=True)
    (workdir / "labels.csv").write_text("file,label\n")


def dry_run(workdir: Path, *configfiles: str) -> set[str]:
    """The rules `snakemake -n` plans in `workdir`, run in this process.

    Exactly the command line a user types (profile included), through Snakemake's
    own command-line entry point; in-process because 150 dry runs as separate
    processes would spend most of their time importing.
    """
    from snakemake.cli import args_to_api, parse_args

    argv = ["-s", str(REPO / "Snakefile"), "--cores", "2", "--configfile", *configfiles, "-n"]
    here, output = Path.cwd(), io.StringIO()
    os.chdir(workdir)
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            parser, args = parse_args(argv)
            ok = args_to_api(args, parser)
    except SystemExit as exit:
        ok = exit.code in (0, None)
    finally:
        os.chdir(here)
    if not ok:
        raise AssertionError(f"snakemake {' '.join(argv)} failed:\n{output.getvalue()[-4000:]}")
    return jobs_planned(output.getvalue())


def change_file(workdir: Path, key: str, config: dict) -> str:
    """A partial config in `workdir` that changes only `key`; its name."""
    name = f"change_{key.replace('.', '_')}.yaml"
    (workdir / name).write_text(yaml.safe_dump(changed_config(key, config)))
    return name


def observed_table(workdir: Path) -> dict[str, set[str]]:
    """key -> rules planned after changing it."""
    prepare_support_files(workdir)
    config = load_config(_merged(yaml.safe_load((REPO / "config.yaml").read_text()), TINY))
    return {key: dry_run(workdir, "tiny.yaml", change_file(workdir, key, config)) for key in leaf_keys()}


def _merged(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture(scope="module")
def observed(finished_tiny_run):
    assert dry_run(finished_tiny_run, "tiny.yaml") == set(), "a finished run must have nothing left to do"
    return observed_table(finished_tiny_run)


def test_every_config_key_is_documented(observed):
    assert set(documented()) == set(observed), "docs/reruns.md must list every leaf key of the config schema"


def test_changing_each_key_reruns_exactly_the_documented_rules(observed):
    doc = documented()
    wrong = {key: (sorted(doc.get(key, ())), sorted(rules)) for key, rules in observed.items() if doc.get(key) != rules}
    assert not wrong, "key: (documented, planned)\n" + "\n".join(f"{k}: {v}" for k, v in wrong.items())


if __name__ == "__main__":
    for key, rules in observed_table(Path(sys.argv[1])).items():
        print(f"| `{key}` | {', '.join(sorted(rules)) or '-'} |")
