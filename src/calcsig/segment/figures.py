"""Segmentation figures: FROC panels (pixel-level, cluster-level, lesion insertion) and the overlay gallery."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from calcsig.paths import atomic_path
from calcsig.segment.evaluate import ClusterFROC


@dataclass
class FrocPanel:
    """One panel of the FROC figure.

    curves : label -> FROC (pixel level: sensitivity vs FP per cm2) or ClusterFROC
        (cluster sensitivity vs false clusters per normal image); one kind per panel.
    operating_points : label -> (x, y) marked on the curve of that label.
    fp_rate : the pixel-level reference rate (FP per cm2) drawn as a dotted line.
    """

    title: str
    curves: dict
    operating_points: dict = field(default_factory=dict)
    fp_rate: float = 0.4


def _pixel_panel(ax, panel: FrocPanel, max_fp: float = 2.0) -> None:
    for name, froc in panel.curves.items():
        line = ax.step(
            froc.fp_per_cm2,
            froc.sensitivity,
            where="post",
            label=f"{name} (TPR@{panel.fp_rate:g}: {froc.sensitivity_at(panel.fp_rate):.3f})",
        )[0]
        if name in panel.operating_points:
            ax.plot(*panel.operating_points[name], "o", color=line.get_color(), markersize=6)
    ax.axvline(panel.fp_rate, color="grey", linestyle=":", linewidth=1)
    # wide enough to show every operating point
    ax.set_xlim(0, max([max_fp] + [1.05 * x for x, _ in panel.operating_points.values()]))
    ax.set_xlabel("false positives per cm$^2$ of breast")
    ax.set_ylabel("sensitivity (calcifications detected)")


def _cluster_panel(ax, panel: FrocPanel) -> None:
    for name, froc in panel.curves.items():
        line = ax.step(froc.false_clusters_per_normal_image, froc.cluster_sensitivity, where="post", label=name)[0]
        if name in panel.operating_points:
            x, y = panel.operating_points[name]
            ax.plot(x, y, "o", color=line.get_color(), markersize=6, label=f"{name} operating point ({x:.2g}, {y:.2f})")
    # the goal region: >= 0.9 of the clusters at <= 1 false cluster per normal image
    ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
    ax.axhline(0.9, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(left=0)
    ax.set_xlabel("false clusters per normal image")
    ax.set_ylabel("cluster sensitivity")


def plot_froc_panels(panels: list[FrocPanel], path) -> None:
    """The FROC panels side by side in one PNG (a panel per available kind of truth)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(len(panels), 1)
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 4), dpi=100, squeeze=False)
    for ax, panel in zip(axes[0], panels):
        kinds = {isinstance(c, ClusterFROC) for c in panel.curves.values()}
        if kinds == {True}:
            _cluster_panel(ax, panel)
        elif kinds == {False}:
            _pixel_panel(ax, panel)
        ax.set_ylim(0, 1.02)
        ax.set_title(panel.title, fontsize=9)
        ax.legend(loc="lower right", fontsize=7)
        ax.grid(alpha=0.3)
    if not panels:
        axes[0, 0].axis("off")
        axes[0, 0].text(0.5, 0.5, "no truth to draw a FROC against", ha="center", va="center")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def plot_gallery(
    panels: list[dict],
    path,
    suptitle: str = "green: ground truth, red: detections",
    empty_text: str = "no image to show",
) -> None:
    """Overlay gallery: per panel an image crop with truth (green) and detections (red) outlines.

    panels : dicts with `title`, `image` (2-D crop), `truth` (crop label image or None), `pred` (crop labels).
    Without panels the figure is `empty_text` alone, so the file is still written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not panels:  # one line, wide enough to read at a glance
        fig, ax = plt.subplots(figsize=(6.4, 0.8), dpi=100)
        ax.axis("off")
        ax.text(0.5, 0.5, empty_text, ha="center", va="center", wrap=True)
    else:
        fig = _gallery_figure(plt, panels)
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _gallery_figure(plt, panels: list[dict]):
    """Up to three panels a row, each crop with its truth and detection outlines."""
    cols = min(len(panels), 3)
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), dpi=100, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, panel in zip(axes.ravel(), panels):
        ax.imshow(panel["image"], cmap="gray", interpolation="nearest")
        if panel.get("truth") is not None and (panel["truth"] > 0).any():
            ax.contour(panel["truth"] > 0, levels=[0.5], colors="lime", linewidths=0.8)
        if (panel["pred"] > 0).any():
            ax.contour(panel["pred"] > 0, levels=[0.5], colors="red", linewidths=0.8)
        ax.set_title(panel["title"], fontsize=8)
    return fig
