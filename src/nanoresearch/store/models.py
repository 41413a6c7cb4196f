"""Rows of the store as pydantic models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from nanoresearch.store.budget import Budget, parse_budget

# A research run (`nanoresearch run`: the staged pipeline) or a trial session (`nanoresearch trials run`).
RunKind = Literal["research", "trials"]
RunStatus = Literal["created", "running", "paused", "failed", "done"]
# Why a `paused` run stopped when nobody paused it: a unit of its budget is spent (resume --budget).
StopReason = Literal["budget"]
StepStatus = Literal["running", "done", "failed"]
FeedbackAction = Literal["approve", "comment", "redirect"]
# trial_s: the time trials ran, summed (wall time is the run's clock, see Store.active_seconds).
LedgerKind = Literal["tokens", "usd", "gpu_hours", "cpu_hours", "trial_s"]
# The co-evolution levels a run can turn off (config.CoevolutionSettings, `run --no-skills` ...).
CoevolutionLevel = Literal["skills", "memory", "policy"]
COEVOLUTION_LEVELS: tuple[CoevolutionLevel, ...] = ("skills", "memory", "policy")


class RunOptions(BaseModel):
    """How a run was started, stored with it so that continuing it rebuilds the same run."""

    task: str | None = None  # the task folder; a research run without one generates it in planning
    budget: Budget = Budget(trials=6, wall_s=1200)
    executor: str = "local"
    parallel: int = Field(1, ge=1, le=16)
    max_debug: int = Field(1, ge=0, le=10)
    offline: bool = False  # research: search only the local corpus
    corpus: str | None = None  # research: a local folder of papers
    direction: Literal["maximize", "minimize"] = "maximize"  # which way the task's score improves
    # The co-evolution levels that were on for this run (runs stored before the switches had all three).
    coevolution: list[CoevolutionLevel] = list(COEVOLUTION_LEVELS)

    def uses(self, level: CoevolutionLevel) -> bool:
        return level in self.coevolution

    @field_validator("budget", mode="before")
    @classmethod
    def _budget_from_text(cls, value: object) -> object:
        """Text as users type it ("trials=6,wall=20m"), as research runs stored it before schema 9."""
        return parse_budget(value) if isinstance(value, str) else value


class Run(BaseModel):
    id: str
    project_id: int
    kind: RunKind
    goal: str
    status: RunStatus
    workspace: str
    options: RunOptions = RunOptions()
    stop_reason: StopReason | None = None
    archived_at: str | None = None  # hidden from `nanoresearch list` since then (shown by `list --all`)
    created_at: str
    updated_at: str


class Step(BaseModel):
    run_id: str
    stage: str
    step: str
    status: StepStatus
    payload: dict[str, Any] = {}
    updated_at: str


class LLMCall(BaseModel):
    key: str
    user_id: int
    run_id: str | None = None
    stage: str | None = None
    provider: str
    model: str
    request: dict[str, Any]
    response_text: str
    finish_reason: str | None = None
    # Why the reply was unusable (it failed the schema, or was cut off); None when it was fine.
    # A failed call stays recorded and charged, but is never replayed as an answer.
    failure: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    latency_s: float = 0.0
    prompt_ids: list[int] | None = None
    output_ids: list[int] | None = None


class Feedback(BaseModel):
    id: int = 0
    user_id: int
    run_id: str
    stage: str
    action: FeedbackAction
    text: str = ""
    plan_id: int | None = None  # the stage plan this judges: with it, a training triple for the policy
    created_at: str = ""


class StagePlanRecord(BaseModel):
    """One planner call: the exact prompt and output (with token ids when local) and the parsed plan."""

    id: int = 0
    user_id: int
    run_id: str
    stage: str
    provider: str
    model: str
    prompt: list[dict[str, Any]]
    prompt_ids: list[int] | None = None
    output_text: str
    output_ids: list[int] | None = None
    plan: dict[str, Any] = {}
    created_at: str = ""


TrialStatus = Literal["proposed", "running", "done", "failed"]


class Trial(BaseModel):
    id: int = 0
    run_id: str
    parent_id: int | None = None
    proposer: str
    hypothesis: str = ""
    diff: str = ""
    command: str
    resources: dict[str, Any] = {}
    knobs: dict[str, float] = {}
    executor: str
    job_id: str | None = None
    status: TrialStatus = "proposed"
    kept: bool = False
    score: float | None = None
    metrics: dict[str, float] = {}
    failure: str | None = None
    detail: str = ""
    logs_tail: str = ""
    workdir: str = ""
    started_at: float | None = None
    ended_at: float | None = None
    created_at: str = ""


class Charge(BaseModel):
    """One ledger row: what a run spent, on what (`trial:N`, `llm_call:N`, ...), and when."""

    kind: LedgerKind
    amount: float
    source: str
    created_at: str


class RunSummary(BaseModel):
    """What the runs list shows of a run beside its record, aggregated in SQL (one query for all runs)."""

    run_id: str
    stage: str = ""  # the stage of the latest step
    best_max: float | None = None  # highest and lowest kept score: the head, as trials.lineage.head picks it
    best_min: float | None = None
    baseline: float | None = None  # the first finished baseline's score
    tokens: float = 0.0
    usd: float = 0.0
