"""What profiles/slurm gives snakemake, read the way snakemake reads it; no cluster needed."""

import os
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


def test_defaults_for_every_job_are_set_and_per_rule_resources_stay_per_rule(site):
    arguments = profile_arguments()
    assert {"runtime=30", "mem_mb=2000"} <= set(arguments["default-resources"])
    assert {"corpus:runtime=60", "corpus:mem_mb=8000"} <= set(arguments["set-resources"])


def test_account_and_partition_come_from_sbatch_variables(site, monkeypatch):
    monkeypatch.setenv("SBATCH_ACCOUNT", "lab42")
    monkeypatch.setenv("SBATCH_PARTITION", "short")
    resources = profile_arguments()["default-resources"]
    assert "slurm_account=lab42" in resources and "slurm_partition=short" in resources
    assert "runtime=30" in resources  # the variables add to the defaults, they do not replace them


def test_without_sbatch_account_the_account_is_the_users_default_in_slurm_accounting(site):
    # sacctmgr as Slurm answers `sacctmgr -n -P show user NAME format=DefaultAccount`
    sacctmgr = site / "sacctmgr"
    sacctmgr.write_text('#!/bin/sh\n[ "$4" = "user" ] && [ "$6" = "format=DefaultAccount" ] && echo lab7\n')
    sacctmgr.chmod(0o755)
    resources = profile_arguments()["default-resources"]
    assert "slurm_account=lab7" in resources
    assert not any(r.startswith("slurm_partition=") for r in resources)  # the cluster's default partition


def test_without_any_account_source_the_profile_sets_none(site):
    resources = profile_arguments()["default-resources"]
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
    assert f"Using profile {PROFILE.parent} for setting default command line arguments" in output
    assert "corpus" in output.split("Job stats:")[1]
