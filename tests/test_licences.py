"""calcsig is BSD-3-Clause: no runtime dependency may carry a GPL, LGPL or AGPL licence.

Runtime dependencies are pyproject's `dependencies` and the pip packages of
the per-stage conda environments (envs/*.yaml). Each one's licence is read
from its installed metadata: License-Expression, a one-line License field
and the trove classifiers. A License field of several lines is the full text
of the package's own and bundled licences (scipy's mentions the GPL of the
GCC runtime it ships under the runtime exception), not a declaration, so
only the classifiers speak for such a package.
"""

import importlib.metadata
import re
import tomllib
from email.message import Message
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GPL_FAMILY = re.compile(r"\b(A|L)?GPL|General Public License", re.IGNORECASE)
REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirement_name(requirement: str) -> str:
    return REQUIREMENT_NAME.match(requirement)[1]


def runtime_requirements() -> dict[str, list[str]]:
    """Each runtime requirement's name, with where it is required (pyproject.toml, envs/x.yaml)."""
    where: dict[str, list[str]] = {}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        where.setdefault(requirement_name(requirement), []).append("pyproject.toml")
    for env in sorted((ROOT / "envs").glob("*.yaml")):
        for entry in yaml.safe_load(env.read_text())["dependencies"]:
            if isinstance(entry, dict):
                for requirement in entry.get("pip", []):
                    where.setdefault(requirement_name(requirement), []).append(f"envs/{env.name}")
    return where


def gpl_declarations(metadata: Message) -> list[str]:
    """The licence declarations of a package's metadata that name the GPL family."""
    declared = [f"License-Expression: {metadata.get('License-Expression') or ''}"]
    license_field = (metadata.get("License") or "").strip()
    if license_field and "\n" not in license_field:
        declared.append(f"License: {license_field}")
    declared += [c for c in metadata.get_all("Classifier") or [] if c.startswith("License ::")]
    return [d for d in declared if GPL_FAMILY.search(d)]


def metadata_of(**fields) -> Message:
    message = Message()
    for key, values in fields.items():
        for value in values if isinstance(values, list) else [values]:
            message[key.replace("_", "-")] = value
    return message


def test_the_check_catches_a_gpl_package_and_passes_full_texts_that_merely_mention_the_gpl():
    # The fields of pylibjpeg-libjpeg 2.5.0, the GPLv3 decoder calcsig no longer uses.
    libjpeg = metadata_of(
        License="GPL V3.0",
        Classifier=[
            "License :: OSI Approved :: GNU General Public License v3 (GPLv3)",
            "License :: Other/Proprietary License",
        ],
    )
    assert gpl_declarations(libjpeg) == [
        "License: GPL V3.0",
        "License :: OSI Approved :: GNU General Public License v3 (GPLv3)",
    ]
    assert gpl_declarations(metadata_of(License_Expression="LGPL-2.1-or-later")) == [
        "License-Expression: LGPL-2.1-or-later"
    ]
    bundled_texts = (
        "Copyright (c) SciPy Developers.\n...\nName: libgfortran\nLicense: GPL-3.0-or-later WITH GCC-exception"
    )
    scipy_like = metadata_of(License=bundled_texts, Classifier="License :: OSI Approved :: BSD License")
    assert gpl_declarations(scipy_like) == []


@pytest.mark.parametrize("name", sorted(runtime_requirements()))
def test_no_runtime_dependency_is_gpl_licensed(name):
    try:
        metadata = importlib.metadata.metadata(name)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"{name} (required by {', '.join(runtime_requirements()[name])}) is not installed here")
    assert gpl_declarations(metadata) == [], (
        f"{name} {metadata['Version']} (required by {', '.join(runtime_requirements()[name])}) is GPL-family "
        "licensed; calcsig is BSD-3-Clause: find a permissively licensed replacement"
    )


def test_the_compressed_dicom_decoders_are_runtime_dependencies_and_the_gpl_one_is_not():
    required = runtime_requirements()
    for decoder in ("imagecodecs", "pylibjpeg", "pylibjpeg-openjpeg", "pylibjpeg-rle"):
        assert "pyproject.toml" in required[decoder]
    assert "pylibjpeg-libjpeg" not in required
