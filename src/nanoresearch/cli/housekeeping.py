"""`nanoresearch rm | archive | mark-failed | open`: tidy up runs and open what they made.

A run that some process is driving right now (it holds the run's lock, see runs.py) is never
deleted, archived or marked failed: stop that process first. A run still marked `running` whose
process is gone (`list` shows it as `interrupted`) is dead, and may be deleted or marked failed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from nanoresearch.cli.common import err, examples, open_run, out
from nanoresearch.errors import UserError
from nanoresearch.store import Store
from nanoresearch.store.models import Run

app = typer.Typer()

RunArgument = Annotated[str, typer.Argument(help="Run id (`nanoresearch list` shows them).")]
TARGETS: dict[str, str] = {"paper": "paper/paper.pdf", "figures": "figures", "workspace": ""}  # under the workspace
VIEWER_TIMEOUT_S = 15  # xdg-open and open hand the file to the viewer and return


@app.command("rm", epilog=examples("nanoresearch rm RUN", "nanoresearch rm RUN --yes"))
def rm(
    ctx: typer.Context,
    run_id: RunArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
) -> None:
    """Delete a run: its rows in the store (steps, trials, model calls, feedback, spending) and its workspace folder."""
    (settings, store, _), record = open_run(ctx, run_id)
    refuse_if_driven(record, "delete")
    workspace = Path(record.workspace)
    if not yes:
        confirm(f"delete run {record.id} ({record.goal}) and its workspace {workspace}?")
    store.delete_run(record.id)
    if owned_workspace(store, record) and workspace.is_dir():
        shutil.rmtree(workspace)
        err.print(f"deleted run {record.id} and {workspace}", highlight=False)
    else:  # a folder outside the home is not ours to delete
        err.print(f"deleted run {record.id}; its folder {workspace} is outside the home and was left as it is",
                  highlight=False)


@app.command("archive", epilog=examples("nanoresearch archive RUN", "nanoresearch archive RUN --undo"))
def archive(
    ctx: typer.Context,
    run_id: RunArgument,
    undo: Annotated[bool, typer.Option("--undo", help="Show the run in `list` again.")] = False,
) -> None:
    """Hide a run from `nanoresearch list` without deleting anything; `list --all` still shows it."""
    (_, store, _), record = open_run(ctx, run_id)
    if not undo:
        refuse_if_driven(record, "archive")
    store.archive_run(record.id, archived=not undo)
    err.print(f"run {record.id} is back in the list" if undo else
              f"archived run {record.id}; `nanoresearch list --all` shows it, `nanoresearch archive {record.id} --undo` "
              "brings it back")


@app.command("mark-failed", epilog=examples("nanoresearch mark-failed RUN"))
def mark_failed(ctx: typer.Context, run_id: RunArgument) -> None:
    """Mark a dead run as failed: one still shown as running (or interrupted, paused) whose process is gone."""
    from nanoresearch.runs import shown_status

    (_, store, _), record = open_run(ctx, run_id)
    refuse_if_driven(record, "mark as failed")
    if record.status in ("done", "failed"):
        raise UserError(f"run {record.id} is already {record.status}", hint="`nanoresearch rm RUN` deletes it")
    was = shown_status(record)
    store.set_run_status(record.id, "failed")
    err.print(f"run {record.id} was {was}; it is marked failed")


@app.command("open", epilog=examples("nanoresearch open RUN paper", "nanoresearch open figures"))
def open_artifact(
    ctx: typer.Context,
    run_id: Annotated[Optional[str], typer.Argument(help="Run id (default: your latest).")] = None,
    what: Annotated[Optional[str], typer.Argument(help="paper, figures or workspace (default).")] = None,
) -> None:
    """Open a run's paper, figures folder or workspace with the system's viewer (xdg-open, or open on macOS);
    its path is printed either way, so that it can be opened by hand where there is no viewer."""
    if what is None and run_id in TARGETS:  # `nanoresearch open paper`: the latest run's
        run_id, what = None, run_id
    target = what or "workspace"
    if target not in TARGETS:
        raise UserError(f"cannot open {target!r}", hint=f"choose one of: {', '.join(TARGETS)}")
    _, record = open_run(ctx, run_id)
    path = Path(record.workspace) / TARGETS[target]
    if not path.exists():
        raise UserError(f"run {record.id} has no {target} yet: {path} does not exist",
                        hint=f"`nanoresearch status {record.id}` shows how far the run got")
    out.print(str(path), markup=False, highlight=False)  # stdout: usable as $(nanoresearch open RUN paper)
    viewer = system_viewer()
    if viewer is None:
        err.print("no system viewer (xdg-open or open) was found; the path is above")
    elif not opened_with(viewer, path):
        err.print(f"{viewer} could not open it; the path is above")


def system_viewer() -> str | None:
    """The command that opens a file with the user's default application, where there is one."""
    return shutil.which("open" if sys.platform == "darwin" else "xdg-open")


def opened_with(viewer: str, path: Path) -> bool:
    try:
        done = subprocess.run([viewer, str(path)], capture_output=True, timeout=VIEWER_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def refuse_if_driven(record: Run, action: str) -> None:
    """A run a live process is driving is left alone; a dead one (status running, no owner) is not."""
    from nanoresearch.runs import LOCK_FILE, owner_alive

    if owner_alive(record):
        owner = (Path(record.workspace) / LOCK_FILE).read_text(encoding="utf-8").strip() or "another process"
        raise UserError(f"cannot {action} run {record.id}: it is running ({owner})",
                        hint="stop it first (Ctrl-C, or kill PID), then try again")


def confirm(question: str) -> None:
    """Ask before deleting; without a terminal to ask on, refuse rather than guess."""
    if not sys.stdin.isatty():
        raise UserError(f"not deleting without a yes: {question}", hint="add --yes to delete without being asked")
    if not typer.confirm(question, default=False, err=True):
        raise typer.Exit(1)


def owned_workspace(store: Store, record: Run) -> bool:
    """Whether the workspace lies inside the home (where `nanoresearch run` puts every workspace)."""
    return Path(record.workspace).absolute().is_relative_to(store.home)
