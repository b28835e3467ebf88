"""The self-contained HTML report a researcher attaches to a paper.

One page, readable offline: run summary, cohort and splits, segmentation,
features, models and provenance, each built from the stage outputs on disk
(any of which may be absent: the section then says why). Figures are inline
SVG (rasters as PNG data URIs); the page loads nothing from the network.

    build_report(paths, "results/report/index.html", config, run=RunInfo(...))

`paths` maps the input names of :data:`calcsig.report.inputs.INPUTS` to files
or None. The same inputs and config give the same bytes, except inside the one
block fenced by the comments ``VOLATILE_START`` and ``VOLATILE_END`` (run date
and per-rule timings).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import jinja2

from ..paths import atomic_path
from .cohort import cohort_section
from .features import features_section
from .inputs import INPUTS, Inputs, ReportInputError
from .models import models_section
from .provenance import RunInfo, snakemake_rule_graph
from .segmentation import segmentation_section
from .summary import summary_section

VOLATILE_START = "<!-- volatile:start -->"
VOLATILE_END = "<!-- volatile:end -->"


def _environment() -> jinja2.Environment:
    templates = resources.files("calcsig.report") / "templates"
    loader = jinja2.FunctionLoader(lambda name: (templates / name).read_text(encoding="utf-8"))
    return jinja2.Environment(
        loader=loader, autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )


def render_page(inputs: Inputs, config: dict, run: RunInfo | None = None, title: str | None = None) -> str:
    """The report page as a string."""
    run = run or RunInfo()
    sections = [
        summary_section(inputs, config, run),
        cohort_section(inputs, config),
        segmentation_section(inputs, config),
        features_section(inputs, config),
        models_section(inputs, config),
    ]
    from .provenance import provenance_section

    sections.append(provenance_section(config, run))
    template = _environment().get_template("page.html.j2")
    page = template.render(
        title=title or config.get("report", {}).get("title", "calcsig report"),
        sections=sections,
        volatile_start=VOLATILE_START,
        volatile_end=VOLATILE_END,
    )
    return re.sub(r"[ \t]+\n", "\n", page)


def build_report(
    paths: dict,
    out_html: str | Path,
    config: dict,
    *,
    run: RunInfo | None = None,
    reasons: dict | None = None,
    title: str | None = None,
) -> Path:
    """Write the report page atomically to `out_html` and return its path.

    paths: input name -> file path, or None for an input this run does not have (see INPUTS);
    config: the resolved config (captions quote its values); run: workflow facts (rule graph,
    benchmark and log patterns, the Snakefile's folder for the git commit); reasons: input name ->
    why it is absent, shown instead of the generic "this run has no ...".
    """
    inputs = Inputs(dict(paths), dict(reasons or {}))
    page = render_page(inputs, config, run, title)
    with atomic_path(out_html) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return Path(out_html)


def strip_volatile(page: str) -> str:
    """The page without its volatile block, for comparing reports of two runs."""
    return re.sub(re.escape(VOLATILE_START) + r".*?" + re.escape(VOLATILE_END), "", page, flags=re.S)


__all__ = [
    "INPUTS",
    "Inputs",
    "ReportInputError",
    "RunInfo",
    "VOLATILE_END",
    "VOLATILE_START",
    "build_report",
    "render_page",
    "snakemake_rule_graph",
    "strip_volatile",
]
