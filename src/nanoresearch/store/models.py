"""Rows of the store as pydantic models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

RunStatus = Literal["created", "running", "paused", "failed", "done"]
StepStatus = Literal["running", "done", "failed"]
FeedbackAction = Literal["approve", "comment", "redirect"]
LedgerKind = Literal["tokens", "usd", "gpu_hours", "cpu_hours", "wall_s"]


class Run(BaseModel):
    id: str
    project_id: int
    goal: str
    status: RunStatus
    workspace: str
    config: dict[str, Any] = {}
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
