"""Batches of images or ROIs: stable membership, manifests that record content, reuse of intact items."""

import random

import pandas as pd
import pytest

from calcsig.batch import MAX_BATCH_FACTOR, chunk, recipe, run_batch
from calcsig.integrity import recorded_digest
from calcsig.paths import atomic_path

IDS = [f"img{i:04d}" for i in range(400)]


def membership(batches):
    return {item: key for key, items in batches.items() for item in items}


def test_batches_cover_every_id_once_in_order_and_are_keyed_by_their_first_id():
    batches = chunk(IDS, 16)
    assert [i for items in batches.values() for i in items] == IDS
    assert all(key == items[0] for key, items in batches.items())
    assert max(len(b) for b in batches.values()) <= MAX_BATCH_FACTOR * 16
    # about `size` per batch on average
    assert 400 / 16 / 2 < len(batches) < 400 / 16 * 2


def test_size_one_gives_one_batch_per_id():
    assert chunk(IDS[:5], 1) == {i: [i] for i in IDS[:5]}


@pytest.mark.parametrize("seed", range(5))
def test_adding_one_id_changes_only_the_batch_that_takes_it(seed):
    added = f"img{random.Random(seed).randrange(400):04d}x"
    before = chunk(IDS, 16)
    after = chunk(sorted([*IDS, added]), 16)
    changed = {key for key in set(before) | set(after) if before.get(key) != after.get(key)}
    # the batch that takes it, or that batch split in two where the new ID starts a batch
    assert 1 <= len(changed) <= 2
    assert all(added in after.get(key, []) or key in before for key in changed)
    moved = [i for i in IDS if membership(before)[i] != membership(after)[i]]
    assert len(moved) <= MAX_BATCH_FACTOR * 16


def test_removing_one_id_changes_only_the_batch_that_held_it():
    before = chunk(IDS, 16)
    removed = IDS[123]
    after = chunk([i for i in IDS if i != removed], 16)
    changed = {key for key in set(before) | set(after) if before.get(key) != after.get(key)}
    assert 1 <= len(changed) <= 2
    assert any(removed in before.get(key, []) for key in changed)


def test_duplicate_ids_are_refused():
    with pytest.raises(ValueError, match="unique"):
        chunk(["a", "a"], 4)


class Stage:
    """A toy per-item stage writing one file per item, counting the items it computes."""

    def __init__(self, out_dir, setting=1):
        self.out_dir, self.setting, self.computed = out_dir, setting, []

    def files(self, item):
        return {"out": self.out_dir / f"{item['item_id']}.txt"}

    def work(self, item):
        self.computed.append(item["item_id"])
        with atomic_path(self.files(item)["out"]) as tmp:
            tmp.write_text(f"{item['item_id']} x {self.setting}\n")
        return {"n": len(item["item_id"])}

    def run(self, items, manifest):
        return run_batch(
            items,
            self.work,
            manifest,
            id_column="item_id",
            files=self.files,
            recipe_of=lambda item: recipe("toy", self.setting, item),
        )


def items(*names):
    return [{"item_id": n} for n in names]


def test_the_manifest_records_each_file_with_its_digest_and_the_items_recipe(tmp_path):
    stage = Stage(tmp_path)
    table = stage.run(items("a", "b"), tmp_path / "batches" / "a.tsv")
    on_disk = pd.read_csv(tmp_path / "batches" / "a.tsv", sep="\t", dtype=str)
    assert list(on_disk.columns) == ["item_id", "out", "out_sha256", "recipe", "n"]
    assert list(on_disk["out_sha256"]) == [recorded_digest(tmp_path / f"{n}.txt").sha256 for n in "ab"]
    assert list(table["recipe"]) == [recipe("toy", 1, {"item_id": n}) for n in "ab"]


def test_a_rerun_reuses_intact_items_and_recomputes_only_what_changed(tmp_path):
    manifest = tmp_path / "batches" / "a.tsv"
    Stage(tmp_path).run(items("a", "b", "c"), manifest)
    first = manifest.read_bytes()

    again = Stage(tmp_path)
    again.run(items("a", "b", "c"), manifest)
    assert again.computed == [] and manifest.read_bytes() == first

    (tmp_path / "b.txt").write_text("damaged\n")  # edited behind the workflow's back
    repaired = Stage(tmp_path)
    repaired.run(items("a", "b", "c"), manifest)
    assert repaired.computed == ["b"] and manifest.read_bytes() == first

    changed = Stage(tmp_path, setting=2)
    changed.run(items("a", "b", "c"), manifest)
    assert changed.computed == ["a", "b", "c"]


def test_a_new_batch_size_reuses_items_listed_by_the_old_batches(tmp_path):
    Stage(tmp_path).run(items("a", "b"), tmp_path / "batches" / "a.tsv")
    Stage(tmp_path).run(items("c", "d"), tmp_path / "batches" / "c.tsv")
    regrouped = Stage(tmp_path)
    regrouped.run(items("a", "b", "c", "d"), tmp_path / "batches" / "a.tsv")
    assert regrouped.computed == []


def test_a_failed_item_leaves_no_manifest_and_its_finished_neighbours_are_reused(tmp_path):
    manifest = tmp_path / "batches" / "a.tsv"

    class Failing(Stage):
        def work(self, item):
            if item["item_id"] == "c":
                raise RuntimeError("killed")
            return super().work(item)

    with pytest.raises(RuntimeError):
        Failing(tmp_path).run(items("a", "b", "c"), manifest)
    assert not manifest.exists()
    resumed = Stage(tmp_path)
    resumed.run(items("a", "b", "c"), manifest)
    assert resumed.computed == ["c"]
    assert not list((tmp_path / "batches").glob(".*.partial"))  # the journal goes once the manifest is written


def test_an_item_that_now_writes_nothing_leaves_no_stale_file_behind(tmp_path):
    manifest = tmp_path / "batches" / "a.tsv"
    Stage(tmp_path).run(items("a"), manifest)

    class Skipping(Stage):
        def work(self, item):  # e.g. the quality gate now skips it
            return {"n": 0}

    table = Skipping(tmp_path, setting=2).run(items("a"), manifest)
    assert not (tmp_path / "a.txt").exists()
    assert table.loc[0, "out"] == "" and table.loc[0, "out_sha256"] == ""
