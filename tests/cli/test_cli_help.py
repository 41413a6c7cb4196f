"""Every command's `--help` ends with real examples of that command, whose flags the command takes, and
boolean flags read as flags (no `<bool>` as if they took a value)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main

from helpers import run_cli
from nanoresearch.cli.app import app
from nanoresearch.cli.common import flags_take_no_value


def leaf_commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        yield path, command
        return
    for name, sub in subcommands.items():
        yield from leaf_commands(sub, (*path, name))


ROOT = typer.main.get_command(app)
flags_take_no_value(ROOT)  # as main() does
COMMANDS = dict(leaf_commands(ROOT))


def example_lines(help_text: str) -> list[str]:
    """The example commands after the help's `Example:` / `Examples:` heading."""
    tail = re.split(r"Examples?:", help_text, maxsplit=1)[1]
    return [line.strip(" │") for line in tail.splitlines() if line.strip(" │").startswith("nanoresearch ")]


def flags_of(command: Any) -> set[str]:
    return {name for param in command.params for name in (*param.opts, *getattr(param, "secondary_opts", []))}


@pytest.fixture(autouse=True)
def wide(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # help's own console: an example on one line, as a wide terminal shows it


def test_every_command_is_walked() -> None:
    assert len(COMMANDS) > 40 and ("rm",) in COMMANDS and ("trials", "run") in COMMANDS


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_help_ends_with_examples_of_the_command(capsys, monkeypatch, path) -> None:
    result = run_cli(capsys, monkeypatch, *path, "--help")
    assert result.code == 0
    assert re.search(r"Examples?:", result.out), f"`nanoresearch {' '.join(path)} --help` shows no example"
    found = example_lines(result.out)
    assert found, result.out
    for line in found:
        words = shlex.split(line.split(" | ")[0])[1:]
        assert tuple(words[:len(path)]) == path, line  # an example of this very command
        unknown = {w.split("=")[0] for w in words if w.startswith("-")} - flags_of(COMMANDS[path])
        assert not unknown, f"{line}: the command has no {unknown}"
    assert "<bool>" not in result.out


def test_a_boolean_flag_reads_as_a_flag(capsys, monkeypatch) -> None:
    shown = run_cli(capsys, monkeypatch, "rm", "--help").out
    line = next(line for line in shown.splitlines() if "--yes" in line)
    assert "-y" in line and "<bool>" not in line and "Delete without asking" in line
