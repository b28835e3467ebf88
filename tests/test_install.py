"""calcsig installed from a wheel (`pip install .`, not editable) works outside the repository."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# run from a scratch directory, against the installed copy only: the default config validates
# (schemas), a shipped parameter file resolves, and a corpus table schema loads
USE_INSTALLED_COPY = """
import sys
import calcsig
from calcsig.config import load_config, resource_path
from calcsig.tables import table_schema
assert "site-packages" in calcsig.__file__ or sys.argv[1] in calcsig.__file__, calcsig.__file__
config = load_config({})
assert resource_path(config["features"]["radiomics_foreground"]).is_file()
assert resource_path(config["model"]["grid_file"]).is_file()
assert table_schema("images")["properties"]
print(calcsig.__file__)
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out), str(REPO)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return next(out.glob("calcsig-*.whl"))


def test_the_wheel_ships_the_schemas_and_parameter_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [p.relative_to(REPO / "src").as_posix() for p in (REPO / "src" / "calcsig").rglob("*.yaml")]
    assert shipped and set(shipped) <= names, sorted(set(shipped) - names)
    assert "calcsig/schemas/config.schema.yaml" in names and "calcsig/resources/model_grid.yaml" in names


def test_an_installed_copy_validates_a_config_and_finds_its_files_outside_the_repository(wheel, tmp_path):
    target = tmp_path / "site-packages"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    scratch = tmp_path / "elsewhere"
    scratch.mkdir()
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); exec({USE_INSTALLED_COPY!r})"]
        + [str(target)],
        cwd=scratch,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().startswith(str(target))
