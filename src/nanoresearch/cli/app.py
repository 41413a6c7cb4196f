"""The `nanoresearch` command line: the root app, its global options, the command groups and main()."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from nanoresearch import __version__
from nanoresearch.cli import (
    config,
    doctor,
    eval,
    housekeeping,
    knowledge,
    literature,
    llm,
    policy,
    profile,
    research,
    trials,
    watch,
    web,
)
from nanoresearch.cli.common import err, flags_take_no_value, out, report
from nanoresearch.errors import NanoResearchError

app = typer.Typer(
    name="nanoresearch",
    help="Automated research that co-evolves with you: literature, experiments, a reviewed paper.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Every command module exposes a `typer.Typer` named `app`, mounted here with add_typer: under its
# name when the module is one command group, merged into the root when it holds top-level commands
# (`run`, `init`, `ui`, `doctor`) or several groups (`skills` and `memory`).
app.add_typer(research.app)  # run, resume, status, list, show, export, feedback
app.add_typer(watch.app)  # watch
app.add_typer(housekeeping.app)  # rm, archive, mark-failed, open
app.add_typer(profile.app)  # init, and the profile group
app.add_typer(web.app)  # ui
app.add_typer(doctor.app)  # doctor
app.add_typer(config.app, name="config")
app.add_typer(llm.app, name="llm")
app.add_typer(trials.app, name="trials")
app.add_typer(literature.app, name="literature")
app.add_typer(policy.app, name="policy")
app.add_typer(knowledge.app)  # the skills and memory groups
app.add_typer(eval.app, name="eval")  # eval run, resume, report, search


def _version(value: bool) -> None:
    if value:
        out.print(f"nanoresearch {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    home: Annotated[Optional[Path], typer.Option(help="Home folder (default ~/.nanoresearch or $NANORESEARCH_HOME).")] = None,
    user: Annotated[Optional[str], typer.Option(help="Act as this user (default: your login name).")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    ctx.obj = {"home": str(home) if home else None, "user": user}


def main() -> None:
    """The console script: our errors become a message, a hint and an exit code, never a traceback."""
    try:
        command = typer.main.get_command(app)
        flags_take_no_value(command)
        command()
    except NanoResearchError as exc:
        sys.exit(report(exc))
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
