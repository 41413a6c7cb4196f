"""`nanoresearch config show | init`: the configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nanoresearch.cli.common import err, examples, out, settings_from
from nanoresearch.config import init_config_file, settings_as_toml

app = typer.Typer(help="Show or create the configuration.", no_args_is_help=True)


@app.command("show", epilog=examples("nanoresearch config show", "nanoresearch config show --json"))
def config_show(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Print the effective settings (file, environment and flags merged)."""
    settings = settings_from(ctx)
    if as_json:
        out.print_json(settings.model_dump_json())
    else:
        err.print(f"# from {settings.config_file}{'' if settings.config_file.exists() else ' (not created yet)'}")
        out.print(settings_as_toml(settings), markup=False, highlight=False)


@app.command("init", epilog=examples("nanoresearch config init"))
def config_init(ctx: typer.Context, force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False) -> None:
    """Write a starting config.toml in the home folder."""
    home = (ctx.obj or {}).get("home")  # the flag alone, not the settings: --force must mend a broken file
    path = init_config_file(Path(home) if home else None, force=force)
    out.print(f"wrote {path}")
