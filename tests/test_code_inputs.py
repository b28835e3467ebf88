"""Each rule's code inputs cover every calcsig module its jobs really run, and no more than its imports.

The workflow derives a rule's code inputs from its script's imports
(calcsig.codedeps); a change to any of those files reruns the rule. Each job
logs the calcsig modules it loaded, so a finished run shows whether the derived
inputs missed one (an import made at run time, by name).
"""

from pathlib import Path

import pytest
from test_workflow import REPO

from calcsig.codedeps import code_files
from calcsig.ingest.stage import adapter_module
from calcsig.logs import MODULES_LINE

SRC = REPO / "src"
SCRIPTS = REPO / "workflow" / "scripts"


def script_of(log: Path) -> str:
    """The script of the job that wrote `log` (paths as the rules name them)."""
    parts = log.parts[len(log.parts) - log.parts[::-1].index("logs") :]
    if len(parts) == 1:
        return parts[0].removesuffix(".log") + ".py"
    stage, name = parts[0], parts[-1].removesuffix(".log")
    if stage == "model":
        return "model_fold.py" if parts[1].startswith("outer") else f"{name}.py"
    if stage == "segment" and len(parts) == 3:
        return {"train_selector": "train_selector.py", "inserted": "insert_lesions.py"}[parts[1]]
    if stage in ("segment", "features") and name in ("evaluate_segmentation", "lesion_insertion", "gather_features"):
        return f"{name}.py"
    return f"{stage}.py"


def module_file(dotted: str) -> Path:
    base = SRC.joinpath(*dotted.split("."))
    return base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"


def test_code_inputs_of_a_script_follow_its_imports_and_no_further():
    segment = {p.relative_to(SRC).as_posix() for p in code_files([SCRIPTS / "segment.py"], SRC)}
    assert "calcsig/segment/hdog.py" in segment and "calcsig/segment/candidates.py" in segment
    # detection does not depend on the selector, the evaluation or the models
    assert not {"calcsig/segment/selector.py", "calcsig/segment/evaluate.py"} & segment
    assert not any(p.startswith("calcsig/model/") for p in segment)
    report = {p.relative_to(SRC).as_posix() for p in code_files([SCRIPTS / "report.py"], SRC)}
    assert not any(p.startswith(("calcsig/segment/", "calcsig/synthetic/")) for p in report)
    corpus_csv = code_files([SCRIPTS / "corpus.py"], SRC, [adapter_module("csv")])
    assert not any("synthetic" in p.as_posix() for p in corpus_csv)


def test_every_module_a_job_loaded_is_a_code_input_of_its_rule(finished_tiny_run):
    logs = sorted((finished_tiny_run / "logs").rglob("*.log"))
    assert len(logs) > 10
    missing = {}
    for log in logs:
        line = next((x for x in log.read_text().splitlines() if MODULES_LINE in x), None)
        assert line is not None, f"{log} does not say which modules its job loaded"
        loaded = {module_file(m) for m in line.split(MODULES_LINE)[1].split()}
        script = script_of(log)
        modules = [adapter_module("synthetic")] if script == "corpus.py" else []
        declared = set(code_files([SCRIPTS / script], SRC, modules))
        if loaded - declared:
            missing[str(log)] = sorted(str(p.relative_to(SRC)) for p in loaded - declared)
    assert not missing, missing


@pytest.mark.parametrize(
    "log, script",
    [
        ("logs/corpus.log", "corpus.py"),
        ("logs/segment/img1.log", "segment.py"),
        ("logs/segment/train_selector/train.log", "train_selector.py"),
        ("logs/segment/inserted/img1.log", "insert_lesions.py"),
        ("logs/segment/lesion_insertion.log", "lesion_insertion.py"),
        ("logs/features/gather_features.log", "gather_features.py"),
        ("logs/features/roi1.log", "features.py"),
        ("logs/model/outer1/bag_of_objects.log", "model_fold.py"),
        ("logs/model/evaluate_models.log", "evaluate_models.py"),
    ],
)
def test_logs_map_to_the_scripts_that_wrote_them(log, script):
    assert script_of(Path("/run") / log) == script
