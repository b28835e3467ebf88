"""Atomic writing: all or nothing, with the permissions of an ordinary file."""

import os

import pytest

from calcsig.paths import atomic_path


def test_a_successful_write_lands_at_the_target_with_umask_permissions(tmp_path):
    target = tmp_path / "out" / "table.tsv"
    with atomic_path(target) as tmp:
        tmp.write_text("a\tb\n")
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_text() == "a\tb\n"
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    # beside it, only the digest of what was written (calcsig.integrity)
    assert sorted(p.name for p in target.parent.iterdir()) == [".table.tsv.sha256", "table.tsv"]


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "table.tsv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []
