"""Section 1, run summary: what went in, the headline results, and what produced them."""

from __future__ import annotations

from markupsafe import Markup

from . import models, segmentation
from .blocks import Facts, Headline, Note, Section, number, unavailable
from .cohort import audit_blocks, cohort_summary, split_sizes
from .inputs import Inputs
from .provenance import RunInfo, config_digest, git_commit, package_versions


def corpus_source(config: dict) -> str:
    corpus = config.get("corpus", {})
    source = corpus.get("source", "?")
    if source == "synthetic":
        synthetic = corpus.get("synthetic", {})
        return f"synthetic (embedded generator, {number(synthetic.get('n_subjects'))} subjects requested)"
    path = corpus.get("path")
    return f"{source} ({path})" if path else source


def counts(inputs: Inputs) -> list[tuple[str, str]]:
    pairs = []
    for name, label in (("subjects", "subjects"), ("images", "images"), ("rois", "ROIs")):
        table = inputs.tsv(name)
        pairs.append((label, number(len(table)) if table is not None else "not available"))
    images = inputs.tsv("images")
    if images is not None and "has_pixels" in images:
        with_pixels = int(images["has_pixels"].astype(str).str.lower().eq("true").sum())
        pairs[1] = ("images", f"{number(len(images))} ({number(with_pixels)} with pixels)")
    cohort = cohort_summary(inputs)
    pairs.append(
        (
            "cohort",
            f"{number(cohort.get('n_included'))} ROIs included of {number(cohort.get('n_corpus_rois'))}"
            if cohort
            else f"not available because {inputs.why_absent('cohort_summary')}",
        )
    )
    splits = split_sizes(inputs)
    if splits:
        pairs.append(("subjects per split", ", ".join(f"{s} {number(n)}" for s, n in splits.items())))
    objects = inputs.parquet_shape("objects")
    pairs.append(
        (
            "segmented objects",
            number(objects[0]) + " in the ROIs" if objects else f"not available because {inputs.why_absent('objects')}",
        )
    )
    return pairs


def summary_section(inputs: Inputs, config: dict, run: RunInfo) -> Section:
    section = Section("summary", "1. Run summary")
    cards = models.headline(inputs, config) + segmentation.headline(inputs, config)
    if cards:
        section.blocks.append(Headline(cards))
    if not models.headline(inputs, config):
        because = inputs.why_absent("models") if not inputs.has("models") else "models.json holds no ROI-level AUC"
        section.blocks.append(unavailable("Model results", because))
    if not segmentation.headline(inputs, config):
        because = (
            inputs.why_absent("segmentation")
            if not inputs.has("segmentation")
            else "segmentation.json holds neither a TPR at the configured FP rate nor a cluster sensitivity"
        )
        section.blocks.append(unavailable("Segmentation results", because))
    _, alerts = audit_blocks(inputs)
    if alerts:
        section.blocks.append(
            Note(
                Markup('The leak audit found: {} \u2014 <a href="#cohort-audit">see the audit</a>.').format(
                    "; ".join(alerts)
                ),
                tone="alert",
            )
        )
    facts = [("corpus", corpus_source(config))] + counts(inputs)
    facts += [
        ("seed", str(config.get("seed"))),
        ("config digest", config_digest(config)),
        ("calcsig / git commit", f"{_version()} / {git_commit(run.workflow_dir)}"),
        ("run date, timings", Markup('<a href="#provenance-run">in Provenance</a> (they change from run to run)')),
        ("package versions", ", ".join(f"{n} {v}" for n, v in package_versions())),
    ]
    section.blocks.append(Facts(facts))
    return section


def _version() -> str:
    from .. import __version__

    return __version__
