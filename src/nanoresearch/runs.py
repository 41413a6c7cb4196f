"""Runs: one per research job or trial session, each with its own workspace folder.

A process that drives a run (`nanoresearch run`, `resume`, `trials run`) holds the run's lock: an
exclusive `flock` on `owner.lock` in its workspace, which names the owner's pid and host. The
kernel releases a flock when its process dies, even on SIGKILL, so "the owner is gone" is exact on
one machine: a run still marked `running` without an owner is shown as `interrupted`, and a second
process is refused while the owner lives.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nanoresearch.config import Settings
from nanoresearch.errors import NanoResearchError, UserError
from nanoresearch.store import Store
from nanoresearch.store.models import Run


def new_run(store: Store, settings: Settings, user_id: int, project: str, goal: str, config: dict[str, Any]) -> Run:
    run_id = f"run-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    workspace = workspace_for(settings, run_id)
    workspace.mkdir(parents=True, exist_ok=False)
    project_id = store.ensure_project(user_id, project, goal)
    return store.create_run(run_id, project_id, goal, str(workspace), config)


def workspace_for(settings: Settings, run_id: str) -> Path:
    return settings.home / "users" / settings.user / "runs" / run_id


def users_run(store: Store, user_id: int, run_id: str | None) -> Run:
    """The user's run with this id, or their latest; never another user's run."""
    runs = store.list_runs(user_id)
    if not runs:
        raise UserError("you have no runs yet", hint="start one with `nanoresearch trials run --task DIR`")
    if run_id is None:
        return runs[-1]
    for run in runs:
        if run.id == run_id:
            return run
    raise UserError(f"no run {run_id!r} for this user", hint="`nanoresearch trials list` shows your runs")


LOCK_FILE = "owner.lock"


@contextmanager
def driving(run: Run) -> Iterator[None]:
    """Hold the run's lock while driving it; SIGTERM meanwhile stops it like Ctrl-C (paused, resumable)."""
    path = Path(run.workspace) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = path.read_text(encoding="utf-8").strip() or "another process"
            raise UserError(f"run {run.id} is already being driven by {owner}",
                            hint="wait for it to finish, or stop that process (Ctrl-C or kill PID) and resume then") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC\n".encode())
        with sigterm_as_interrupt():
            yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """`kill PID` (or a scheduler ending the job) takes the same path as Ctrl-C: the run is paused cleanly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def owner_alive(run: Run) -> bool:
    """Whether some process holds the run's lock right now."""
    path = Path(run.workspace) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def shown_status(run: Run) -> str:
    """The run's status as users should read it: `running` only while its owner lives."""
    return "interrupted" if run.status == "running" and not owner_alive(run) else run.status


def say_how_to_continue(exc: NanoResearchError, run_id: str, command: str, state: str) -> None:
    """End the error's hint with the command that continues this run. A hint may already name
    `nanoresearch resume` (the LLM client's does), which continues research runs only: it is replaced."""
    hint = (exc.hint or "").replace(f"`nanoresearch resume {run_id}`", f"`{command}`")
    if command not in hint:
        hint = (hint + "; then " if hint else "") + f"`{command}` continues it"
    exc.hint = f"{hint} (the run is {state})"
