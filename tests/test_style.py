"""The code base stays linted and formatted: ruff for Python, snakefmt for the workflow rules."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYTHON_TREES = ["src", "tests", "workflow", "benchmarks"]
SNAKEMAKE_FILES = ["Snakefile", "workflow/rules"]


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *command], cwd=REPO, capture_output=True, text=True)


@pytest.mark.parametrize(
    "command",
    [
        ("ruff", "check", *PYTHON_TREES),
        ("ruff", "format", "--check", *PYTHON_TREES),
        ("snakefmt", "--check", *SNAKEMAKE_FILES),
    ],
    ids=["ruff-check", "ruff-format", "snakefmt"],
)
def test_sources_pass_the_configured_linters(command):
    result = run(*command)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
