"""Runs: one per research job or trial session (the run's `kind`), each with its own workspace folder.

Both kinds live through the same `lifecycle` (created, running, then done; paused, stopped by the
budget or failed when something stops them), driven from the CLI by `drive`.

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

from nanoresearch.config import Settings
from nanoresearch.errors import BudgetExhausted, EndpointUnavailableError, NanoResearchError, RunInterrupted, UserError
from nanoresearch.store import Store
from nanoresearch.store.models import Run, RunKind, RunOptions


def new_run(store: Store, settings: Settings, user_id: int, project: str, goal: str, options: RunOptions, *,
            kind: RunKind) -> Run:
    run_id = f"run-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    workspace = workspace_for(settings, run_id)
    workspace.mkdir(parents=True, exist_ok=False)
    project_id = store.ensure_project(user_id, project, goal)
    return store.create_run(run_id, project_id, goal, str(workspace), options, kind=kind)


def workspace_for(settings: Settings, run_id: str) -> Path:
    return settings.home / "users" / settings.user / "runs" / run_id


def users_run(store: Store, user_id: int, run_id: str | None) -> Run:
    """The user's run with this id, or their latest; never another user's run."""
    runs = store.list_runs(user_id)
    if not runs:
        raise UserError("you have no runs yet", hint='start a research run with `nanoresearch run "GOAL"` '
                        "(or a trial session on a task folder with `nanoresearch trials run --task DIR`)")
    if run_id is None:
        return runs[-1]
    for run in runs:
        if run.id == run_id:
            return run
    raise UserError(f"no run {run_id!r} for this user", hint="`nanoresearch list` shows your runs")


@contextmanager
def drive(store: Store, run: Run, again: str) -> Iterator[None]:
    """Drive a run of either kind from this process, its `lifecycle` inside: hold the run's lock
    (`driving`), and let whatever stops the run reach the user as one message whose hint ends with
    `again`, the command that continues it; Ctrl-C and SIGTERM as RunInterrupted (exit code 130)."""
    with driving(run):
        try:
            yield
        except KeyboardInterrupt:
            raise RunInterrupted("interrupted; the run is paused", hint=f"`{again}` continues it") from None
        except NanoResearchError as exc:
            say_how_to_continue(exc, run.id, again, shown_status(store.get_run(run.id)))
            raise


@contextmanager
def lifecycle(store: Store, run_id: str) -> Iterator[None]:
    """The run's status while this process drives it, the same for both kinds: `running`, then `done`
    when the body returns. A stop is recorded before it propagates, so no run is left `running` by a
    dead process: a spent budget stops the run (`stopped: budget`, paused until `resume --budget`);
    Ctrl-C, SIGTERM and an unreachable model pause it; anything else, a bug included, fails it."""
    store.set_run_status(run_id, "running")
    try:
        yield
    except BudgetExhausted:
        store.stop_run(run_id, "budget")
        raise
    except (KeyboardInterrupt, EndpointUnavailableError):
        store.set_run_status(run_id, "paused")
        raise
    except Exception:
        store.set_run_status(run_id, "failed")
        raise
    store.set_run_status(run_id, "done")


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
    """The run's status as users should read it: `running` only while its owner lives; a run its
    budget stopped says so (`stopped: budget`)."""
    if run.stop_reason:
        return f"stopped: {run.stop_reason}"
    return "interrupted" if run.status == "running" and not owner_alive(run) else run.status


def say_how_to_continue(exc: NanoResearchError, run_id: str, command: str, state: str) -> None:
    """End the error's hint with the command that continues this run. A hint may already name
    `nanoresearch resume` (the LLM client's does), which continues research runs only: it is replaced.
    A hint that asks for a task folder (`--task DIR`) gets the flag into the command too."""
    if "--task DIR" in (exc.hint or "") and "--task" not in command:
        command += " --task DIR"
    hint = (exc.hint or "").replace(f"`nanoresearch resume {run_id}`", f"`{command}`")
    if command not in hint:
        hint = (hint + "; then " if hint else "") + f"`{command}` continues it"
    exc.hint = f"{hint} (the run is {state})"
