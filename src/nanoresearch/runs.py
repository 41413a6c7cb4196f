"""Runs: one per research job or trial session, each with its own workspace folder."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nanoresearch.config import Settings
from nanoresearch.errors import UserError
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
