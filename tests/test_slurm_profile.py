"""What profiles/slurm gives snakemake, read the way snakemake reads it; no cluster needed."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.profiles import ProfileConfigFileParser

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"


def profile_arguments() -> dict:
    """The profile as snakemake's command-line defaults (key -> value or list of key=value)."""
    with PROFILE.open() as stream:
        return dict(ProfileConfigFileParser().parse(stream))


@pytest.fixture
def site(monkeypatch, tmp_path):
    """An environment without SBATCH_* variables whose PATH holds only a scratch bin/ (no Slurm commands)."""
    for name in ("SBATCH_ACCOUNT", "SBATCH_PARTITION"):
        monkeypatch.delenv(name, raising=False)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_the_profile_deploys_no_software_unless_asked():
    arguments = profile_arguments()
    assert not {"software-deployment-method", "sdm", "use-conda", "use-apptainer"} & set(arguments)
    assert arguments["executor"] == "slurm"


def test_jobs_are_sized_by_their_rules_and_not_grouped(site):
    arguments = profile_arguments()
    # memory and wall time come from each rule's measured cost (workflow/rules/resources.smk), not a flat default
    assert not any(r.startswith(("runtime=", "mem_mb=")) for r in arguments.get("default-resources", []))
    assert "set-resources" not in arguments
    # batches bundle per-item work; group jobs would hide a failed job's Slurm state
    assert "group-components" not in arguments and "groups" not in arguments


def test_account_and_partition_come_from_sbatch_variables(site, monkeypatch):
    monkeypatch.setenv("SBATCH_ACCOUNT", "lab42")
    monkeypatch.setenv("SBATCH_PARTITION", "short")
    resources = profile_arguments()["default-resources"]
    assert "slurm_account=lab42" in resources and "slurm_partition=short" in resources


def test_without_sbatch_account_the_account_is_the_users_default_in_slurm_accounting(site):
    # sacctmgr as Slurm answers `sacctmgr -n -P show user NAME format=DefaultAccount`
    sacctmgr = site / "sacctmgr"
    sacctmgr.write_text('#!/bin/sh\n[ "$4" = "user" ] && [ "$6" = "format=DefaultAccount" ] && echo lab7\n')
    sacctmgr.chmod(0o755)
    resources = profile_arguments()["default-resources"]
    assert "slurm_account=lab7" in resources
    assert not any(r.startswith("slurm_partition=") for r in resources)  # the cluster's default partition


def test_without_any_account_source_the_profile_sets_none(site):
    resources = profile_arguments().get("default-resources") or []
    assert not any(r.startswith(("slurm_account=", "slurm_partition=")) for r in resources)


def test_status_checks_use_squeue_which_reports_a_cancelled_job_as_cancelled():
    # sacct says "CANCELLED by <uid>", which the plugin does not take for a failure
    arguments = profile_arguments()
    assert arguments["slurm-status-command"] == "squeue"
    assert int(arguments["retries"]) >= 1


def test_the_profile_merged_into_every_run_sets_no_cores():
    # snakemake merges profiles/default beside the Snakefile into every run, cluster runs included:
    # cores there would cap every cluster job and the whole cluster run
    default = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    assert "cores" not in default and "jobs" not in default and default["rerun-incomplete"] is True


def test_a_cluster_dry_run_uses_the_slurm_profile(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm", reason='the SLURM plugin is not installed (".[slurm]")')
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    (tmp_path / "tiny.yaml").write_text((REPO / "tests" / "data" / "tiny.yaml").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBATCH_", "SNAKEMAKE_"))}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--profile", str(PROFILE.parent)]
        + ["--configfile", "tiny.yaml", "-n"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert re.search(rf"Using profiles? {re.escape(str(PROFILE.parent))} ", output), output[:3000]
    assert "corpus" in output.split("Job stats:")[1]
    # the corpus job is sized before the corpus exists: from the synthetic source's settings
    corpus_job = output.split("checkpoint corpus:")[1].split("Shell command")[0]
    assert re.search(r"mem_mb=\d+", corpus_job) and re.search(r"runtime=\d+", corpus_job), corpus_job


def cluster_dry_run(workdir: Path, *args: str, environment: dict | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBATCH_", "SNAKEMAKE_", "CALCSIG_"))}
    env.update(environment or {})
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--profile", str(PROFILE.parent)]
        + ["--configfile", "tiny.yaml", "-n", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=env,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


def test_every_cluster_job_asks_for_its_measured_size_and_checks_run_locally(finished_tiny_run):
    pytest.importorskip("snakemake_executor_plugin_slurm", reason='the SLURM plugin is not installed (".[slurm]")')
    # replan everything after the corpus, without running it
    output = cluster_dry_run(finished_tiny_run, "--forcerun", "partition")
    jobs = re.findall(r"^( *)(local)?(?:rule|checkpoint) (\w+):\n(.*?)\n\1Shell command", output, re.M | re.S)
    assert jobs, output[-3000:]
    for indent, local, rule, body in jobs:
        if rule == "all":  # the target rule runs nothing
            continue
        if local:
            assert rule in {"all", "check_corpus", "check_cohort", "cohort", "gather_predictions"}
            continue
        resources = re.search(r"resources: (.*)", body).group(1)
        assert re.search(r"\bmem_mb=\d+", resources) and re.search(r"\bruntime=\d+", resources), (rule, resources)
        assert not indent, f"{rule} was planned inside a group job"


def planned_threads(output: str) -> dict[str, int]:
    """Rule -> threads of its jobs in a dry run's plan (snakemake prints `threads:` only above 1)."""
    jobs = re.findall(r"^( *)(local)?(?:rule|checkpoint) (\w+):\n(.*?)\n\1Shell command", output, re.M | re.S)
    found = {}
    for _, _, rule, body in jobs:
        threads = re.search(r"^\s*threads: (\d+)$", body, re.M)
        found[rule] = int(threads.group(1)) if threads else 1
    return found


@pytest.mark.parametrize("node_cores", [None, "8"])
def test_calcsig_node_cores_gives_each_whole_corpus_job_a_nodes_cores(finished_tiny_run, node_cores):
    pytest.importorskip("snakemake_executor_plugin_slurm", reason='the SLURM plugin is not installed (".[slurm]")')
    environment = {} if node_cores is None else {"CALCSIG_NODE_CORES": node_cores}
    # a dry run caps threads at --cores (1 unless given); a cluster run has no such cap (test_slurm.py)
    replan = ("--forcerun", "partition", "--cores", "64")
    threads = planned_threads(cluster_dry_run(finished_tiny_run, *replan, environment=environment))
    expected = int(node_cores or 2)  # README: 2 by default, which any node has
    for rule in ("partition", "train_selector", "evaluate_segmentation", "gather_features"):
        assert threads[rule] == expected, (rule, threads)
    for rule in ("masks", "features", "model_fold"):
        assert threads[rule] == 1, (rule, threads)
