"""Shared fixtures: where the real development data lives, and how to skip without it."""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` beside the project; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real development data not found at {SHARED_DATA} (a fresh clone has no ../shared)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def finished_tiny_run(tmp_path_factory) -> Path:
    """A working directory where the whole workflow has run on the tiny config (tests must not change it)."""
    from test_workflow import TINY, deploy, snakemake

    workdir = deploy(tmp_path_factory.mktemp("tiny") / "run", TINY)
    snakemake(workdir, "--configfile", "tiny.yaml")
    return workdir


@pytest.fixture(scope="session")
def mini_mias_run(tmp_path_factory, shared_data) -> Path:
    """A working directory where the whole workflow has run on the mini-MIAS films with README's config
    (the tiny config's partition and model settings, for time); tests must not change it."""
    from test_workflow import TINY, deploy, snakemake

    overrides = {
        "corpus": {"source": "mini_mias", "path": str(shared_data / "mini-mias-dev")},
        "qc": {"on_bad_image": "skip"},
        **{section: TINY[section] for section in ("partition", "model")},
    }
    workdir = deploy(tmp_path_factory.mktemp("mini_mias") / "run", overrides)
    snakemake(workdir, "--configfile", "tiny.yaml")
    return workdir


@pytest.fixture(scope="session")
def micro_corpus(tmp_path_factory) -> dict:
    """The micro synthetic corpus (tables, images, truth masks) in a folder of its own, to build sources from."""
    from micro_sources import generate_micro_corpus

    return generate_micro_corpus(tmp_path_factory.mktemp("micro_corpus"))
