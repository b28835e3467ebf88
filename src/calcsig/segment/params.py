"""The `segment` config section, and which of its keys each part of the stage uses.

Keeping the key lists here (not in the modules that use them) lets the
workflow hand each rule exactly the values it uses, and lets every segment
module import them without importing each other.
"""

from __future__ import annotations

from calcsig.settings import section_params

# breast region, HDoG detection, area filter and the per-candidate features: the `segment` rule
CANDIDATE_KEYS = (
    "skin_margin_mm",
    "border_margin_mm",
    "sigma_min_mm",
    "sigma_max_mm",
    "sigma_ratio",
    "h_thr",
    "threshold_mode",
    "threshold_noise",
    "threshold_abs",
    "min_area_mm2",
    "max_area_mm2",
    "background_mm",
    "context_radius_mm",
    "working_spacing_mm",
)
HDOG_KEYS = (
    "sigma_min_mm",
    "sigma_max_mm",
    "sigma_ratio",
    "h_thr",
    "threshold_mode",
    "threshold_abs",
    "threshold_noise",
)
# the selector's training: its hyper-parameters and the rule matching candidates to truth
SELECTOR_KEYS = (
    "selector_max_iter",
    "selector_learning_rate",
    "selector_max_leaf_nodes",
    "selector_min_samples_leaf",
    "selector_random_state",
    "match_distance_mm",
    "match_iou",
    "weak_positives_per_circle",
    "selector_inserted_lesions",
)
# the operating point: a fixed threshold, or one chosen on out-of-fold scores for a target
OPERATING_POINT_KEYS = (
    "selector_threshold",
    "target_cluster_sensitivity",
    "target_sensitivity",
    "selector_cv_folds",
    "cluster_min_objects",
    "cluster_diameter_mm",
    "match_distance_mm",
    "match_iou",
)
# the `train_selector` rule: the selector and its operating point
TRAINING_KEYS = tuple(dict.fromkeys(SELECTOR_KEYS + OPERATING_POINT_KEYS + ("selector_max_training_images",)))
# evaluation against truth and its figures
EVALUATION_KEYS = (
    "match_distance_mm",
    "match_iou",
    "fp_per_cm2",
    "cluster_min_objects",
    "cluster_diameter_mm",
    "gallery_size",
    "gallery_crop_mm",
    "sigma_min_mm",
    "working_spacing_mm",
)
# lesion insertion into normal films: what is inserted, then detected like any image (`insert_lesions` rule)
INSERTION_KEYS = tuple(
    dict.fromkeys(
        (
            "insertion_clusters_per_image",
            "insertion_contrast_snr",
            "insertion_psf_sigma_mm",
            "insertion_max_radius_mm",
        )
        + CANDIDATE_KEYS
    )
)
# the evaluation of the held-out normal films with inserted lesions (`lesion_insertion` rule)
INSERTION_EVALUATION_KEYS = (
    "match_distance_mm",
    "match_iou",
    "fp_per_cm2",
    "cluster_min_objects",
    "gallery_size",
    "gallery_crop_mm",
    "insertion_clusters_per_image",
    "insertion_contrast_snr",
    "insertion_psf_sigma_mm",
    "insertion_max_radius_mm",
    "skin_margin_mm",
    "border_margin_mm",
)


def segment_params(params: dict | None, keys: tuple[str, ...] | None = None) -> dict:
    """The `segment` section validated with defaults filled (only `keys` when given)."""
    return section_params("segment", params, keys)
