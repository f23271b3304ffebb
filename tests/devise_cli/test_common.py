"""The CLI's error translation: domain and OS errors become one-line ``Error: ...`` messages."""
from __future__ import annotations

import click
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
