"""What every command shares: the console pair, the session a command works in (settings, store,
user) and how our errors reach the user (message, hint, exit code)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, NamedTuple

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperOption

from nanoresearch.config import Settings, load_settings
from nanoresearch.errors import (
    ConfigError,
    LiteratureError,
    LLMError,
    NanoResearchError,
    StoreError,
    UserError,
)
from nanoresearch.runs import users_run
from nanoresearch.store import Store
from nanoresearch.store.models import Run

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)  # paths in messages must stay copyable


def settings_from(ctx: typer.Context) -> Settings:
    """The settings for this invocation: file, environment, then the global flags (--home, --user)."""
    return load_settings(ctx.obj or {})


def short(text: str, width: int) -> str:
    """Text on one line, cut to `width` characters with an ellipsis: for table cells and tree labels."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


FLEX_MIN = 12  # the free-text column keeps at least this many characters before other columns go


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str | Text]], *, flex: str,
                droppable: Sequence[str] = ()) -> None:
    """A table with every cell on one line that fits the output's width (a pipe's is $COLUMNS or 80)
    without cutting what people copy: when it is too narrow, the `droppable` columns go first, in
    that order, then the free-text `flex` column is cut with an ellipsis. No other cell is ever cut:
    should even that not fit, the table is printed wider than the terminal."""
    def natural(name: str) -> int:
        index = columns.index(name)
        return max([len(name), *(len(row[index]) for row in rows)])

    def fixed(names: list[str]) -> int:  # the width of everything but the free text, borders included
        return sum(natural(name) for name in names if name != flex) + 3 * len(names) + 1

    shown = list(columns)
    for name in droppable:
        if fixed(shown) + min(FLEX_MIN, natural(flex)) <= out.width:
            break
        shown.remove(name)
    room = max(out.width - fixed(shown), min(FLEX_MIN, natural(flex)))
    table = Table(title=title, width=None if fixed(shown) + room <= out.width else fixed(shown) + room)
    for name in shown:
        table.add_column(name, no_wrap=True)
    for row in rows:
        cells = dict(zip(columns, row, strict=True))
        cells[flex] = short(str(cells[flex]), room)
        table.add_row(*(Text(value) if isinstance(value, str) else value for value in (cells[name] for name in shown)))
    out.print(table)


JsonOption = Annotated[bool, typer.Option("--json", help="Print it as JSON, for a program to read.")]


def print_json(data: object) -> None:
    """`--json`: the data as indented JSON on stdout, raw (no colour, no wrapping) for a program to read."""
    typer.echo(json.dumps(data, indent=2, default=str))


def examples(*commands: str) -> str:
    """The end of a command's help (Typer's `epilog=`): one or two real examples, one per line."""
    return "\n".join(["Examples:", *(f"  {escape(command)}" for command in commands)])  # help is Rich markup


def flags_take_no_value(command: Any) -> None:  # a command or group of Typer's own (vendored) click
    """Typer labels a boolean flag `<bool>` in help, as if it took a value: an empty label shows
    `--yes -y` as the flag it is. Applied to the whole command tree once, before it runs."""
    for param in [*command.params, command.get_help_option(typer.Context(command))]:  # --help is made on demand
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        flags_take_no_value(sub)


class Session(NamedTuple):
    """What a command that reads or writes the store works with. Closing it closes the store;
    it unpacks as `settings, store, user_id`."""

    settings: Settings
    store: Store
    user_id: int

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.close()


def session(ctx: typer.Context) -> Session:
    """Load the settings, open the store and make sure the acting user exists in it: the one way a
    command gets at the store, as `with session(ctx) as (settings, store, user_id):`."""
    settings = settings_from(ctx)
    store = Store(settings.db_path)
    return Session(settings, store, store.ensure_user(settings.user))


def checked_executor(name: str) -> str:
    """An `--executor` value must name a known executor (built-in or plug-in): checked before any
    work, not when the experiment stage first needs it."""
    from nanoresearch.compute.executor import EXECUTORS

    EXECUTORS.require(name, fix="choose one with --executor, or install the plug-in that provides it")
    return name


def open_run(ctx: typer.Context, run_id: str | None) -> tuple[Session, Run]:
    """The session and the user's run with this id (their latest without one); never another user's.
    The store stays open for the rest of the command."""
    opened = session(ctx)
    return opened, users_run(opened.store, opened.user_id, run_id)


class Failure(BaseModel):
    """An error as the user sees it: one message, one fix, one exit code."""

    message: str
    hint: str
    exit_code: int


# The fix to suggest when an error carries none of its own; the most specific class wins.
FALLBACK_HINTS: dict[type[NanoResearchError], str] = {
    ConfigError: "change the setting named above, or remove it to get its default (docs/configuration.md lists them all)",
    UserError: "add --help to the command to see what it accepts",
    StoreError: "`nanoresearch doctor` checks the store and says how to fix it",
    LLMError: "`nanoresearch doctor` checks each configured endpoint and model",
    LiteratureError: "try again later, or search offline with --offline --corpus DIR",
    NanoResearchError: "`nanoresearch doctor` checks every dependency and service",
}


def failure(exc: NanoResearchError) -> Failure:
    """How an error of ours is shown: its own message and hint (or its class's), its class's exit code."""
    fallback = next(FALLBACK_HINTS[cls] for cls in type(exc).__mro__ if cls in FALLBACK_HINTS)
    return Failure(message=exc.message, hint=exc.hint or fallback, exit_code=exc.exit_code)


def report(exc: NanoResearchError) -> int:
    """Print the error as `error: …` and `hint: …` on stderr, never a traceback; return its exit code."""
    shown = failure(exc)
    err.print(f"[red]error:[/] {escape(shown.message)}", highlight=False)
    err.print(f"[dim]hint: {escape(shown.hint)}[/]", highlight=False)
    return shown.exit_code
