"""Image and breast levels: an image or breast is called when any of its ROIs is, at each fold's threshold."""

import numpy as np
import pandas as pd
import pytest

from calcsig.model import metrics
from calcsig.model.levels import breast_level, image_level
from calcsig.model.thresholds import choose_threshold

IMAGES = pd.DataFrame(
    {
        "image_id": ["cc", "mlo", "t_cc"],
        "subject_id": ["s", "s", "t"],
        "laterality": ["L", "L", "R"],
        "view": ["CC", "MLO", "CC"],
    }
)


def _pred(probability, label, threshold):
    p = np.asarray(probability)
    return pd.DataFrame(
        {
            "roi_id": ["r1", "r2", "r3", "r4"],
            "subject_id": ["s", "s", "s", "t"],
            "group_id": ["s", "s", "s", "t"],
            "image_id": ["cc", "cc", "mlo", "t_cc"],
            "model": "m",
            "fold": "1",
            "label": label,
            "probability": p,
            "predicted": (p >= threshold).astype(int),
            "threshold": threshold,
            "predicted_margin": (p >= threshold + 0.2).astype(int),
            "threshold_margin": threshold + 0.2,
        }
    )


def test_image_level_takes_the_maximum_over_its_rois_for_both_operating_points():
    img = image_level(_pred([0.2, 0.45, 0.3, 0.1], [0, 1, 1, 0], 0.4)).set_index("image_id")
    assert img.loc["cc", "probability"] == 0.45 and img.loc["cc", "label"] == 1
    assert img.loc["cc", "predicted"] == 1 and img.loc["mlo", "predicted"] == 0
    assert img.loc["cc", "predicted_margin"] == 0  # 0.45 < 0.6
    assert img.loc["cc", "threshold"] == 0.4 and img.loc["cc", "threshold_margin"] == pytest.approx(0.6)


def test_breast_level_fuses_views_at_the_operating_points_threshold_not_at_one_half():
    # CC holds an actionable ROI at 0.3, MLO nothing above 0.1; the fold's threshold is 0.25.
    # The views disagree: the published rule with its fixed 0.5 would call the breast benign; at the
    # operating point's threshold the malignant view has crossed it, so the breast is called.
    pred = _pred([0.05, 0.3, 0.1, 0.1], [0, 1, 0, 0], 0.25)
    br = breast_level(image_level(pred), IMAGES).set_index("breast_id")
    assert list(br.index) == ["s:L", "t:R"]
    assert br.loc["s:L", "predicted"] == 1 and br.loc["s:L", "label"] == 1
    assert br.loc["s:L", "probability"] == 0.3 and br.loc["t:R", "predicted"] == 0
    # a breast is positive exactly when its highest view probability reaches the threshold
    assert (br["predicted"] == (br["probability"] >= br["threshold"])).all()
    assert (br["predicted_margin"] == (br["probability"] >= br["threshold_margin"])).all()


def test_breast_level_sensitivity_follows_the_target():
    rng = np.random.default_rng(4)
    rows, images = [], []
    for s in range(60):
        side = "L" if s % 2 else "R"
        for view in ("CC", "MLO"):
            images.append({"image_id": f"s{s}_{view}", "subject_id": f"s{s}", "laterality": side, "view": view})
        actionable = s % 3 == 0
        for r in range(int(rng.integers(1, 4))):
            label = int(actionable and r == 0)  # one actionable ROI per actionable breast, benign ones beside it
            rows.append(
                {
                    "roi_id": f"s{s}_r{r}",
                    "subject_id": f"s{s}",
                    "group_id": f"s{s}",
                    "image_id": f"s{s}_{'CC' if r % 2 == 0 else 'MLO'}",
                    "model": "m",
                    "fold": str(1 + (s // 3) % 3),
                    "label": label,
                    "probability": float(np.clip(rng.normal(0.55 if label else 0.35, 0.15), 0, 1)),
                }
            )
    pred = pd.DataFrame(rows)
    for target in (1.0, 0.8):
        parts = []
        for _, fold in pred.groupby("fold"):
            t = choose_threshold(fold["label"], fold["probability"], target)["threshold"]
            parts.append(fold.assign(predicted=(fold["probability"] >= t).astype(int), threshold=t))
        rois = pd.concat(parts)
        breasts = breast_level(image_level(rois), pd.DataFrame(images))
        roi_sens = metrics.binary_metrics(rois["label"], rois["probability"], rois["predicted"])["sensitivity"]
        breast_sens = metrics.binary_metrics(breasts["label"], breasts["probability"], breasts["predicted"])[
            "sensitivity"
        ]
        assert roi_sens >= target
        # one actionable ROI per actionable breast: a breast is found exactly when its actionable ROI is
        assert breast_sens >= roi_sens >= target
