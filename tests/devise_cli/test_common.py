"""The CLI's error translation: domain and OS errors become one-line ``Error: ...`` messages."""
from __future__ import annotations

import os
import signal

import click
import pytest
from click.testing import CliRunner

from devise_cli.common import domain_errors
from wordnet.base.errors import VocabularyError
from wordnet.base.files import atomic_write


@click.command()
@click.argument("out")
@click.option("--domain", is_flag=True)
@domain_errors
def write(out, domain):
    if domain:
        raise VocabularyError(f"{out} is not a devise vocabulary; build one with `devise vocab build`")
    with atomic_write(out) as fh:
        fh.write("x")


def test_domain_error_is_one_line_exit_1(tmp_path):
    result = CliRunner().invoke(write, [str(tmp_path / "v.h5"), "--domain"])
    assert result.exit_code == 1
    assert result.output == (f"Error: {tmp_path / 'v.h5'} is not a devise vocabulary; "
                             f"build one with `devise vocab build`\n")


def test_unwritable_output_is_one_line_naming_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(write, [str(blocker / "out.txt")])
    assert result.exit_code == 1
    assert result.output == f"Error: {blocker}: File exists\n"
    assert "Traceback" not in result.output
    assert blocker.read_text() == "not a folder"


class InterruptedInFinaliser:
    """Ctrl-C arriving while a finaliser runs (TensorFlow objects freed during clean-up)."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)  # the real signal: the handler runs inside __del__


@click.command()
@domain_errors
def cleanup():
    InterruptedInFinaliser()  # freed at once: the KeyboardInterrupt is raised inside __del__, where Python drops it
    click.echo("finished")


@pytest.fixture
def ctrl_c_interrupts():
    """Ctrl-C's default handler for the test, whatever the runner inherited (a job started with ``&`` or
    nohup ignores SIGINT); the inherited one is put back after."""
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, inherited)


def test_a_ctrl_c_inside_a_finaliser_still_ends_the_command(capfd, ctrl_c_interrupts):
    """Python cannot raise KeyboardInterrupt out of __del__: it prints a traceback and goes on, and
    the command used to exit 0. It must end as interrupted, without the traceback."""
    result = CliRunner().invoke(cleanup, [])
    assert result.exit_code == 1
    assert result.output.endswith("Error: interrupted; files already finished were kept\n")
    assert "Exception ignored" not in capfd.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back


def test_a_command_told_to_ignore_ctrl_c_keeps_ignoring_it():
    inherited = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        result = CliRunner().invoke(cleanup, [])
        assert (result.exit_code, result.output) == (0, "finished\n")  # the signal sent was ignored
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, inherited)


def test_a_full_disk_names_the_file_and_what_to_do(tmp_path):
    import errno

    @click.command()
    @domain_errors
    def full():
        with atomic_write(tmp_path / "out.json") as fh:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), fh.name)  # the temporary file's name

    result = CliRunner().invoke(full, [])
    assert result.exit_code == 1
    assert result.output == (f"Error: {tmp_path / 'out.json'}: No space left on device; free some space there (or "
                             f"write elsewhere) and run the command again; finished files were kept\n")
    assert list(tmp_path.iterdir()) == []


@click.command()
@domain_errors
def interrupted_in_c_code():
    try:
        os.kill(os.getpid(), signal.SIGINT)  # the handler raises KeyboardInterrupt here ...
    except KeyboardInterrupt as exc:  # ... which C code (h5py's lock in a Cython callback) turns into this
        raise SystemError("<cyfunction FastRLock.__exit__> returned a result with an exception set") from exc


def test_a_ctrl_c_turned_into_another_exception_by_c_code_still_reads_interrupted(ctrl_c_interrupts):
    result = CliRunner().invoke(interrupted_in_c_code, [])
    assert (result.exit_code, result.output) == (1, "Error: interrupted; files already finished were kept\n")
