"""`nanoresearch doctor`: every dependency and service, with a fix for each missing one."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from nanoresearch import __version__
from nanoresearch.cli.common import examples, out, print_table, settings_from

if TYPE_CHECKING:
    from nanoresearch.doctor import Check

app = typer.Typer()


@app.command(epilog=examples("nanoresearch doctor", "nanoresearch doctor --no-model --json"))
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
        rows: list[list[str | Text]] = [[mark(c), c.name, c.detail] for c in checks]
        print_table(f"nanoresearch {__version__} — doctor", ("", "check", "found"), rows, flex="found")
        print_fixes([c for c in checks if not c.ok])
    if not healthy(checks):
        raise typer.Exit(1)


def mark(check: Check) -> Text:
    if check.ok:
        return Text("ok", style="green")
    return Text("FAIL", style="red") if check.required else Text("missing", style="yellow")


def print_fixes(failed: list[Check]) -> None:
    """Each fix on lines of its own below the table, never cut: the commands are there to be copied."""
    if failed:
        out.print("\nto fix:")
    for check in failed:
        out.print(f"  {check.name}: {check.hint}", markup=False, highlight=False)
