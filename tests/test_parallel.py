"""Whole-corpus jobs spread their images over worker processes without changing a byte."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from calcsig.parallel import ordered_map
from calcsig.partition.hashing import image_hashes
from calcsig.segment.candidates import FEATURE_NAMES
from calcsig.segment.operating_point import fit_with_out_of_fold_scores, subject_folds
from calcsig.segment.selector import CandidateSelector, TrainingImage
from calcsig.synthetic import generate_corpus, resolve_settings


def _square_and_pid(x):
    time.sleep(0.02)  # long enough for every worker to take items
    return x * x, os.getpid()


def test_results_come_back_in_the_order_of_the_items_from_several_processes():
    out = ordered_map(_square_and_pid, range(20), workers=3)
    assert [square for square, _ in out] == [x * x for x in range(20)]
    assert len({pid for _, pid in out}) > 1
    assert os.getpid() not in {pid for _, pid in out}


def test_one_worker_runs_in_this_process():
    assert {pid for _, pid in ordered_map(_square_and_pid, range(4), workers=1)} == {os.getpid()}


def _fail_on_three(x):
    if x == 3:
        raise ValueError(f"item {x} is bad")
    return x


def test_an_error_in_a_worker_is_raised_here_with_its_message():
    with pytest.raises(ValueError, match="item 3 is bad"):
        ordered_map(_fail_on_three, range(8), workers=2)


def test_a_closure_needs_no_pickling():
    offset = np.arange(3)
    assert ordered_map(lambda x: (offset + x).tolist(), [0, 10], workers=2) == [[0, 1, 2], [10, 11, 12]]


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    settings = resolve_settings({"n_subjects": 6, "image_height_mm": 20.0, "image_width_mm": 16.0}, seed=3)
    return out, generate_corpus(settings, out, workers=1)


def test_the_synthetic_corpus_is_the_same_rendered_by_several_processes(small_corpus, tmp_path):
    serial_dir, serial = small_corpus
    settings = resolve_settings({"n_subjects": 6, "image_height_mm": 20.0, "image_width_mm": 16.0}, seed=3)
    parallel = generate_corpus(settings, tmp_path, workers=2)
    for kind in ("images", "rois", "subjects"):
        a = serial[kind].replace(str(serial_dir), "", regex=True)
        b = parallel[kind].replace(str(tmp_path), "", regex=True)
        assert a.equals(b), kind
    for path in sorted((serial_dir / "synthetic").rglob("*.png")):
        assert path.read_bytes() == (tmp_path / path.relative_to(serial_dir)).read_bytes(), path.name


def test_image_hashes_do_not_depend_on_the_workers(small_corpus):
    _, corpus = small_corpus
    one, unreadable_one = image_hashes(corpus["images"], 16, workers=1)
    two, unreadable_two = image_hashes(corpus["images"], 16, workers=2)
    assert list(one.index) == list(two.index)
    assert list(one["pixel_hash"]) == list(two["pixel_hash"])
    assert all(np.array_equal(a, b) for a, b in zip(one["phash"], two["phash"]))
    assert unreadable_one == unreadable_two == []


def test_the_selector_and_its_out_of_fold_scores_do_not_depend_on_the_workers():
    rng = np.random.default_rng(0)
    images = []
    for k in range(12):
        y = (rng.random(80) < 0.25).astype(int)
        features = rng.normal(size=(80, len(FEATURE_NAMES))) + y[:, None] * 0.8
        images.append(
            TrainingImage(
                image_id=f"im{k}",
                subject_id=f"s{k // 2}",
                features=features,
                y=y,
                centroids_mm=np.zeros((80, 2)),
                n_truth=int(y.sum()),
            )
        )
    folds = subject_folds([im.subject_id for im in images], [True] * len(images), 3, seed=1)

    def fit(part):
        X = np.concatenate([im.features for im in part])
        return CandidateSelector(max_iter=20).fit(X, np.concatenate([im.y for im in part]))

    serial, serial_scores = fit_with_out_of_fold_scores(images, folds, fit, workers=1)
    parallel, parallel_scores = fit_with_out_of_fold_scores(images, folds, fit, workers=3)
    probe = np.concatenate([im.features for im in images])
    assert np.array_equal(serial.score_candidates(probe), parallel.score_candidates(probe))
    assert all(np.array_equal(a, b) for a, b in zip(serial_scores, parallel_scores))
    assert all(s is not None for s in serial_scores)


def test_workers_end_even_when_the_parent_ignores_sigterm():
    """Snakemake's scheduler leaves a SIGTERM handler in any process that ran a workflow in-process,
    and a handler that does not exit (here: one that blocks) must not reach the forked workers, or
    the pool's shutdown waits for them forever."""
    script = (
        "import signal, time\n"
        "from calcsig.parallel import ordered_map\n"
        "signal.signal(signal.SIGTERM, lambda *_: time.sleep(3600))\n"
        "print(ordered_map(abs, range(-5, 5), workers=2))\n"
        "print(ordered_map(abs, [-1, -2], workers=2))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[5, 4, 3, 2, 1, 0, 1, 2, 3, 4]", "[1, 2]"]


def test_a_failing_item_ends_its_workers_when_the_parent_ignores_sigterm():
    script = (
        "import signal, time\n"
        "from calcsig.parallel import ordered_map\n"
        "signal.signal(signal.SIGTERM, lambda *_: time.sleep(3600))\n"
        "def fail_on_three(x):\n"
        "    if x == 3:\n"
        "        raise ValueError('item 3 is bad')\n"
        "    return x\n"
        "try:\n"
        "    ordered_map(fail_on_three, range(8), workers=2)\n"
        "except ValueError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "item 3 is bad"
