"""Coarse pixel spacing: images coarser than the working spacing are detected on an upsampled copy."""

import logging

import numpy as np
import pytest
from PIL import Image

from calcsig.segment.candidates import (
    detect_candidates,
    labels_to_native,
    spacing_plan,
    upsample,
    upsampling_factor,
)
from calcsig.segment.evaluate import candidate_pairs, greedy_match
from calcsig.segment.store import read_candidates, segment_image_file
from calcsig.synthetic.calcifications import design_cluster, render_cluster


def test_the_upsampling_factor_is_the_smallest_integer_reaching_the_working_spacing():
    assert upsampling_factor(0.2, 0.1) == 2
    assert upsampling_factor(0.25, 0.1) == 3  # 0.083 mm: the first integer factor at or below 0.1
    assert upsampling_factor(0.1, 0.1) == 1 and upsampling_factor(0.07, 0.1) == 1
    assert upsampling_factor(0.2, None) == 1
    plan = spacing_plan(0.2, 0.0826, 0.1)
    assert plan["resampled"] and plan["working_spacing_mm"] == pytest.approx(0.1)
    assert plan["sigma_min_px"] == pytest.approx(0.826) and plan["sigma_min_px_native"] == pytest.approx(0.413)
    assert not spacing_plan(0.07, 0.0826, 0.1)["resampled"]


def test_upsampling_keeps_each_pixel_centred_on_its_block_and_the_mean_level():
    image = np.zeros((20, 20), np.float32)
    image[9:11, 9:11] = 1.0
    fine = upsample(image, 2)
    assert fine.shape == (40, 40)
    assert np.unravel_index(np.argmax(fine), fine.shape) in {(18, 18), (18, 21), (21, 18), (21, 21), (19, 19)}
    assert fine[18:22, 18:22].mean() > 0.8 and abs(fine.mean() - image.mean()) < 1e-3
    np.testing.assert_array_equal(upsample(image, 1), image)


def test_labels_map_back_block_by_block_and_keep_one_pixel_objects():
    fine = np.zeros((8, 8), np.int32)
    fine[0, 0] = 1  # one fine pixel: keeps its coarse pixel
    fine[4:8, 4:8] = 2
    fine[5, 5] = 3  # wholly inside object 2's blocks, and a higher label: takes that pixel
    fine[2, 3] = 4  # shares a block with nothing else
    native, kept = labels_to_native(fine, 2, (4, 4))
    assert list(kept) == [True, True, True, True]
    assert native[0, 0] == 1 and native[1, 1] == 4 and native[2, 2] == 3 and native[3, 3] == 2
    fine[4:6, 4:6] = 3  # object 3 fills one block, object 2 the other three
    fine[2:4, 2:4] = 5
    fine[3, 3] = 4  # 4 shares its only block with 5, which is higher: 4 vanishes
    native, kept = labels_to_native(fine, 2, (4, 4))
    assert list(kept) == [True, True, True, False, True]
    assert set(np.unique(native)) == {0, 1, 2, 3, 4}  # relabelled 1..4, order kept


def coarse_film(seed, spacing=0.2, shape=(200, 160)):
    """A 0.2 mm film-like image: smooth tissue, 8-bit, noise, with two small calcification clusters."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = 90 + 40 * np.exp(-((yy - 100) ** 2 + (xx - 60) ** 2) / 2 / 70**2)
    image[xx > 140] = 2  # air on the right
    truth = np.zeros(shape, np.int32)
    for centre in ((70.0, 60.0), (140.0, 70.0)):
        design = design_cluster("benign", rng, max_radius_mm=4.0)
        drawn = render_cluster(design, centre, shape, spacing, 0.06)
        r0, r1, c0, c1 = drawn.box
        image[r0:r1, c0:c1] += 60 * drawn.attenuation
        labels = drawn.labels.astype(np.int32)
        truth[r0:r1, c0:c1] = np.where(labels > 0, labels + truth.max(), truth[r0:r1, c0:c1])
    image = image + rng.normal(0, 1.5, shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), truth


def test_a_coarse_film_is_detected_upsampled_and_returned_on_its_own_grid(tmp_path, caplog):
    image, truth = coarse_film(3)
    cand = detect_candidates(image, 0.2, {"working_spacing_mm": 0.1})
    assert cand.upsampling_factor == 2 and cand.labels.shape == image.shape
    n = int(cand.labels.max())
    assert len(cand.features) == len(cand.area_px) == len(cand.hdog.dog_response) == n
    np.testing.assert_array_equal(cand.area_px, np.bincount(cand.labels.ravel(), minlength=n + 1)[1:])
    # the stored table and label image agree, and the job's log says what was done
    path = tmp_path / "film.png"
    Image.fromarray(image).save(path)
    with caplog.at_level(logging.INFO, logger="calcsig.segment.store"):
        segment_image_file(path, {"working_spacing_mm": 0.1}, tmp_path / "f.npz", tmp_path / "f.tsv", 0.2)
    assert "upsampled x2 for detection (working spacing 0.1 mm)" in caplog.text
    table = read_candidates(tmp_path / "f.tsv")
    assert len(table) == n and table["scale_mm"].between(0.0826 - 1e-6, 0.0826 * 1.6**3 + 1e-6).all()


def test_upsampling_finds_more_of_the_small_calcifications_of_coarse_films():
    found = {None: 0, 0.1: 0}
    total = 0
    for seed in range(3):
        image, truth = coarse_film(seed)
        total += int(truth.max())
        for working in found:
            cand = detect_candidates(image, 0.2, {"working_spacing_mm": working})
            matched = greedy_match(cand.hdog.dog_response, candidate_pairs(cand.labels, truth, 0.2))
            found[working] += int((matched > 0).sum())
    assert found[0.1] >= found[None] + 5
    assert found[0.1] >= 0.9 * total
