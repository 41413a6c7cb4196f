"""Scoring a trial: run the task's frozen evaluator against the trial's working copy.

Only the evaluator's output counts. It runs from a fresh copy of its files, taken from the task
folder (never from the trial's copy, which the recipe could have rewritten), in a separate
temporary folder. It finds the trial's outputs through the environment variable
NANORESEARCH_TRIAL_DIR, a folder it may read but not write (JobSpec.readonly). Whatever the
recipe printed or wrote about its own score is ignored.

The evaluator is a job like any other: it runs through the executor protocol, with the limits of
`Resources(time_s=evaluator.time_s)`. By default on a local executor, sandboxed when bubblewrap
works, whatever executor ran the trial: the evaluator reads the trial's folder on this machine
and is short, so it should not queue behind trials on a cluster.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

from pydantic import BaseModel

from nanoresearch.compute.executor import Executor, FailureLabel, JobSpec, JobState, JobStatus, Resources, log_paths
from nanoresearch.compute.local import LocalExecutor
from nanoresearch.errors import NanoResearchError
from nanoresearch.trials.legality import escaping_symlinks
from nanoresearch.trials.task import Gate, Task

TRIAL_DIR_VARIABLE = "NANORESEARCH_TRIAL_DIR"
TIMEOUT_EXIT = 124
TAIL_CHARS = 2000  # of stderr/stdout kept in a failure's detail
OUTPUT_BYTES = 1024 * 1024  # of the evaluator's stdout read back: the metrics line is its last JSON line


class Outcome(BaseModel):
    """What the evaluator made of a trial. A trial with a failure never counts as an improvement,
    even when `score` is set (a missed gate still reports the score it reached)."""

    metrics: dict[str, float] = {}
    score: float | None = None
    failure: FailureLabel | None = None
    detail: str = ""


def run_evaluator(task: Task, workdir: Path, executor: Executor | None = None) -> Outcome:
    """Score the trial in `workdir` with the task's evaluator; never raises for a bad trial.

    executor: where the evaluator runs (default: a new local executor)."""
    workdir = Path(workdir).resolve()
    escapes = escaping_symlinks(workdir)
    if escapes:  # the evaluator would read through them, outside the trial's folder
        return Outcome(failure="illegal_edit", detail="; ".join(escapes))
    executor = executor or LocalExecutor()
    with tempfile.TemporaryDirectory(prefix="nanoresearch-eval-") as scratch:
        spec = evaluator_job(task, Path(scratch) / "evaluator", workdir)  # its logs go beside it, in scratch
        spec.workdir.mkdir()
        copy_evaluator(task, spec.workdir)
        try:
            status = executor.wait(executor.submit(spec))
        except (NanoResearchError, OSError) as exc:  # the machinery failed (sandbox refused), not the trial
            return Outcome(failure="infra", detail=f"the evaluator could not be started: {exc}")
        stdout, stderr = (_read_end(path) for path in log_paths(spec.workdir))
    return judge_job(task, status, stdout, stderr)


def evaluator_job(task: Task, folder: Path, trial_dir: Path) -> JobSpec:
    """The evaluator's job: its own folder, a cleared environment, the trial's folder read-only."""
    return JobSpec(
        name=f"evaluate-{task.name}",
        workdir=folder,
        command=task.evaluator.command,
        env=base_env(home=folder) | {TRIAL_DIR_VARIABLE: str(trial_dir)},
        resources=Resources(time_s=task.evaluator.time_s),
        readonly=[trial_dir],
    )


def copy_evaluator(task: Task, folder: Path) -> None:
    """Fresh copies of the evaluator's files from the task folder, keeping their relative paths."""
    for name in task.evaluator.files:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(task.folder / name, target)


def judge_job(task: Task, status: JobStatus, stdout: str, stderr: str) -> Outcome:
    """Turn how the evaluator's job ended, and what it printed, into an Outcome."""
    if status.state is JobState.TIMEOUT:
        return judge(task, TIMEOUT_EXIT, stdout, stderr)
    if status.failure == "infra":  # lost, cancelled, the node failed: nothing to say about the trial
        return Outcome(failure="infra", detail=f"the evaluator did not finish: {status.detail or status.state.value}")
    if status.state in (JobState.OOM, JobState.DISK):
        return Outcome(failure="crash", detail=f"the evaluator was stopped: {status.detail}")
    code = 0 if status.state is JobState.COMPLETED else status.exit_code or 1
    return judge(task, code, stdout, stderr)


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


def _read_end(path: Path) -> str:
    try:
        with open(path, "rb") as output:
            output.seek(max(0, output.seek(0, os.SEEK_END) - OUTPUT_BYTES))
            return output.read().decode("utf-8", "replace")
    except OSError:  # never written: the job did not start
        return ""


# ---------------------------------------------------------------- the environment


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
