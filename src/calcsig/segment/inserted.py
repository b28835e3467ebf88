"""Normal films with inserted lesions on disk: insert clusters, detect candidates, store both.

`insert_lesions_file` inserts simulated clusters into one normal film
(`calcsig.segment.insertion`) and segments the result exactly as the `segment`
stage segments any image, storing the candidates with the inserted truth
(`results/segment/inserted/{image_id}.npz` / `.tsv`). The training films'
copies can train the selector (`calcsig.segment.selector`); the held-out
films' copies are evaluated (`calcsig.segment.insertion_evaluation`). This
module imports neither, so a change to them never reruns the detection here.
"""

from __future__ import annotations

import numpy as np

from calcsig.segment.breast import breast_mask
from calcsig.segment.insertion import film_rng, insert_clusters
from calcsig.segment.params import CANDIDATE_KEYS, INSERTION_KEYS, segment_params
from calcsig.segment.store import image_spacing, segment_image, write_segmentation


def inserted_film(image_path, image_id: str, pixel_spacing_mm, params: dict, seed: int):
    """The film with clusters inserted: (pixels, spacing, truth, clusters); deterministic per seed and image.

    params : the insertion keys and `skin_margin_mm` / `border_margin_mm` (the breast the clusters go in).
    """
    from calcsig.imageio import read_image

    data = read_image(image_path)
    spacing = image_spacing(data.pixel_spacing_mm, pixel_spacing_mm, image_path)
    breast = breast_mask(data.pixels, spacing, params["skin_margin_mm"], params["border_margin_mm"])
    pixels, truth, clusters = insert_clusters(
        data.pixels,
        spacing,
        breast,
        film_rng(seed, image_id),
        params["insertion_clusters_per_image"],
        tuple(params["insertion_contrast_snr"]),
        params["insertion_psf_sigma_mm"],
        params["insertion_max_radius_mm"],
    )
    return pixels, spacing, truth, clusters


def insert_lesions_file(
    image_path, image_id: str, pixel_spacing_mm: float | None, params: dict | None, seed: int, out_npz, out_tsv
) -> dict:
    """Insert clusters into one normal film, detect its candidates, and store both.

    params : `segment` keys of `INSERTION_KEYS` (the insertion and the detection's);
    seed : the top-level seed (the film's stream also follows its ID).
    out_npz : the segment npz arrays plus `truth` (int32 labels of the inserted
    calcifications) and per cluster `cluster_centre_yx_px`, `cluster_radius_mm`,
    `cluster_contrast_snr`, `cluster_local_noise`, `cluster_labels` (first, last);
    out_tsv : the candidate table (`calcsig.segment.store.CANDIDATE_COLUMNS`).
    Returns counts for the batch manifest.
    """
    p = segment_params(params, INSERTION_KEYS)
    pixels, spacing, truth, clusters = inserted_film(image_path, image_id, pixel_spacing_mm, p, seed)
    cand, table = segment_image(pixels, spacing, {k: p[k] for k in CANDIDATE_KEYS})
    extra = {
        "truth": truth,
        "cluster_centre_yx_px": np.array([c.centre_yx_px for c in clusters], dtype=np.float64).reshape(-1, 2),
        "cluster_radius_mm": np.array([c.radius_mm for c in clusters], dtype=np.float64),
        "cluster_contrast_snr": np.array([c.contrast_snr for c in clusters], dtype=np.float64),
        "cluster_local_noise": np.array([c.local_noise for c in clusters], dtype=np.float64),
        "cluster_labels": np.array([c.labels for c in clusters], dtype=np.int64).reshape(-1, 2),
    }
    write_segmentation(cand.labels, cand.breast, spacing, table, out_npz, out_tsv, extra)
    return {"n_clusters": len(clusters), "n_calcifications": int(truth.max()), "n_candidates": len(table)}
