"""README says each option's DEVISE_… environment variable is shown in ``--help``: every command's is."""
from __future__ import annotations

import click
from click.testing import CliRunner

from devise_cli.cli import COMMANDS, LazyGroup, main


def commands():
    """``(words, command)`` of every command and sub-command."""
    def walk(words, command):
        yield words, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(words + [name], sub)

    for name in COMMANDS:
        yield from walk(name.split(), LazyGroup._load(name))


def test_every_option_s_environment_variable_is_in_its_help():
    checked = 0
    for words, command in commands():
        options = [p for p in command.params if isinstance(p, click.Option) and p.envvar]
        if not options:
            continue
        res = CliRunner().invoke(main, [*words, "--help"], terminal_width=200)
        assert res.exit_code == 0, res.output
        text = " ".join(res.output.split())
        for option in options:
            assert f"env var: {option.envvar}" in text, f"devise {' '.join(words)} --help: {option.envvar}"
            checked += 1
    assert checked >= 20
