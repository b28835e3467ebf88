"""Results that changed after they were written are found and removed, so the workflow rebuilds them."""

import os
from pathlib import Path

import pandas as pd

from calcsig.integrity import (
    Digest,
    broken_manifest_entries,
    interrupted_outputs,
    recorded_digest,
    sidecar_path,
    verify_results,
)
from calcsig.paths import atomic_path


def write(path, text):
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def test_every_atomic_write_records_the_digest_and_size_of_what_it_wrote(tmp_path):
    target = write(tmp_path / "r" / "table.tsv", "a\tb\n1\t2\n")
    assert recorded_digest(target) == Digest.of(target)
    assert recorded_digest(target).size == len("a\tb\n1\t2\n")


def test_intact_results_are_left_alone(tmp_path):
    write(tmp_path / "results" / "a.tsv", "x\n")
    write(tmp_path / "results" / "sub" / "b.json", "{}\n")
    assert verify_results(tmp_path / "results") == []
    assert (tmp_path / "results" / "a.tsv").exists() and (tmp_path / "results" / "sub" / "b.json").exists()


def test_a_truncated_result_is_removed_with_a_message_naming_it(tmp_path):
    target = write(tmp_path / "results" / "objects.parquet", "0123456789" * 100)
    with open(target, "r+") as fh:
        fh.truncate(10)
    messages = verify_results(tmp_path / "results")
    assert len(messages) == 1 and str(target) in messages[0] and "truncated or edited" in messages[0]
    assert not target.exists() and not sidecar_path(target).exists()


def test_a_result_edited_to_the_same_size_is_found_by_its_content(tmp_path):
    target = write(tmp_path / "results" / "rois.tsv", "label\nbenign\n")
    stat = target.stat()
    target.write_text("label\nmalign\n")
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000))  # written later than its digest
    assert len(verify_results(tmp_path / "results")) == 1 and not target.exists()


def test_a_sidecar_without_its_file_is_dropped_silently(tmp_path):
    target = write(tmp_path / "results" / "gone.tsv", "x\n")
    target.unlink()
    assert verify_results(tmp_path / "results") == []
    assert not sidecar_path(target).exists()


def test_a_manifest_listing_a_missing_or_replaced_file_is_removed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    item = write(tmp_path / "results" / "masks" / "r1.npz", "masks of r1")
    other = write(tmp_path / "results" / "masks" / "r2.npz", "masks of r2")
    manifest = tmp_path / "results" / "masks" / "batches" / "r1.tsv"
    rows = [
        {"roi_id": r, "npz": str(p), "npz_sha256": recorded_digest(p).sha256} for r, p in (("r1", item), ("r2", other))
    ]
    with atomic_path(manifest) as tmp:
        pd.DataFrame(rows).to_csv(tmp, sep="\t", index=False)
    assert broken_manifest_entries(manifest) == []

    write(other, "masks of r2 made with other settings")  # a newer valid file the manifest does not describe
    assert broken_manifest_entries(manifest) == [str(other)]
    item.unlink()
    messages = verify_results("results", ("results/masks/batches/*.tsv",))
    assert len(messages) == 1 and "r1.tsv" in messages[0] and "2 listed file(s)" in messages[0]
    assert not manifest.exists()


def test_temporary_files_of_a_killed_writer_are_cleared(tmp_path):
    leftover = tmp_path / "results" / ".objects.parquet.k2j4x.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("half")
    assert verify_results(tmp_path / "results") == []
    assert not leftover.exists()


def snakemake_marks_incomplete(workdir, path):
    """An incomplete mark as Snakemake's file persistence writes one (long names split into '@' folders)."""
    from base64 import urlsafe_b64encode

    encoded = urlsafe_b64encode(path.encode()).decode()
    parts = [encoded[i : i + 99] for i in range(0, len(encoded), 99)]
    marker = workdir / ".snakemake" / "incomplete" / Path(*["@" + p for p in parts[:-1]], parts[-1])
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text('{"external_jobid": null}')


def test_outputs_of_jobs_a_killed_run_never_saw_finish_are_removed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    short = write(tmp_path / "results" / "segment" / "batches" / "b1.tsv", "image_id\n")
    long_name = "results/model/" + "x" * 150 + "/predictions.parquet"
    long = write(tmp_path / long_name, "p")
    intact = write(tmp_path / "results" / "segment" / "batches" / "b2.tsv", "image_id\n")
    snakemake_marks_incomplete(tmp_path, "results/segment/batches/b1.tsv")
    snakemake_marks_incomplete(tmp_path, long_name)
    assert interrupted_outputs() == sorted([Path(long_name), Path("results/segment/batches/b1.tsv")])
    messages = verify_results("results")
    assert len(messages) == 2 and all("killed" in m for m in messages)
    assert not short.exists() and not long.exists() and intact.exists()
