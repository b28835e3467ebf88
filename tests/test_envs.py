"""Each per-stage conda env lists exactly what its rules import, at the versions pyproject pins.

The imports are read from each rule's script and every calcsig module it
imports (calcsig.codedeps), so an env cannot drift from the code it runs.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml

from calcsig.codedeps import code_files
from calcsig.dicomio import DECODER_PACKAGES
from calcsig.ingest.stage import ADAPTERS

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
# Programs a rule's script runs: the report asks `snakemake --rulegraph` for the run's rule graph.
RUNS = {"report": {"snakemake"}}
RULE = re.compile(r"^(?:rule|checkpoint) (\w+):\n(.*?)(?=^(?:rule|checkpoint) |\Z)", re.M | re.S)
# Needed at run time without an import of their own: pandas reads and writes parquet through pyarrow;
# reading DICOM (pydicom, through calcsig.dicomio) decodes compressed syntaxes with the packages
# calcsig.dicomio.DECODER_PACKAGES names, imported by name when a file needs them.
IMPLIED = {
    "pandas": {"pyarrow"},
    "pydicom": {package for needs in DECODER_PACKAGES.values() for _, package in needs},
}


def rules() -> dict[str, tuple[str, str]]:
    """rule name -> (env file name, script file name), from workflow/rules/*.smk."""
    found = {}
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        for name, body in RULE.findall(smk.read_text()):
            env = re.search(r'conda:\s*\n\s*"[./]*envs/([\w.]+)"', body)
            script = re.search(r'script:\s*\n\s*"\.\./scripts/([\w.]+)"', body)
            if script:
                assert env, f"rule {name} has a script but no conda env"
                found[name] = (env.group(1), script.group(1))
    return found


def third_party_imports(files) -> set[str]:
    names = set()
    for path in files:
        for node in ast.walk(ast.parse(Path(path).read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("calcsig", "__future__")}


def distributions(modules: set[str]) -> set[str]:
    by_module = packages_distributions()
    missing = sorted(m for m in modules if m not in by_module)
    assert not missing, f"imported but not installed: {missing}"
    dists = {by_module[m][0].lower() for m in modules}
    for dist in list(dists):
        dists |= IMPLIED.get(dist, set())
    return dists


def required(script: str, rule: str) -> set[str]:
    # the corpus step imports its source's adapter by name at run time: its env must serve every source
    modules = [m.partition(":")[0] for m in ADAPTERS.values()] if rule == "corpus" else []
    files = [
        REPO / "workflow" / "scripts" / script,
        *code_files([REPO / "workflow" / "scripts" / script], SRC, modules),
    ]
    return distributions(third_party_imports(files)) | RUNS.get(rule, set())


def env_pins(env: str) -> dict[str, str]:
    spec = yaml.safe_load((REPO / "envs" / env).read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {line.split("==")[0].lower(): line.split("==")[1].split()[0] for line in pip}


def project_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {d.split("==")[0].lower(): d.split("==")[1] for d in project["dependencies"]}


RULES = rules()
ENVS = sorted({env for env, _ in RULES.values()})


@pytest.mark.parametrize("env", ENVS)
def test_each_env_lists_exactly_what_its_rules_import(env):
    needed = set().union(*(required(script, rule) for rule, (e, script) in RULES.items() if e == env))
    listed = set(env_pins(env))
    assert listed - needed == set(), f"{env} lists packages none of its rules imports"
    assert needed - listed == set(), f"{env} lacks packages its rules import"


@pytest.mark.parametrize("env", ENVS)
def test_env_pins_are_the_project_pins(env):
    pins = project_pins()
    assert {name: version for name, version in env_pins(env).items() if pins.get(name) != version} == {}


def test_every_runtime_dependency_is_imported_by_some_rule():
    used = set().union(*(required(script, rule) for rule, (_, script) in RULES.items()))
    # the workflow engine runs the rules, and --report needs pygments
    assert set(project_pins()) - used - {"snakemake", "pygments"} == set()
