"""What the pages show, read from the store and the run's workspace (read-only), shaped as pydantic rows."""

from __future__ import annotations

from collections import deque
from pathlib import Path

from pydantic import BaseModel

from nanoresearch.errors import UserError
from nanoresearch.runs import shown_status, users_run
from nanoresearch.store import Store
from nanoresearch.store.models import Run, Step, Trial
from nanoresearch.trials.lineage import head

LOG_FILE = "log.jsonl"  # where RunContext.log appends the run's events
FIGURE_SUFFIXES = {".png", ".jpg", ".jpeg", ".svg", ".gif"}
MAX_LISTED_FILES = 200  # a runaway workspace must not make the run page slow


class NotFound(Exception):
    """The thing does not exist for this user; answered as 404 whether it is missing or someone else's."""


class RunRow(BaseModel):
    id: str
    goal: str
    status: str
    stage: str
    best: float | None
    baseline: float | None
    tokens: float
    usd: float
    started: str


class StageRow(BaseModel):
    stage: str
    status: str
    steps: list[str]
    first: str
    last: str


def owned_run(store: Store, user_id: int, run_id: str) -> Run:
    try:
        return users_run(store, user_id, run_id)
    except UserError:
        raise NotFound(run_id) from None


def owned_trial(store: Store, run: Run, trial_id: int) -> Trial:
    trial = next((t for t in store.trials(run.id) if t.id == trial_id), None)
    if trial is None:
        raise NotFound(trial_id)
    return trial


def direction(run: Run) -> str:
    return run.config.get("direction", "maximize")


def run_rows(store: Store, user_id: int) -> list[RunRow]:
    """Newest first: the run being watched is usually the latest."""
    return [run_row(store, user_id, run) for run in reversed(store.list_runs(user_id))]


def run_row(store: Store, user_id: int, run: Run) -> RunRow:
    trials = store.trials(run.id)
    best = head(trials, direction(run))
    baseline = next((t for t in trials if t.proposer == "baseline" and t.status == "done"), None)
    spent = store.spent(user_id, run.id)
    steps = store.steps(run.id)
    return RunRow(
        id=run.id, goal=run.goal, status=shown_status(run), stage=steps[-1].stage if steps else "",
        best=best.score if best else None, baseline=baseline.score if baseline else None,
        tokens=spent.get("tokens", 0.0), usd=spent.get("usd", 0.0), started=run.created_at,
    )


def timeline(steps: list[Step]) -> list[StageRow]:
    """One row per stage, in the order stages first appeared; a stage's status is its worst step's."""
    by_stage: dict[str, list[Step]] = {}
    for step in steps:
        by_stage.setdefault(step.stage, []).append(step)
    return [_stage_row(stage, group) for stage, group in by_stage.items()]


def _stage_row(stage: str, group: list[Step]) -> StageRow:
    statuses = {s.status for s in group}
    status = next(s for s in ("failed", "running", "done") if s in statuses)
    stamps = sorted(s.updated_at for s in group)
    return StageRow(stage=stage, status=status, steps=[s.step for s in group], first=stamps[0], last=stamps[-1])


def log_tail(run: Run, lines: int = 40) -> list[str]:
    path = Path(run.workspace) / LOG_FILE
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n") for line in deque(handle, maxlen=lines)]
    except OSError:
        return []


def workspace_files(run: Run, suffixes: set[str]) -> list[str]:
    """Files under the workspace with these suffixes, as workspace-relative paths; symlinks are skipped
    so that a listed file is never outside the workspace."""
    root = Path(run.workspace)
    found: list[str] = []
    for path in sorted(root.rglob("*")) if root.is_dir() else []:
        if path.suffix.lower() in suffixes and path.is_file() and not path.is_symlink():
            found.append(path.relative_to(root).as_posix())
            if len(found) >= MAX_LISTED_FILES:
                break
    return found


def fingerprint(store: Store, run: Run) -> str:
    """Changes whenever a step or trial of the run is added or updated: what live updates watch."""
    steps = store.steps(run.id)
    trials = store.trials(run.id)
    last_step = max((s.updated_at for s in steps), default="")
    trial_states = ",".join(f"{t.id}:{t.status}:{t.kept}:{t.score}" for t in trials)
    return f"{len(steps)}|{last_step}|{trial_states}|{store.get_run(run.id).status}"
