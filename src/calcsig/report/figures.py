"""Figures of the report as inline SVG, byte-identical for identical data.

Matplotlib's SVG carries a date and ids drawn from a random salt unless told
otherwise; every figure here is saved with no metadata and a salt derived from
its own id, so ids are stable and unique within the page. Colours are the
Okabe-Ito palette (distinguishable with the common colour-vision deficiencies).
"""

from __future__ import annotations

import functools
import io
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
from markupsafe import Markup  # noqa: E402
from matplotlib.transforms import offset_copy  # noqa: E402

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}
SERIES = ["blue", "orange", "green", "vermillion", "purple", "sky", "black"]
GREY = "#8c8c8c"

_STYLE = {
    "svg.fonttype": "none",  # text stays text: smaller files, selectable, scales with the page
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "legend.fontsize": 8,
    "lines.linewidth": 1.6,
}


def styled(plot):
    """Run a plotting function inside the report's style, so legends and lines drawn after the figure
    was created follow it too."""

    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        with plt.rc_context(_STYLE):
            return plot(*args, **kwargs)

    return wrapper


def legend_below(ax, ncol: int = 1) -> None:
    """The legend under the axes and their tick labels and x label (a fixed distance in inches, whatever the
    axes' height), where it cannot hide a curve."""
    below = offset_copy(ax.transAxes, fig=ax.figure, y=-0.5, units="inches")
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, 0.0), bbox_transform=below, ncol=ncol, borderaxespad=0.0)


def colour(i: int) -> str:
    return OKABE_ITO[SERIES[i % len(SERIES)]]


def new_figure(n_panels: int = 1, width_in: float = 3.4, height_in: float = 3.0, **kwargs):
    """A figure of `n_panels` side by side, in the report's style."""
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(
            1, n_panels, figsize=(width_in * n_panels, height_in), squeeze=False, layout="constrained", **kwargs
        )
    return fig, list(axes[0])


def to_svg(fig, figure_id: str, label: str) -> Markup:
    """The figure as an inline <svg> element, stable ids prefixed by `figure_id`, scaled to its container."""
    buffer = io.StringIO()
    with plt.rc_context({**_STYLE, "svg.hashsalt": f"calcsig-{figure_id}"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    # unique ids across the page: matplotlib's ids are unique only within one file
    ids = set(re.findall(r'\sid="([^"]+)"', text))

    def prefixed(match: re.Match) -> str:
        name = match.group(0)
        return f"{figure_id}-{name}" if name in ids else name

    text = re.sub(r'(?<=\sid=")[^"]+(?=")|(?<=#)[^")\s]+(?=[")])', prefixed, text)
    text = re.sub(r'\s(width|height)="[\d.]+pt"', "", text, count=2)
    safe_label = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    # scale with the page up to 1.5 times the drawn size: one-panel figures stay figure-sized
    view = re.search(r'viewBox="[\d.]+ [\d.]+ ([\d.]+) [\d.]+"', text)
    style = f' style="max-width:{1.5 * float(view.group(1)):.0f}px"' if view else ""
    text = text.replace("<svg ", f'<svg class="plot" role="img" aria-label="{safe_label}"{style} ', 1)
    return Markup(text)


def _unit_axes(ax, xlabel: str, ylabel: str, title: str = "") -> None:
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)


@styled
def roc_panels(panels: list[dict]) -> tuple:
    """ROC curves, one panel per set.

    Each panel: title, curve {fpr, tpr, tpr_ci_low?, tpr_ci_high?}, label, band_label,
    folds (list of {fpr, tpr} or empty), points (list of (fpr, tpr, label)).
    """
    fig, axes = new_figure(len(panels), height_in=4.4)
    for ax, panel in zip(axes, panels):
        curve = panel["curve"]
        ax.plot([0, 1], [0, 1], color=GREY, linestyle=":", linewidth=1, label="chance")
        for k, fold in enumerate(panel.get("folds", [])):
            ax.plot(
                fold["fpr"],
                fold["tpr"],
                color=OKABE_ITO["sky"],
                linewidth=0.8,
                alpha=0.9,
                label="outer folds" if k == 0 else None,
            )
        if curve.get("tpr_ci_low") is not None and curve.get("tpr_ci_high") is not None:
            ax.fill_between(
                curve["fpr"],
                curve["tpr_ci_low"],
                curve["tpr_ci_high"],
                color=OKABE_ITO["blue"],
                alpha=0.18,
                linewidth=0,
                step=None,
                label=panel.get("band_label", "CI band"),
            )
        ax.plot(curve["fpr"], curve["tpr"], color=OKABE_ITO["blue"], label=panel.get("label", "model"))
        for j, (x, y, text) in enumerate(panel.get("points", [])):
            ax.plot([x], [y], marker="os"[j % 2], color=OKABE_ITO["vermillion"], linestyle="none", label=text)
        _unit_axes(ax, "1 \u2212 specificity (false-positive fraction)", "sensitivity", panel["title"])
        legend_below(ax)
    return fig


@styled
def pr_panels(panels: list[dict]) -> tuple:
    """Precision-recall curves: title, recall, precision, prevalence (no-skill line), label."""
    fig, axes = new_figure(len(panels))
    for ax, panel in zip(axes, panels):
        if panel.get("prevalence") is not None:
            ax.axhline(panel["prevalence"], color=GREY, linestyle=":", linewidth=1, label="prevalence (no skill)")
        ax.plot(panel["recall"], panel["precision"], color=OKABE_ITO["blue"], label=panel.get("label", "model"))
        _unit_axes(ax, "recall (sensitivity)", "precision (PPV)", panel["title"])
        legend_below(ax)
    return fig


@styled
def reliability_panels(panels: list[dict]) -> tuple:
    """Reliability diagrams with the count of cases per probability bin beneath.

    Each panel: title, bins (list of {bin_low, bin_high, n, mean_predicted, observed_fraction}), brier.
    """
    with plt.rc_context(_STYLE):
        fig, grid = plt.subplots(
            2,
            len(panels),
            figsize=(3.4 * len(panels), 3.9),
            squeeze=False,
            gridspec_kw={"height_ratios": [3, 1]},
            sharex="col",
            layout="constrained",
        )
    for j, panel in enumerate(panels):
        ax, counts = grid[0][j], grid[1][j]
        bins = [b for b in panel["bins"] if b.get("n")]
        ax.plot([0, 1], [0, 1], color=GREY, linestyle=":", linewidth=1, label="perfect calibration")
        if bins:
            x = [b["mean_predicted"] for b in bins]
            y = [b["observed_fraction"] for b in bins]
            ax.plot(x, y, color=OKABE_ITO["blue"], marker="o", markersize=4, label="observed")
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("observed fraction actionable")
        title = panel["title"] + (f"\nBrier {panel['brier']:.3f}" if panel.get("brier") is not None else "")
        ax.set_title(title)
        lows = [b["bin_low"] for b in panel["bins"]]
        widths = [b["bin_high"] - b["bin_low"] for b in panel["bins"]]
        ns = [b.get("n", 0) for b in panel["bins"]]
        counts.bar(lows, ns, width=widths, align="edge", color=OKABE_ITO["sky"], edgecolor="white", linewidth=0.5)
        for low, width, n in zip(lows, widths, ns):
            if n:
                counts.text(low + width / 2, n, str(n), ha="center", va="bottom", fontsize=7)
        counts.set_ylim(0, max(ns + [1]) * 1.35)
        counts.set_xlim(0, 1)
        counts.set_xlabel("predicted probability")
        counts.set_ylabel("cases")
        counts.grid(False)
    return fig


@styled
def decision_panels(panels: list[dict]) -> tuple:
    """Decision curves: net benefit of the model, treat-all and treat-none against the threshold probability."""
    fig, axes = new_figure(len(panels))
    for ax, panel in zip(axes, panels):
        rows = panel["rows"]
        t = [r["threshold"] for r in rows]
        model = [r["model"] for r in rows]
        treat_all = [r["treat_all"] for r in rows]
        none = [r.get("treat_none", 0.0) for r in rows]
        ax.plot(t, treat_all, color=OKABE_ITO["orange"], linestyle="--", label="treat all (biopsy every case)")
        ax.plot(t, none, color=GREY, linestyle=":", label="treat none")
        ax.plot(t, model, color=OKABE_ITO["blue"], label=panel.get("label", "model"))
        finite = [v for v in model + treat_all + none if v is not None and np.isfinite(v)]
        top = max(finite + [0.05])
        ax.set_ylim(-0.05 * max(top, 0.2), top * 1.1)
        ax.set_xlim(0, max(t) if t else 1)
        ax.set_xlabel("threshold probability")
        ax.set_ylabel("net benefit")
        ax.set_title(panel["title"])
        legend_below(ax)
    return fig


@styled
def threshold_panels(panels: list[dict]) -> tuple:
    """Sensitivity, specificity and benign biopsies avoided against the decision threshold.

    Each panel: title, rows (threshold_table entries), points (list of (threshold, label)).
    """
    fig, axes = new_figure(len(panels), width_in=3.6)
    for ax, panel in zip(axes, panels):
        rows = panel["rows"]
        t = [r["threshold"] for r in rows]
        ax.plot(t, [r["sensitivity"] for r in rows], color=OKABE_ITO["vermillion"], marker=".", label="sensitivity")
        ax.plot(
            t,
            [r["specificity"] for r in rows],
            color=OKABE_ITO["blue"],
            marker=".",
            label="specificity = benign biopsies avoided",
        )
        for j, (x, text) in enumerate(panel.get("points", [])):
            ax.axvline(x, color=OKABE_ITO["black"], linestyle=("--", ":")[j % 2], linewidth=1, label=text)
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("decision threshold (probability)")
        ax.set_ylabel("fraction")
        ax.set_title(panel["title"])
        legend_below(ax)
    return fig


@styled
def froc_figure(curves: list[dict], fp_rate: float | None, x_label: str, y_label: str, title: str):
    """FROC curves: each {label, x, y, point: (x, y, text) or None}; a dotted line at `fp_rate`.

    The x axis ends at 2.5 times the reference rate (at least 2); an operating point beyond it is named
    in the legend with its value instead of being drawn outside the axes.
    """
    fig, axes = new_figure(1, width_in=5.2, height_in=3.4)
    ax = axes[0]
    right = max((float(np.nanmax(c["x"])) for c in curves if len(c["x"])), default=0.0)
    limit = min(right, max(2.0, 2.5 * (fp_rate or 0))) if right > 0 else 1.0
    for i, curve in enumerate(curves):
        x = np.asarray(curve["x"], dtype=float)
        y = np.asarray(curve["y"], dtype=float)
        inside = x <= limit
        ax.step(x[inside], y[inside], where="post", color=colour(i), label=curve["label"])
        if curve.get("point"):
            px, py, text = curve["point"]
            if px <= limit:
                ax.plot([px], [py], marker="o", color=colour(i), markeredgecolor="black", linestyle="none", label=text)
            else:
                ax.plot([], [], marker=">", color=colour(i), linestyle="none", label=f"{text} (off the scale)")
    if fp_rate is not None:
        ax.axvline(fp_rate, color=GREY, linestyle=":", linewidth=1, label=f"{fp_rate:g} (reference rate)")
    ax.set_xlim(0, limit)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title)
    legend_below(ax)
    return fig


@styled
def rule_graph_figure(edges: list[tuple[str, str]], nodes: list[str]):
    """The rule graph, top to bottom: rules in rows by dependency depth, arrows from producer to consumer."""
    graph = nx.DiGraph()
    graph.add_nodes_from(sorted(nodes))
    graph.add_edges_from(sorted(edges))
    layers = [sorted(layer) for layer in nx.topological_generations(graph)]
    width = max(len(layer) for layer in layers)
    position = {
        name: (2.4 * (k - (len(layer) - 1) / 2), -row)
        for row, layer in enumerate(layers)
        for k, name in enumerate(layer)
    }
    fig, axes = new_figure(1, width_in=max(4.0, 2.2 * width), height_in=0.42 * len(layers) + 0.2)
    ax = axes[0]
    ax.grid(False)
    ax.axis("off")
    boxes = {}
    for name, (x, y) in sorted(position.items()):
        boxes[name] = ax.text(
            x,
            y,
            name,
            ha="center",
            va="center",
            fontsize=8,
            bbox={"boxstyle": "round,pad=0.3", "facecolor": "#eef5fb", "edgecolor": OKABE_ITO["blue"], "lw": 0.8},
        )
    row = {name: -y for name, (_, y) in position.items()}
    for i, (a, b) in enumerate(sorted(graph.edges)):
        span = row[b] - row[a]
        # edges that skip rows bow out, alternately left and right, instead of running through the boxes between
        bend = 0.0 if span <= 1 else (1 if i % 2 else -1) * min(0.5, 0.1 * span)
        ax.annotate(
            "",
            xy=position[b],
            xytext=position[a],
            arrowprops={
                "arrowstyle": "-|>",
                "color": GREY,
                "linewidth": 0.7,
                "patchA": boxes[a].get_bbox_patch(),
                "patchB": boxes[b].get_bbox_patch(),
                "shrinkA": 1,
                "shrinkB": 1,
                "connectionstyle": f"arc3,rad={bend:.2f}",
            },
        )
    ax.set_xlim(-1.5 * width - 0.6, 1.5 * width + 0.6)
    ax.set_ylim(-len(layers) + 0.5, 0.5)
    return fig
