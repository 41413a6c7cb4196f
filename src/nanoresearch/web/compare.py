"""Two to four runs side by side: settings, budgets, scores with intervals, costs, lineage sizes, reviews."""

from __future__ import annotations

from pydantic import BaseModel

from nanoresearch.compute.budget import Budget, Spent, spent
from nanoresearch.errors import UserError
from nanoresearch.paper.results import Condition
from nanoresearch.pipeline.stages.review import ReviewForm
from nanoresearch.runs import shown_status
from nanoresearch.store import Store
from nanoresearch.store.models import Run
from nanoresearch.web.artifacts import run_artifacts

MIN_RUNS, MAX_RUNS = 2, 4
SETTINGS = ("task", "executor", "parallel", "max_debug", "offline", "direction")  # the budget has its own row


class Column(BaseModel):
    run: Run
    status: str
    kind: str
    settings: dict[str, str]
    limits: Budget
    spent: Spent
    trials: int
    kept: int
    failed: int
    conditions: list[Condition]
    review: ReviewForm | None


def compared_ids(ids: list[str]) -> list[str]:
    unique = list(dict.fromkeys(i for i in ids if i))
    if not MIN_RUNS <= len(unique) <= MAX_RUNS:
        raise UserError(f"compare needs {MIN_RUNS} to {MAX_RUNS} different runs, got {len(unique)}",
                        hint="tick two to four runs in the list")
    return unique


def column(store: Store, user_id: int, run: Run) -> Column:
    trials = store.trials(run.id)
    artifacts = run_artifacts(run)
    return Column(
        run=run, status=shown_status(run), kind=run.kind,
        settings={k: str(v) for k, v in run.options.model_dump(include=set(SETTINGS)).items() if v not in (None, "")},
        limits=run.options.budget, spent=spent(store, user_id, run.id), trials=len(trials),
        kept=sum(t.kept for t in trials), failed=sum(bool(t.failure) or t.status == "failed" for t in trials),
        conditions=artifacts.results.conditions if artifacts.results else [], review=artifacts.review,
    )
