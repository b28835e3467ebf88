"""Section 6, provenance: what produced this page (config, code, packages, rule graph) and how the run went
(per-rule time and memory, warnings in the logs).

The run date and timings differ between runs by nature; they sit in one
volatile block so that two reports of the same config can be compared byte for
byte outside it.
"""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml

from . import figures
from .blocks import Details, Facts, Figure, Heading, Note, Preformatted, Section, Table, Volatile, number
from .blocks import unavailable as not_available

# Distributions whose versions shape the results (pyproject.toml pins them).
PACKAGES = (
    "calcsig",
    "snakemake",
    "numpy",
    "pandas",
    "scipy",
    "scikit-image",
    "scikit-learn",
    "lightgbm",
    "imbalanced-learn",
    "pyradiomics-bhklab",
    "networkx",
    "pydicom",
    "pyarrow",
    "matplotlib",
    "jinja2",
)
_WARNING_LINE = re.compile(r"^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ )?WARNING (.*)$")
_DOT_NODE = re.compile(r'^\s*(\d+)\s*\[label\s*=\s*"([^"]+)"')
_DOT_EDGE = re.compile(r"^\s*(\d+)\s*->\s*(\d+)")


@dataclass
class RunInfo:
    """What the workflow knows about this run beyond the metric files.

    workflow_dir: the folder of the Snakefile (for the git commit); rule_graph: (rules, edges producer->consumer)
    or None; rule_graph_error: why there is none; rule_graph_pending: a future of
    `snakemake_rule_graph` still running (the report is drawn meanwhile), which fills both when the
    provenance section needs them; benchmark_patterns / log_patterns: per rule, its benchmark file
    pattern and log file patterns as declared in the rules.
    """

    workflow_dir: str | None = None
    rule_graph: tuple[list[str], list[tuple[str, str]]] | None = None
    rule_graph_error: str = "the workflow did not pass its rule graph"
    rule_graph_pending: Future | None = None
    benchmark_patterns: dict[str, str] = field(default_factory=dict)
    log_patterns: dict[str, list[str]] = field(default_factory=dict)


def config_digest(config: dict) -> str:
    """First 16 hex digits of the SHA-256 of the resolved config as canonical JSON."""
    canonical = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def git_commit(folder: str | os.PathLike | None) -> str:
    """The checked-out commit of the git work tree holding `folder`, with "+ uncommitted changes" when the
    tracked files differ from it; "unknown" when the folder is not in a git checkout or git is missing."""
    if folder is None:
        return "unknown"
    try:
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30
        )
        if head.returncode != 0:
            return "unknown"
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = head.stdout.strip()
    return commit + (" + uncommitted changes" if status.stdout.strip() else "")


def package_versions() -> list[tuple[str, str]]:
    """(distribution, version) of the packages that shape the results, in the environment rendering the report."""
    out = [("python", sys.version.split()[0])]
    for name in PACKAGES:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            out.append((name, "not installed"))
    return out


def run_date(environ=os.environ) -> str:
    """The run date in UTC: SOURCE_DATE_EPOCH when set (reproducible builds), else now."""
    epoch = environ.get("SOURCE_DATE_EPOCH")
    moment = (
        dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC) if epoch and epoch.isdigit() else dt.datetime.now(tz=dt.UTC)
    )
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def parse_rule_graph(dot: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Rules and producer->consumer edges from Snakemake's `--rulegraph` DOT output."""
    names, edges = {}, set()
    for line in dot.splitlines():
        if node := _DOT_NODE.match(line):
            names[node.group(1)] = node.group(2)
    for line in dot.splitlines():
        if edge := _DOT_EDGE.match(line):
            a, b = edge.groups()
            if a in names and b in names:
                edges.add((names[a], names[b]))
    return sorted(set(names.values())), sorted(edges)


def snakemake_rule_graph(snakefile, config: dict, workdir=".", timeout_s: float = 300):
    """The rule graph of this run's default target, from `snakemake --rulegraph` with the run's resolved config
    (a job cannot see the --configfile the run was started with; the resolved config says the same).

    Called while the run is on its last job, when every checkpoint has its output, so the graph is the full
    one (with --forceall, or a checkpoint judged out of date, the jobs that depend on the checkpoint's
    output would be missing).
    Returns ((rules, edges), None) or (None, why not).
    """
    with tempfile.TemporaryDirectory(prefix="calcsig-rulegraph-") as tmp:
        config_file = Path(tmp) / "config.json"
        config_file.write_text(json.dumps(config, default=str))
        command = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir)]
        # mtime only: a config read back from JSON differs in form (not in value) from the run's, and
        # a "changed" checkpoint would hide the jobs that depend on it
        command += ["--configfile", str(config_file), "--rulegraph", "--nolock", "--rerun-triggers", "mtime"]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        except (OSError, subprocess.SubprocessError) as error:
            return None, f"snakemake --rulegraph could not run ({type(error).__name__})"
    if result.returncode != 0 or "digraph" not in result.stdout:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1][:200]
        return None, f"snakemake --rulegraph failed ({last})"
    rules, edges = parse_rule_graph(result.stdout[result.stdout.index("digraph") :])
    # `all` only gathers the final targets; drawn, it would tie every stage to one box
    return ([r for r in rules if r != "all"], [e for e in edges if "all" not in e]), None


def _glob_pattern(pattern: str) -> str:
    return re.sub(r"\{[^}]+\}", "*", pattern)


def files_by_rule(patterns: dict[str, list[str]]) -> dict[str, list[str]]:
    """The files matching each rule's declared patterns; a file matching a wildcard-free pattern of one rule
    is not also claimed by another rule's wildcard pattern (segment/{batch}.tsv vs segment/train_selector.tsv)."""
    claimed: dict[str, str] = {}
    for exact in (True, False):
        for rule in sorted(patterns):
            for pattern in patterns[rule]:
                if ("{" not in pattern) != exact:
                    continue
                for path in sorted(glob.glob(_glob_pattern(pattern))):
                    claimed.setdefault(path, rule)
    out: dict[str, list[str]] = {}
    for path, rule in sorted(claimed.items()):
        out.setdefault(rule, []).append(path)
    return out


def benchmark_summary(patterns: dict[str, str]) -> pd.DataFrame:
    """Per rule from Snakemake's benchmark files: jobs, summed and longest wall time (s), peak RSS (MB)."""
    rows = []
    for rule, paths in files_by_rule({r: [p] for r, p in patterns.items() if p}).items():
        frames = []
        for path in paths:
            try:
                frames.append(pd.read_csv(path, sep="\t"))
            except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError):
                continue
        if not frames:
            continue
        table = pd.concat(frames)
        rows.append(
            {
                "rule": rule,
                "jobs": len(paths),
                "wall time (s)": float(table["s"].sum()),
                "longest job (s)": float(table["s"].max()),
                "CPU time (s)": float(table["cpu_time"].sum()) if "cpu_time" in table else None,
                "peak RSS (MB)": float(table["max_rss"].max()) if "max_rss" in table else None,
            }
        )
    table = pd.DataFrame(rows)
    return table.sort_values(["wall time (s)", "rule"], ascending=[False, True]) if len(table) else table


def log_warnings(patterns: dict[str, list[str]]) -> pd.DataFrame:
    """WARNING lines of the rules' logs without their timestamps: rule, message, occurrences, log files."""
    counts: dict[tuple[str, str], list] = {}
    for rule, paths in files_by_rule(patterns).items():
        for path in paths:
            try:
                lines = Path(path).read_text(errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                if match := _WARNING_LINE.match(line):
                    entry = counts.setdefault((rule, match.group(1).strip()), [0, set()])
                    entry[0] += 1
                    entry[1].add(path)
    rows = [
        {"rule": rule, "message": message, "occurrences": n, "logs": len(files)}
        for (rule, message), (n, files) in sorted(counts.items())
    ]
    return pd.DataFrame(rows, columns=["rule", "message", "occurrences", "logs"])


def provenance_facts(config: dict, run: RunInfo) -> list[tuple[str, str]]:
    from .. import __version__

    return [
        ("calcsig version", __version__),
        ("git commit", git_commit(run.workflow_dir)),
        ("config digest", f"{config_digest(config)} (SHA-256 of the resolved config below)"),
        ("seed", str(config.get("seed"))),
    ]


def provenance_section(config: dict, run: RunInfo) -> Section:
    section = Section("provenance", "6. Provenance")
    section.blocks.append(Facts(provenance_facts(config, run)))
    versions = package_versions()
    section.blocks.append(
        Note(
            "Package versions (the environment that rendered this report; with per-stage conda environments each "
            "stage used its own pinned environment under envs/): " + ", ".join(f"{n} {v}" for n, v in versions),
            tone="caption",
        )
    )
    section.blocks.append(Heading("Configuration", "provenance-config"))
    section.blocks.append(
        Details(
            "The full resolved configuration (config.yaml, the --configfile overrides and every schema default)",
            [Preformatted(yaml.safe_dump(config, sort_keys=True, default_flow_style=False))],
        )
    )
    section.blocks.append(Heading("Rule graph", "provenance-rulegraph"))
    if run.rule_graph_pending is not None:
        graph, why_not = run.rule_graph_pending.result()
        run = replace(run, rule_graph=graph, rule_graph_error=why_not or "", rule_graph_pending=None)
    if run.rule_graph:
        nodes, edges = run.rule_graph
        fig = figures.rule_graph_figure(edges, nodes)
        caption = (
            f"The {len(nodes)} Snakemake rules of this run and their dependencies (snakemake --rulegraph with the "
            "run's resolved config; the target rule all is left out); an arrow points from the rule that writes a "
            "file to the rule that reads it."
        )
        section.blocks.append(Figure("fig-rulegraph", caption, svg=figures.to_svg(fig, "fig-rulegraph", "Rule graph")))
    else:
        section.blocks.append(not_available("Rule graph", run.rule_graph_error))
    section.blocks.append(Heading("Warnings in the logs", "provenance-warnings"))
    warnings = log_warnings(run.log_patterns) if run.log_patterns else None
    if warnings is None:
        section.blocks.append(not_available("Log warnings", "the workflow did not pass its rules' log patterns"))
    elif warnings.empty:
        section.blocks.append(Note("No WARNING line in any rule's log."))
    else:
        rows = [
            [
                r.rule,
                r.message[:400] + ("\u2026" if len(r.message) > 400 else ""),
                number(r.occurrences),
                number(r.logs),
            ]
            for r in warnings.itertuples()
        ]
        section.blocks.append(
            Table(
                ["rule", "warning (timestamp removed)", "times", "logs"],
                rows,
                caption="Every distinct WARNING line of the rules' logs, with how often it occurred and in how many "
                "jobs' logs.",
                css="compact wrap",
            )
        )
    section.blocks.append(Heading("This run: date, time and memory", "provenance-run"))
    section.blocks.append(Volatile(volatile_blocks(run)))
    return section


def volatile_blocks(run: RunInfo) -> list:
    blocks = [Facts([("run date", run_date())])]
    if not run.benchmark_patterns:
        blocks.append(not_available("Per-rule time and memory", "the workflow did not pass its benchmark patterns"))
        return blocks
    table = benchmark_summary(run.benchmark_patterns)
    if table.empty:
        blocks.append(not_available("Per-rule time and memory", "no benchmark file was found"))
        return blocks
    rows = [
        [
            r["rule"],
            number(int(r["jobs"])),
            f"{r['wall time (s)']:.1f}",
            f"{r['longest job (s)']:.1f}",
            "\u2013" if pd.isna(r["CPU time (s)"]) else f"{r['CPU time (s)']:.1f}",
            "\u2013" if pd.isna(r["peak RSS (MB)"]) else f"{r['peak RSS (MB)']:.0f}",
        ]
        for _, r in table.iterrows()
    ]
    blocks.append(
        Table(
            ["rule", "jobs", "wall time, sum (s)", "longest job (s)", "CPU time (s)", "peak RSS (MB)"],
            rows,
            caption="Per rule, from Snakemake's benchmark files of the jobs that produced the current outputs "
            "(this report's own job is still running and is not listed).",
            css="compact numbers",
        )
    )
    return blocks


__all__ = [
    "RunInfo",
    "config_digest",
    "git_commit",
    "package_versions",
    "run_date",
    "snakemake_rule_graph",
    "parse_rule_graph",
    "benchmark_summary",
    "log_warnings",
    "provenance_section",
]
