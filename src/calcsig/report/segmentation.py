"""Section 3, segmentation: FROC curves with the operating point, cluster-level results, the gallery."""

from __future__ import annotations

import base64

from . import figures
from .blocks import Facts, Figure, Heading, Note, Section, Table, fixed, number, unavailable
from .inputs import Inputs

REFERENCE_SPACING_MM = 0.07


def tpr_at_rate(metrics: dict, fp_rate: float):
    """The stored TPR at `fp_rate` FP/cm2 (the evaluation names the key after the configured rate)."""
    return metrics.get(f"tpr_at_{fp_rate:g}_fp_per_cm2")


def headline(inputs: Inputs, config: dict) -> list[tuple[str, str, str, str]]:
    """Segmentation results for the run summary: pixel-level TPR and/or cluster sensitivity."""
    metrics = inputs.json("segmentation")
    if not metrics:
        return []
    fp_rate = config["segment"]["fp_per_cm2"]
    out = []
    tpr = tpr_at_rate(metrics, fp_rate)
    if tpr is not None:
        out.append(
            (
                "Calcification TPR",
                fixed(tpr),
                "",
                f"at {fp_rate:g} false positives per cm\u00b2 of breast; {number(metrics.get('n_images'))} held-out "
                "images with pixel truth",
            )
        )
    if metrics.get("cluster_sensitivity") is not None:
        out.append(
            (
                "Cluster sensitivity",
                fixed(metrics["cluster_sensitivity"]),
                "",
                f"{number(metrics.get('false_clusters_per_normal_image'), 2)} false clusters per normal image; "
                f"{number(metrics.get('n_annotated_clusters'))} annotated clusters",
            )
        )
    return out


def _matching_text(seg: dict) -> str:
    distance = seg["match_distance_mm"]
    return (
        f"A true calcification counts as found when a detection's centroid lies within {distance:g} mm "
        f"({distance / REFERENCE_SPACING_MM:.0f} px at {REFERENCE_SPACING_MM} mm) or their IoU is at least "
        f"{seg['match_iou']:g}."
    )


def _selector_text(metrics: dict) -> str:
    """How the detections at the operating point were kept, as the evaluation recorded it."""
    selector = metrics.get("selector") or {}
    point = metrics.get("operating_point") or {}
    if not selector.get("used", bool(point)):
        reason = selector.get("reason")
        return f"plain HDoG, every candidate kept ({reason})" if reason else "plain HDoG, every candidate kept"
    if point.get("threshold") is None:
        return "the trained candidate selector"
    rule = point.get("rule", "configured")
    return f"the trained candidate selector at score \u2265 {point['threshold']:.3g} ({rule})"


def pixel_froc_blocks(metrics: dict, config: dict) -> list:
    seg = config["segment"]
    fp_rate = seg["fp_per_cm2"]
    curves = []
    for label, block in (("with selector", metrics), ("plain HDoG (DoG response)", metrics.get("plain_hdog") or {})):
        froc = block.get("froc")
        if not froc:
            continue
        point = None
        if block.get("operating_point_tpr") is not None and block.get("operating_point_fp_per_cm2") is not None:
            point = (
                block["operating_point_fp_per_cm2"],
                block["operating_point_tpr"],
                f"operating point {label}: TPR {block['operating_point_tpr']:.2f} at "
                f"{block['operating_point_fp_per_cm2']:.2f} FP/cm\u00b2",
            )
        curves.append({"label": label, "x": froc["fp_per_cm2"], "y": froc["sensitivity"], "point": point})
    if not curves:
        return [unavailable("Calcification-level FROC", "the corpus has no pixel-level calcification truth")]
    n_images = metrics.get("n_images_pixel_truth", metrics.get("n_images"))
    caption = (
        f"FROC of calcification detection on the {number(n_images)} held-out images (dev and eval splits) with "
        f"pixel truth ({number(metrics.get('n_truth_objects'))} calcifications, "
        f"{number(metrics.get('breast_area_cm2'), 4)} cm\u00b2 of breast): sensitivity against false positives "
        f"per cm\u00b2 of breast, candidates ranked by the selector's score and by DoG response alone. "
        f"The dotted line marks {fp_rate:g} FP/cm\u00b2 (segment.fp_per_cm2); the dots are the operating point, "
        f"{_selector_text(metrics)}. {_matching_text(seg)}"
    )
    fig = figures.froc_figure(
        curves, fp_rate, "false positives per cm\u00b2 of breast", "sensitivity (calcifications)", "Pixel-level FROC"
    )
    return [Figure("fig-froc", caption, svg=figures.to_svg(fig, "fig-froc", "Calcification FROC"))]


def cluster_froc_blocks(metrics: dict, config: dict) -> list:
    seg = config["segment"]
    curves = []
    for label, block in (("with selector", metrics), ("plain HDoG", metrics.get("plain_hdog") or {})):
        froc = block.get("cluster_froc")
        if not froc:
            continue
        point = None
        if block.get("cluster_sensitivity") is not None and block.get("false_clusters_per_normal_image") is not None:
            point = (
                block["false_clusters_per_normal_image"],
                block["cluster_sensitivity"],
                f"operating point {label}",
            )
        curves.append(
            {
                "label": label,
                "x": froc["false_clusters_per_normal_image"],
                "y": froc["cluster_sensitivity"],
                "point": point,
            }
        )
    if not curves:
        if metrics.get("cluster_sensitivity") is None:
            return [unavailable("Cluster-level FROC", "the corpus has no cluster annotations")]
        return [
            unavailable(
                "Cluster-level FROC curve",
                "segmentation.json holds the cluster operating point but no cluster_froc curve "
                "(the table below gives the operating point)",
            )
        ]
    caption = (
        f"Cluster-level FROC on the held-out images: an annotated cluster is found when at least "
        f"{seg['cluster_min_objects']} detections fall inside its circle; on normal images, "
        f"{seg['cluster_min_objects']} detections within a {seg['cluster_diameter_mm']:g} mm disk form a false "
        f"cluster. Dots: the operating point, {_selector_text(metrics)}."
    )
    fig = figures.froc_figure(
        curves, None, "false clusters per normal image", "cluster sensitivity", "Cluster-level FROC"
    )
    return [Figure("fig-cluster-froc", caption, svg=figures.to_svg(fig, "fig-cluster-froc", "Cluster-level FROC"))]


def metric_table(metrics: dict, config: dict) -> Table:
    fp_rate = config["segment"]["fp_per_cm2"]
    rows_spec = [
        ("images evaluated", "n_images", 0),
        ("images with pixel truth", "n_images_pixel_truth", 0),
        ("true calcifications", "n_truth_objects", 0),
        (f"TPR at {fp_rate:g} FP/cm\u00b2", f"tpr_at_{fp_rate:g}_fp_per_cm2", 3),
        ("TPR at the operating point", "operating_point_tpr", 3),
        ("FP/cm\u00b2 at the operating point", "operating_point_fp_per_cm2", 3),
        ("mean IoU of matched detections", "mean_iou_matched", 3),
        ("Dice (all detections vs truth)", "dice", 3),
        ("annotated clusters", "n_annotated_clusters", 0),
        ("normal images", "n_normal_images", 0),
        ("cluster sensitivity", "cluster_sensitivity", 3),
        ("false clusters per normal image", "false_clusters_per_normal_image", 3),
    ]
    plain = metrics.get("plain_hdog") or {}
    rows = []
    for label, key, digits in rows_spec:
        if metrics.get(key) is None and plain.get(key) is None:
            continue
        rows.append([label, _value(metrics.get(key), digits), _value(plain.get(key), digits)])
    return Table(
        ["", "with selector" if config["segment"].get("use_selector") else "as run", "plain HDoG"],
        rows,
        caption="Segmentation metrics on the held-out images (dev and eval splits).",
        css="compact",
    )


def _value(value, digits: int) -> str:
    if value is None:
        return "\u2013"
    return number(value) if digits == 0 else fixed(value, digits)


def operating_point_facts(metrics: dict) -> list:
    point = metrics.get("operating_point")
    facts = []
    if isinstance(point, dict):
        for key, value in point.items():
            if isinstance(value, dict):
                for inner, inner_value in value.items():
                    facts.append((f"{key.replace('_', ' ')}: {inner.replace('_', ' ')}", _fact(inner_value)))
            else:
                facts.append((key.replace("_", " "), _fact(value)))
    spacing = metrics.get("spacing")
    by_spacing = []
    if isinstance(spacing, dict):
        for key, value in spacing.items():
            if isinstance(value, list):
                by_spacing = value
            elif not isinstance(value, dict):
                facts.append((f"spacing: {key.replace('_', ' ')}", _fact(value)))
    insertion = metrics.get("lesion_insertion")
    if isinstance(insertion, dict):
        for key, value in insertion.items():
            if isinstance(value, (int, float, str, bool)):
                text = value if isinstance(value, str) else number(value)
                facts.append((f"lesion insertion: {key.replace('_', ' ')}", text))
    blocks = [Facts(facts)] if facts else []
    if by_spacing:
        columns = ["pixel_spacing_mm", "n_images", "upsampling_factor", "working_spacing_mm", "sigma_min_px"]
        blocks.append(
            Table(
                [c.replace("_", " ") for c in columns],
                [[_fact(row.get(c)) for c in columns] for row in by_spacing],
                caption="Detection grid per native pixel spacing of the held-out images.",
                css="compact",
            )
        )
    return blocks


def _fact(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return number(value)


def _png(path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def gallery_blocks(inputs: Inputs, config: dict) -> list:
    seg = config["segment"]
    metrics = inputs.json("segmentation") or {}
    blocks = []
    if inputs.has("gallery"):
        caption = (
            f"Gallery: {seg['gallery_size']} crops of {seg['gallery_crop_mm']:g} mm from held-out images, truth "
            f"outlined in green and detections at the operating point ({_selector_text(metrics)}) in red."
        )
        blocks.append(Figure("fig-gallery", caption, src=_png(inputs.path("gallery")), alt="Detection gallery"))
    else:
        blocks.append(unavailable("Gallery", inputs.why_absent("gallery")))
    if inputs.has("gallery_worst"):
        blocks.append(
            Figure(
                "fig-gallery-worst",
                _worst_caption(seg, metrics),
                src=_png(inputs.path("gallery_worst")),
                alt="Worst cases",
            )
        )
    else:
        title = "Worst-case gallery (missed truth, densest false positives)"
        blocks.append(unavailable(title, inputs.why_absent("gallery_worst")))
    return blocks


def _worst_caption(seg: dict, metrics: dict) -> str:
    """What the worst-case gallery shows: the two kinds of panel, how many and what their titles count."""
    return (
        f"Worst cases on the held-out images at the operating point ({_selector_text(metrics)}): up to "
        f"{seg['gallery_size']} crops of {seg['gallery_crop_mm']:g} mm (segment.gallery_size, "
        "segment.gallery_crop_mm), half of each kind when both exist. Missed truth: a calcification that no "
        "kept detection overlaps, or an annotated cluster whose circle holds no kept detection; the images with "
        "the most missed first, each title giving the number missed, the crop centred on a missed one. Densest "
        "false positives: kept detections outside any truth (every detection on a normal film), per cm\u00b2 of "
        "breast; the densest images first, each title giving that density, the crop centred where they crowd "
        "most. Ties go by image ID. Truth outlined in green (annotated circles drawn as disks), kept detections "
        "in red."
    )


def segmentation_section(inputs: Inputs, config: dict) -> Section:
    section = Section("segmentation", "3. Segmentation")
    metrics = inputs.json("segmentation")
    if metrics is None:
        section.blocks.append(unavailable("Segmentation", inputs.why_absent("segmentation")))
        return section
    section.blocks.append(
        Note(
            f"HDoG candidates (\u03c3 {config['segment']['sigma_min_mm']:g}\u2013{config['segment']['sigma_max_mm']:g} "
            f"mm), {_selector_text(metrics)}, evaluated on the images outside the train split.",
            tone="caption",
        )
    )
    section.blocks.append(Heading("Detection performance", "segmentation-froc"))
    section.blocks += pixel_froc_blocks(metrics, config)
    section.blocks += cluster_froc_blocks(metrics, config)
    section.blocks.append(metric_table(metrics, config))
    section.blocks += operating_point_facts(metrics)
    section.blocks.append(Heading("Gallery", "segmentation-gallery"))
    section.blocks += gallery_blocks(inputs, config)
    section.blocks += lesion_insertion_blocks(inputs)
    return section


def lesion_insertion_blocks(inputs: Inputs) -> list:
    """Detection of simulated clusters inserted into held-out normal films, when the run inserted them."""
    if not inputs.has("lesion_insertion"):
        return []
    insertion = (inputs.json("segmentation") or {}).get("lesion_insertion") or {}
    selector = insertion.get("selector") or {}
    plain = insertion.get("plain_hdog") or {}
    found = []
    for label, block in (("with selector", selector), ("plain HDoG", plain)):
        value = block.get("inserted_cluster_sensitivity")
        if value is not None:
            found.append(f"{label} {fixed(value)}")
    caption = (
        "Simulated calcification clusters inserted into held-out normal films (no truth of their own is needed): "
        "detections against the inserted calcifications. "
        + (f"Inserted-cluster sensitivity: {', '.join(found)}. " if found else "")
        + "Inserted lesions are simulations; they measure detection of the simulated kind, not of real lesions."
    )
    return [
        Heading("Inserted lesions", "segmentation-insertion"),
        Figure("fig-lesion-insertion", caption, src=_png(inputs.path("lesion_insertion")), alt="Inserted lesions"),
    ]
