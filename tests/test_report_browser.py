"""The report in a real browser: headless Debian chromium, driven by Playwright, at 1280 x 800.

Pages: (a) the report the workflow writes on the tiny synthetic config; (b) mini-MIAS as far as the
workflow gets on it; (c) a metadata-only CBIS-DDSM corpus; (d) every agreed metric key present.
(b) and (c) are rendered with build_report from the outputs that exist (None for the rest).
Each page: no console error, no request but the file itself, every section and figure there and
drawn, nothing wider than the window, the main model's AUCs on the first screen; a full-page
screenshot is saved in the test's folder.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright
from report_inputs import complete_inputs
from test_workflow import deploy, snakemake

from calcsig.config import load_config
from calcsig.report import INPUTS, RunInfo, build_report

pytestmark = [pytest.mark.workflow, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1280, 800
SECTIONS = ["summary", "cohort", "segmentation", "features", "models", "provenance"]
# A fresh profile and no background traffic: this machine's network refuses outside connections.
CHROMIUM_ARGS = [
    "--no-sandbox",  # chromium refuses to run as root otherwise
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Where each stage's files land in a working directory (the report's input names -> paths).
RESULT_PATHS = {
    "images": "results/corpus/images.tsv",
    "rois": "results/corpus/rois.tsv",
    "subjects": "results/corpus/subjects.tsv",
    "assignment": "results/splits/assignment.tsv",
    "balance": "results/splits/balance.tsv",
    "balance_json": "results/splits/balance.json",
    "audit": "results/splits/audit.json",
    "audit_table": "results/splits/audit.tsv",
    "cohort_summary": "results/cohort/summary.json",
    "cohort_rois": "results/cohort/rois.tsv",
    "segmentation": "results/metrics/segmentation.json",
    "gallery": "results/segment/gallery.png",
    "gallery_worst": "results/segment/gallery_worst.png",
    "features": "results/features/rois.parquet",
    "objects": "results/features/objects.parquet",
    "models": "results/metrics/models.json",
    "models_table": "results/metrics/models.tsv",
    "importance": "results/model/outereval/bag_of_objects/search.json",
}


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium; skipped, saying why, only where it is not installed (CI installs it)."""
    if not CHROMIUM.exists():
        message = f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message + "; .ci/run installs it, so CI must have it")
        pytest.skip(message)
    profile = tempfile.mkdtemp(prefix="calcsig-chromium-")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": WIDTH, "height": HEIGHT},
        )
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


def resolved_config(overrides: dict) -> dict:
    config = load_config(overrides)
    config["segment"]["selector_random_state"] = config["seed"]
    config["model"]["seed"] = config["seed"]
    return config


def render_existing(workdir: Path, overrides: dict) -> Path:
    """build_report over whatever the workflow produced in `workdir` (None for the rest)."""
    paths = {name: workdir / rel if (workdir / rel).exists() else None for name, rel in RESULT_PATHS.items()}
    assert set(paths) <= set(INPUTS)
    out = workdir / "results/report/index.html"
    return build_report(paths, out, resolved_config(overrides), run=RunInfo(workflow_dir=str(REPO)))


@pytest.fixture(scope="module")
def tiny_page(finished_tiny_run) -> Path:
    """(a) The page the workflow's report rule writes after the whole tiny run."""
    return finished_tiny_run / "results/report/index.html"


@pytest.fixture(scope="module")
def mini_mias_page(mini_mias_run) -> Path:
    """(b) The page of the whole workflow on the mini-MIAS films (README's config)."""
    return mini_mias_run / "results/report/index.html"


@pytest.fixture(scope="module")
def cbis_page(tmp_path_factory, shared_data) -> Path:
    """(c) CBIS-DDSM tables without images: corpus, partition and audit only."""
    overrides = {"corpus": {"source": "cbis_ddsm", "path": str(shared_data / "cbis-ddsm")}}
    workdir = deploy(tmp_path_factory.mktemp("browser") / "cbis", overrides)
    snakemake(workdir, "results/splits/audit.json", "results/splits/balance.tsv", "--configfile", "tiny.yaml")
    return render_existing(workdir, overrides)


@pytest.fixture(scope="module")
def contract_page(tmp_path_factory) -> Path:
    """(d) Every metric key the stages agreed on, so every figure the report can draw is drawn."""
    root = tmp_path_factory.mktemp("browser") / "contract"
    return build_report(complete_inputs(root / "inputs"), root / "index.html", resolved_config({}))


def inspect(context, page_path: Path, screenshot: Path) -> dict:
    """Open the page as a reader does and measure what the checks need."""
    page = context.new_page()
    errors, requests = [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(page_path.as_uri(), wait_until="load")
    first_screen = page.evaluate(
        """() => [...document.querySelectorAll('.card')].map(card => ({
            label: card.querySelector('.card-label').textContent,
            bottom: card.getBoundingClientRect().bottom}))"""
    )
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    found = page.evaluate(
        """() => ({
        sections: [...document.querySelectorAll('main > section')].map(s => s.id),
        figures: [...document.querySelectorAll('figure')].map(f => {
            const img = f.querySelector('img'), svg = f.querySelector('svg');
            const box = svg ? svg.getBoundingClientRect() : null;
            return {id: f.id, drawn: img ? img.complete && img.naturalWidth > 0 : (box.width > 0 && box.height > 0)};
        }),
        wide: [...document.querySelectorAll('body *')].filter(e => {
            const r = e.getBoundingClientRect();
            return r.width > window.innerWidth || r.right > window.innerWidth + 1;
        }).map(e => e.tagName + '#' + e.id + '.' + e.getAttribute('class')).slice(0, 10),
        scrollWidth: document.documentElement.scrollWidth,
        unavailable: [...document.querySelectorAll('.unavailable')].map(e => e.textContent),
    })"""
    )
    page.screenshot(path=str(screenshot), full_page=True)
    page.close()
    return found | {"errors": errors, "requests": requests, "first_screen": first_screen}


def check_page(found: dict, page_path: Path, figures: set[str]) -> None:
    assert found["errors"] == []
    assert all(url == page_path.as_uri() or url.startswith("data:") for url in found["requests"]), found["requests"]
    assert found["sections"] == SECTIONS
    drawn = {f["id"] for f in found["figures"] if f["drawn"]}
    assert [f["id"] for f in found["figures"] if not f["drawn"]] == []
    assert figures <= drawn, f"missing figures: {sorted(figures - drawn)}"
    assert found["wide"] == [] and found["scrollWidth"] <= WIDTH


def check_auc_on_first_screen(found: dict) -> None:
    cards = {c["label"]: c["bottom"] for c in found["first_screen"]}
    for label in ("bag_of_objects: ROC AUC, CV", "bag_of_objects: ROC AUC, eval"):
        assert label in cards and cards[label] <= HEIGHT, cards


def test_the_tiny_runs_report_reads_in_a_browser(browser, tiny_page, tmp_path):
    found = inspect(browser, tiny_page, tmp_path / "tiny.png")
    check_page(
        found,
        tiny_page,
        {
            "fig-froc",
            "fig-gallery",
            "fig-bag_of_objects-roi-calibration",
            "fig-bag_of_objects-roi-decision",
            "fig-bag_of_objects-roi-thresholds",
            "fig-rulegraph",
        },
    )
    check_auc_on_first_screen(found)
    assert (tmp_path / "tiny.png").stat().st_size > 0


def test_a_page_with_every_agreed_metric_key_draws_every_figure(browser, contract_page, tmp_path):
    found = inspect(browser, contract_page, tmp_path / "contract.png")
    figures = {"fig-froc", "fig-cluster-froc", "fig-gallery"} | {
        f"fig-bag_of_objects-roi-{kind}" for kind in ("roc", "pr", "calibration", "decision", "thresholds")
    }
    check_page(found, contract_page, figures)
    check_auc_on_first_screen(found)


@pytest.mark.shared_data
def test_the_mini_mias_runs_report_reads_in_a_browser(browser, mini_mias_page, tmp_path):
    found = inspect(browser, mini_mias_page, tmp_path / "mini_mias.png")
    # real films: cluster annotations, inserted lesions, a small calcification cohort that still gets models
    check_page(
        found, mini_mias_page, {"fig-cluster-froc", "fig-gallery", "fig-gallery-worst", "fig-bag_of_objects-roi-roc"}
    )
    check_auc_on_first_screen(found)


@pytest.mark.shared_data
def test_a_metadata_only_cbis_ddsm_page_reads_in_a_browser(browser, cbis_page, tmp_path):
    found = inspect(browser, cbis_page, tmp_path / "cbis.png")
    check_page(found, cbis_page, set())
    assert "Segmentation: not available because the corpus has no images with pixels (metadata only), so " in " ".join(
        found["unavailable"]
    )
