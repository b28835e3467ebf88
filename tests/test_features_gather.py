"""Gathering the per-ROI feature tables: one objects table and one ROI table, whatever the threads."""

import numpy as np
import pandas as pd
import pytest

from calcsig.features.gather import gather_feature_tables, read_tables


def write(path, frame):
    frame.to_parquet(path, index=False)
    return path


def roi_tables(tmp_path, n=7):
    """n ROIs, written out of ID order; the third has no object (a header-only objects table)."""
    objects, rois = [], []
    for k in reversed(range(n)):
        count = 0 if k == 2 else k % 3 + 1
        frame = pd.DataFrame(
            {
                "roi_id": [f"r{k}"] * count,
                "object_id": np.arange(count, dtype=np.int64),
                "area_mm2": np.linspace(0.1, 0.3, count) + k,
            }
        )
        objects.append(write(tmp_path / f"r{k}.objects.parquet", frame))
        rois.append(write(tmp_path / f"r{k}.roi.parquet", pd.DataFrame({"roi_id": [f"r{k}"], "n_objects": [count]})))
    return objects, rois


def test_the_gathered_tables_are_sorted_keep_every_roi_and_do_not_depend_on_the_threads(tmp_path):
    objects, rois = roi_tables(tmp_path)
    one = gather_feature_tables(objects, rois, tmp_path / "o1.parquet", tmp_path / "r1.parquet", workers=1)
    three = gather_feature_tables(objects, rois, tmp_path / "o3.parquet", tmp_path / "r3.parquet", workers=3)
    assert (tmp_path / "o1.parquet").read_bytes() == (tmp_path / "o3.parquet").read_bytes()
    assert (tmp_path / "r1.parquet").read_bytes() == (tmp_path / "r3.parquet").read_bytes()
    gathered_objects, gathered_rois = one
    pd.testing.assert_frame_equal(three[0], gathered_objects)
    # the same table pandas would make of the files one by one
    expected = pd.concat([pd.read_parquet(p) for p in objects if len(pd.read_parquet(p))], ignore_index=True)
    expected = expected.sort_values(["roi_id", "object_id"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(gathered_objects, expected)
    assert list(gathered_rois["roi_id"]) == [f"r{k}" for k in range(7)]  # r2, without objects, kept
    assert "r2" not in set(gathered_objects["roi_id"])


def test_only_header_only_tables_give_an_empty_table_with_their_columns(tmp_path):
    empty = pd.DataFrame({"roi_id": pd.Series([], dtype=str), "object_id": pd.Series([], dtype=np.int64)})
    paths = [write(tmp_path / f"e{k}.parquet", empty) for k in range(2)]
    table = read_tables(paths, workers=2)
    assert len(table) == 0 and list(table.columns) == ["roi_id", "object_id"]


def test_an_integer_column_beside_a_float_one_widens_to_float_as_pandas_does(tmp_path):
    first = write(tmp_path / "a.parquet", pd.DataFrame({"roi_id": ["a"], "value": [1]}))
    second = write(tmp_path / "b.parquet", pd.DataFrame({"roi_id": ["b"], "value": [0.5]}))
    table = read_tables([first, second])
    assert table["value"].dtype == np.float64 and list(table["value"]) == [1.0, 0.5]


def test_a_roi_gathered_twice_is_refused_naming_it(tmp_path):
    objects, rois = roi_tables(tmp_path, n=2)
    with pytest.raises(ValueError, match="r1"):
        gather_feature_tables(objects, rois + rois[:1], tmp_path / "o.parquet", tmp_path / "r.parquet", workers=2)
