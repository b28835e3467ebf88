"""A calcsig error ends a job as one short block, traceback kept in the log; a failed write names its output."""

import errno
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from calcsig.errors import CalcsigError, ConfigError, IngestError, OutputWriteError
from calcsig.logs import error_block
from calcsig.paths import atomic_path

REPO = Path(__file__).resolve().parents[1]


def run_job(tmp_path: Path, body: str) -> tuple[subprocess.CompletedProcess, str]:
    """Run `body` inside log_to, in a fresh Python as a workflow script runs; (result, log text)."""
    script = tmp_path / "job.py"
    log = tmp_path / "job.log"
    script.write_text(
        "from calcsig.logs import log_to\n"
        "from calcsig.errors import IngestError\n"
        f"with log_to({str(log)!r}) as log:\n" + textwrap.indent(textwrap.dedent(body), "    ")
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    return result, log.read_text()


def test_a_calcsig_error_prints_one_short_block_and_exits_with_status_1(tmp_path):
    result, log = run_job(tmp_path, "raise IngestError('CSV manifest m.csv', ['m.csv row 2, column label: unknown'])")
    assert result.returncode == 1
    assert result.stderr == (
        "calcsig error (IngestError): CSV manifest m.csv: 1 problem(s)\n"
        "  - m.csv row 2, column label: unknown\n"
        f"How to fix: {IngestError.hint}\n"
        f"The traceback is in {tmp_path / 'job.log'}.\n"
    )
    assert "Traceback" not in result.stderr


def test_the_log_holds_the_traceback_first_and_the_same_block_last(tmp_path):
    result, log = run_job(tmp_path, "log.info('working')\nraise IngestError('CSV manifest m.csv', ['row 2: bad'])")
    assert log.index("working") < log.index("Traceback (most recent call last)") < log.index("ERROR calcsig:")
    assert log.rstrip().endswith(result.stderr.rstrip())


def test_an_unexpected_exception_keeps_its_traceback(tmp_path):
    result, log = run_job(tmp_path, "{}['missing']")
    assert result.returncode == 1
    assert result.stderr.count("Traceback (most recent call last)") == 1
    assert result.stderr.rstrip().endswith("KeyError: 'missing'")
    assert "job failed" in log and "KeyError: 'missing'" in log


def test_the_block_gives_the_class_hint_or_the_errors_own():
    assert error_block(ConfigError("config key 'seed': -1 is less than the minimum of 0")).splitlines() == [
        "calcsig error (ConfigError): config key 'seed': -1 is less than the minimum of 0",
        f"How to fix: {ConfigError.hint}",
    ]
    own = CalcsigError("images.tsv row 3: no pixels", hint="Set corpus.cbis_ddsm.image_root.")
    assert error_block(own, "logs/x.log").splitlines()[1:] == [
        "How to fix: Set corpus.cbis_ddsm.image_root.",
        "The traceback is in logs/x.log.",
    ]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to make the kernel report a full disk")
def test_a_full_disk_names_the_output_being_written(tmp_path):
    target = tmp_path / "results" / "segment" / "img1.npz"
    with pytest.raises(OutputWriteError) as error:
        with atomic_path(target) as tmp, open("/dev/full", "wb") as device:
            tmp.write_bytes(b"partial")
            device.write(b"x" * 65536)
            device.flush()
    assert str(error.value) == f"no space left on device while writing {target}"
    assert error.value.errno == errno.ENOSPC and isinstance(error.value, OSError)
    assert list(target.parent.iterdir()) == []


def test_a_write_beyond_the_file_size_limit_names_the_output_and_leaves_nothing(tmp_path):
    """The write itself fails (RLIMIT_FSIZE), as it does on a full or over-quota disk."""
    script = textwrap.dedent(
        f"""
        import resource, signal
        from calcsig.paths import atomic_path
        from calcsig.errors import OutputWriteError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            with atomic_path({str(tmp_path / "out" / "table.tsv")!r}) as tmp:
                tmp.write_text("x" * 100000)
        except OutputWriteError as error:
            print(error)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.strip() == (
        f"file too large for the file system or the process's file size limit while writing "
        f"{tmp_path / 'out' / 'table.tsv'}"
    )
    assert list((tmp_path / "out").iterdir()) == []


def without_root_powers() -> list[str]:
    """Command prefix under which permissions bind: none for an ordinary user; for root,
    setpriv without the capabilities that override file permissions."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permissions cannot be made to bind")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


def test_an_unwritable_output_folder_is_named(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    folder.chmod(0o555)
    script = textwrap.dedent(
        f"""
        from calcsig.paths import atomic_path
        from calcsig.errors import OutputWriteError
        try:
            with atomic_path({str(folder / "a.tsv")!r}) as tmp:
                tmp.write_text("a")
        except OutputWriteError as error:
            print(error)
        """
    )
    try:
        result = subprocess.run([*without_root_powers(), sys.executable, "-c", script], capture_output=True, text=True)
    finally:
        folder.chmod(0o755)
    assert result.stdout.strip() == f"permission denied while writing {folder / 'a.tsv'}", result.stderr
    assert list(folder.iterdir()) == []


def test_other_errors_inside_a_write_pass_through_unchanged(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "a.tsv"):
            open(tmp_path / "missing-input.tsv")
    assert list(tmp_path.iterdir()) == []
