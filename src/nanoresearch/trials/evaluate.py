"""Scoring a trial: run the task's frozen evaluator against the trial's working copy.

Only the evaluator's output counts. It runs from a fresh copy of its files, taken from the task
folder (never from the trial's copy, which the recipe could have rewritten), in a separate
temporary folder. It finds the trial's outputs through the environment variable
NANORESEARCH_TRIAL_DIR. Whatever the recipe printed or wrote about its own score is ignored.

The command runs through a pluggable runner, `(command, cwd, env, time_s) -> (returncode,
stdout, stderr)`, so the caller can put the evaluator in the sandbox (which should mount
NANORESEARCH_TRIAL_DIR read-only). `subprocess_runner` is the unsandboxed default. A runner
signals a timeout by raising TimeoutError or returning 124, as coreutils' `timeout` does.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from nanoresearch.compute.executor import FailureLabel
from nanoresearch.trials.legality import escaping_symlinks
from nanoresearch.trials.task import Gate, Task

Runner = Callable[[str, Path, dict[str, str], int], tuple[int, str, str]]

TRIAL_DIR_VARIABLE = "NANORESEARCH_TRIAL_DIR"
TIMEOUT_EXIT = 124
TAIL_CHARS = 2000  # of stderr/stdout kept in a failure's detail


class Outcome(BaseModel):
    """What the evaluator made of a trial. A trial with a failure never counts as an improvement,
    even when `score` is set (a missed gate still reports the score it reached)."""

    metrics: dict[str, float] = {}
    score: float | None = None
    failure: FailureLabel | None = None
    detail: str = ""


def run_evaluator(task: Task, workdir: Path, sandbox_runner: Runner | None = None) -> Outcome:
    """Score the trial in `workdir` with the task's evaluator; never raises for a bad trial."""
    workdir = Path(workdir).resolve()
    escapes = escaping_symlinks(workdir)
    if escapes:  # the evaluator would read through them, outside the trial's folder
        return Outcome(failure="illegal_edit", detail="; ".join(escapes))
    runner = sandbox_runner or subprocess_runner
    with tempfile.TemporaryDirectory(prefix="nanoresearch-eval-") as scratch:
        folder = Path(scratch)
        copy_evaluator(task, folder)
        env = base_env(home=folder) | {TRIAL_DIR_VARIABLE: str(workdir)}
        try:
            returncode, stdout, stderr = runner(task.evaluator.command, folder, env, task.evaluator.time_s)
        except TimeoutError:
            returncode, stdout, stderr = TIMEOUT_EXIT, "", ""
        except OSError as exc:  # the machinery failed (no shell, sandbox refused), not the trial
            return Outcome(failure="infra", detail=f"the evaluator could not be started: {exc}")
    return judge(task, returncode, stdout, stderr)


def copy_evaluator(task: Task, folder: Path) -> None:
    """Fresh copies of the evaluator's files from the task folder, keeping their relative paths."""
    for name in task.evaluator.files:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(task.folder / name, target)


def judge(task: Task, returncode: int, stdout: str, stderr: str) -> Outcome:
    """Turn the evaluator's exit code and output into an Outcome."""
    if returncode == TIMEOUT_EXIT:
        return Outcome(failure="timeout", detail=f"the evaluator timed out after {task.evaluator.time_s}s")
    if returncode != 0:
        return Outcome(
            failure="crash", detail=f"the evaluator exited with code {returncode}: {_tail(stderr or stdout)}"
        )
    metrics = parse_metrics(stdout)
    if metrics is None:
        return Outcome(
            failure="crash",
            detail=f"the evaluator printed no JSON object of metrics; its output ended: {_tail(stdout)}",
        )
    score = metrics.get(task.score.metric)
    if score is None:
        return Outcome(
            metrics=metrics,
            failure="crash",
            detail=f"the evaluator's output has no finite number {task.score.metric!r} (it has: {', '.join(metrics) or 'nothing'})",
        )
    missed = [_gate_text(gate, metrics) for gate in task.legality.gates if not gate.passes(metrics)]
    if missed:
        return Outcome(metrics=metrics, score=score, failure="gate_miss", detail="missed gate: " + "; ".join(missed))
    return Outcome(metrics=metrics, score=score)


def parse_metrics(stdout: str) -> dict[str, float] | None:
    """The last stdout line that is a JSON object, keeping its finite numbers; None if no line is."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, dict):
            return {key: float(value) for key, value in found.items() if _is_finite_number(value)}
    return None


def _is_finite_number(value: object) -> bool:
    # bool is an int in Python, but true/false are not metrics; NaN and infinity cannot be ranked
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _gate_text(gate: Gate, metrics: dict[str, float]) -> str:
    value = metrics.get(gate.metric)
    shown = "missing" if value is None else f"{value:.4g}"
    bounds = [f"{word} {bound}" for word, bound in (("≥", gate.min), ("≤", gate.max)) if bound is not None]
    return f"{gate.metric} = {shown}, needs {' and '.join(bounds)}"


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= TAIL_CHARS else "…" + text[-TAIL_CHARS:]


# ---------------------------------------------------------------- the default, unsandboxed runner


def base_env(home: Path) -> dict[str, str]:
    """A cleared environment: this interpreter's bin folder first on PATH, so `python` is the
    venv's python with its packages, and nothing else of ours (no keys, no tokens)."""
    # sys.executable's folder, not its resolved target: the venv's python is usually a symlink
    interpreter_bin = str(Path(sys.executable).parent)
    return {
        "PATH": os.pathsep.join([interpreter_bin, "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
    }


def subprocess_runner(command: str, cwd: Path, env: dict[str, str], time_s: int) -> tuple[int, str, str]:
    """Run `command` with /bin/sh in cwd with exactly `env`; on timeout, kill its whole process group."""
    # A new session, so a timeout kills the shell's children too; killing only the shell would
    # leave them holding the output pipes open and the wait would hang.
    process = subprocess.Popen(
        ["/bin/sh", "-c", command],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=time_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):  # it may have ended on its own meanwhile
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise TimeoutError(f"{command!r} ran past {time_s}s") from None
    return process.returncode, stdout, stderr
