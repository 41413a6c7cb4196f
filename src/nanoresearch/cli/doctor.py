"""`nanoresearch doctor`: every dependency and service, with a fix for each missing one."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from nanoresearch import __version__
from nanoresearch.cli.common import out, settings_from

app = typer.Typer()


@app.command()
def doctor(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
    no_model: Annotated[bool, typer.Option("--no-model", help="Find the local model but do not load it.")] = False,
) -> None:
    """Check every dependency and service NanoResearch can use, with a fix for each missing one."""
    from nanoresearch.doctor import healthy, run_checks

    checks = run_checks(settings_from(ctx), load_model=not no_model)
    if as_json:
        out.print_json(json.dumps([c.model_dump() for c in checks]))
    else:
        table = Table(title=f"nanoresearch {__version__} — doctor", show_lines=False)
        for column in ("", "check", "found", "fix"):
            table.add_column(column)
        for c in checks:
            mark = "[green]ok[/]" if c.ok else ("[red]FAIL[/]" if c.required else "[yellow]missing[/]")
            table.add_row(mark, escape(c.name), escape(c.detail), "" if c.ok else escape(c.hint))
        out.print(table)
    if not healthy(checks):
        raise typer.Exit(1)
