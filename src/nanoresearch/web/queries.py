"""What the pages show, read from the store and the run's workspace (read-only), shaped as pydantic rows."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from nanoresearch.errors import StoreError
from nanoresearch.runs import shown_status
from nanoresearch.store import Store
from nanoresearch.store.models import Run, RunSummary, Step, Trial
from nanoresearch.web.security import artifact_path

LOG_FILE = "log.jsonl"  # where RunContext.log appends the run's events
FIGURE_SUFFIXES = {".png", ".jpg", ".jpeg", ".svg", ".gif"}
MAX_LISTED_FILES = 200  # a runaway workspace must not make the run page slow


class NotFound(Exception):
    """The thing does not exist for this user; answered as 404 whether it is missing or someone else's."""


class RunRow(BaseModel):
    id: str
    kind: str  # research | trials
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
    """The run, if it is one of the user's: read alone (every page asks this; a user has thousands of runs)."""
    try:
        run = store.get_run(run_id)
    except StoreError:
        raise NotFound(run_id) from None
    if run.project_id not in store.project_names(user_id):
        raise NotFound(run_id)
    return run


def owned_trial(store: Store, run: Run, trial_id: int) -> Trial:
    trial = next((t for t in store.trials(run.id) if t.id == trial_id), None)
    if trial is None:
        raise NotFound(trial_id)
    return trial


def direction(run: Run) -> str:
    return run.options.direction


def run_rows(store: Store, user_id: int) -> list[RunRow]:
    """Newest first: the run being watched is usually the latest."""
    summaries = store.run_summaries(user_id)
    return [run_row(run, summaries[run.id]) for run in reversed(store.list_runs(user_id))]


SORTS = {  # key -> (what rows sort on, newest/largest first); missing scores sort last
    "started": (lambda r: r.started, True), "best": (lambda r: (r.best is not None, r.best or 0.0), True),
    "tokens": (lambda r: r.tokens, True), "usd": (lambda r: r.usd, True), "status": (lambda r: r.status, False),
}
PAGE_ROWS = 200  # the newest first; a thousand rows are a long page to scroll and to render


class RunsView(BaseModel):
    """What the runs list was asked for: a goal filter, a status, a sort, how many rows."""

    q: str = ""
    status: str = ""
    sort: Literal["started", "best", "tokens", "usd", "status"] = "started"
    limit: int = Field(PAGE_ROWS, ge=1)


def shown_rows(rows: list[RunRow], view: RunsView) -> list[RunRow]:
    """The rows that match, sorted, at most `view.limit` of them."""
    needle = view.q.casefold()
    kept = [r for r in rows if needle in r.goal.casefold() and (not view.status or r.status == view.status)]
    key, descending = SORTS[view.sort]
    return sorted(kept, key=key, reverse=descending)[:view.limit]


def run_row(run: Run, summary: RunSummary) -> RunRow:
    return RunRow(
        id=run.id, kind=run.kind, goal=run.goal, status=shown_status(run), stage=summary.stage,
        best=summary.best_max if direction(run) == "maximize" else summary.best_min, baseline=summary.baseline,
        tokens=summary.tokens, usd=summary.usd, started=run.created_at,
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
    path = artifact_path(run.workspace, LOG_FILE)  # never a link out of the workspace
    if path is None:
        return []
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
