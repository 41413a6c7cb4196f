"""The orchestrator: plan each stage, run it, checkpoint it, ask the user, go on.

    ideation → planning → experiment → analysis → figures → writing → review

A stage that finished is never run again: `resume` skips it, and inside a stage each step
checks its own checkpoint, while LLM calls already made in this run replay from the store.
After each stage the user may approve, comment or redirect; a redirect plans and runs the stage
again with the user's words in the planner's prompt.

The planner is reminded of the user's skills and memories for each stage (pipeline/recall.py);
skills the plan uses are counted as succeeding or failing with the stage. A stage no model reads a
plan for (analysis, figures; writing and review without a paper) gets no planner call. After each
stage code files the user's comments (and, after analysis, the tested hypothesis) in memory; after
the last the model writes its notes on the run in one call (pipeline/reflect.py) and the run's
successful steps are distilled into skills (pipeline/distill.py); all are checkpointed like any step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel

from nanoresearch.compute.budget import spent
from nanoresearch.errors import BudgetExhausted, EndpointUnavailableError, NanoResearchError
from nanoresearch.pipeline.coevolution.distill import distill_skills
from nanoresearch.pipeline.coevolution.planner import StagePlan, plan_stage
from nanoresearch.pipeline.coevolution.recall import count_uses
from nanoresearch.pipeline.coevolution.reflect import reflect, reflect_run
from nanoresearch.pipeline.context import STAGE_NAMES, RunContext
from nanoresearch.pipeline.progress import done_line, stage_cost
from nanoresearch.pipeline.stages.analysis import run_analysis
from nanoresearch.pipeline.stages.experiment import run_experiment
from nanoresearch.pipeline.stages.figures import run_figures
from nanoresearch.pipeline.stages.ideation import run_ideation
from nanoresearch.pipeline.stages.planning import run_planning
from nanoresearch.pipeline.stages.review import run_review
from nanoresearch.pipeline.stages.writing import run_writing
from nanoresearch.pipeline.stopped import REPORT, stop_for_budget
from nanoresearch.policy.train import after_feedback, at_end_of_run
from nanoresearch.runs import lifecycle


@dataclass(frozen=True)
class Stage:
    name: str
    description: str
    run: Callable[[RunContext, StagePlan], str]  # returns a one-line summary


STAGES: tuple[Stage, ...] = (
    Stage("ideation", "search the literature, extract evidence, propose hypotheses and score their novelty", run_ideation),
    Stage("planning", "write the experiment blueprint: datasets, baselines, method, metrics, ablations, seeds", run_planning),
    Stage("experiment", "run the closed trial loop within the budget, then the run matrix over seeds", run_experiment),
    Stage("analysis", "compute means, spread and significance of every condition from the trials", run_analysis),
    Stage("figures", "draw the learning curve, the comparison of conditions and the ablations", run_figures),
    Stage("writing", "write the paper section by section; numbers and tables come from results.json", run_writing),
    Stage("review", "review the paper on a NeurIPS-style form and revise the sections it flags", run_review),
)
assert tuple(s.name for s in STAGES) == STAGE_NAMES, "context.STAGE_NAMES must list STAGES in order"


class Answer(BaseModel):
    action: Literal["approve", "comment", "redirect"]
    text: str = ""
    recorded: bool = False  # already stored by the path that took it (the dashboard), which also started training


class FeedbackGate(Protocol):
    def ask(self, stage: str, summary: str) -> Answer | None: ...  # None: nobody was asked


class Unattended:
    """--yes: go on without asking; no feedback is recorded, since nobody gave any."""

    def ask(self, stage: str, summary: str) -> Answer | None:
        return None


def run_pipeline(ctx: RunContext, gate: FeedbackGate) -> None:
    if ctx.run.stop_reason == "budget":  # resumed with more budget: the stop's report is no longer the outcome
        (ctx.workspace / REPORT).unlink(missing_ok=True)
    with lifecycle(ctx.store, ctx.run.id):  # running, then done; a stop leaves it paused, stopped or failed
        ctx.log("run_start", goal=ctx.run.goal)
        for stage in STAGES:
            with stopping_cleanly(ctx, stage.name):
                if ctx.done(stage.name, "stage") is None:
                    run_stage(ctx, stage, gate)
                if ctx.done(stage.name, "memory") is None:
                    ctx.mark(stage.name, "memory", {"records": reflect(ctx, stage.name)})
        with stopping_cleanly(ctx, "run"):
            if ctx.done("run", "memory") is None:  # the model's notes: one call for the whole run
                ctx.mark("run", "memory", {"records": reflect_run(ctx)})
            if ctx.done("run", "skills") is None:
                ctx.mark("run", "skills", {"outcomes": [o.model_dump() for o in distill_skills(ctx)]})
            if ctx.done("run", "policy") is None:
                ctx.mark("run", "policy", {"rounds": train_planner(ctx)})
    ctx.log("run_done")


@contextmanager
def stopping_cleanly(ctx: RunContext, stage: str) -> Iterator[None]:
    """Whatever stops a stage, at any point (its plan included), is recorded with the stage before it
    propagates (runs.lifecycle then records it with the run): Ctrl-C, SIGTERM and an unreachable model
    pause it; anything else, a bug included, fails the stage with the error. A spent budget stops the
    run (`stopped: budget`) with a report written by code."""
    try:
        yield
    except BudgetExhausted as exc:
        stop_for_budget(ctx, stage, exc)
        raise
    except (KeyboardInterrupt, EndpointUnavailableError) as exc:
        reason = exc.message if isinstance(exc, NanoResearchError) else "interrupted"
        ctx.log("run_paused", stage=stage, reason=reason)
        raise
    except Exception as exc:
        message = exc.message if isinstance(exc, NanoResearchError) else f"{type(exc).__name__}: {exc}"
        if stage != "run":
            ctx.store.save_step(ctx.run.id, stage, "stage", "failed", {"error": message})
        ctx.log("stage_failed", stage=stage, error=message)
        raise


def run_stage(ctx: RunContext, stage: Stage, gate: FeedbackGate) -> None:
    redirect = ""
    while True:
        ctx.say(f"[stage] {stage.name}: {stage.description}")
        started, before = time.perf_counter(), spent(ctx.store, ctx.user_id, ctx.run.id)  # the plan is part of the stage
        ctx.store.save_step(ctx.run.id, stage.name, "stage", "running", {})
        planned = plan_stage(ctx, stage.name, stage.description, redirect)
        if planned.unplanned:
            ctx.say(f"  no planner call: {planned.unplanned}")
        for line in planned.lines():
            ctx.say(f"  {line}")
        ctx.log("stage_start", stage=stage.name, plan_id=planned.plan_id)
        try:
            summary = stage.run(ctx, planned.plan)
        except Exception:
            count_uses(ctx, stage.name, planned.plan_id, planned.plan.skills, succeeded=False)
            raise
        cost = stage_cost(ctx.store, ctx.user_id, ctx.run.id, before, time.perf_counter() - started)
        summary = summary.replace(f"{ctx.workspace}/", "")  # summaries reach later prompts: keep them portable
        count_uses(ctx, stage.name, planned.plan_id, planned.plan.skills, succeeded=stage_succeeded(ctx, stage.name))
        ctx.mark(stage.name, "stage", {"summary": summary, "plan_id": planned.plan_id, "seconds": cost.seconds})
        ctx.log("stage_done", stage=stage.name, summary=summary, **cost.model_dump())
        ctx.say(done_line(summary, cost))
        answer = gate.ask(stage.name, summary)
        if answer is None:
            return
        if not answer.recorded:
            ctx.store.add_feedback(ctx.user_id, ctx.run.id, stage.name, answer.action, answer.text, planned.plan_id)
        ctx.log("feedback", stage=stage.name, action=answer.action, text=answer.text)
        if answer.text and not answer.recorded:
            after_feedback(ctx.settings)  # policy.when = "background": the planner trains while the run goes on
        if answer.action != "redirect":
            return
        redirect = answer.text
        ctx.store.clear_steps(ctx.run.id, stage.name)  # the stage runs again, re-planned


def stage_succeeded(ctx: RunContext, stage: str) -> bool:
    """A stage that finished succeeded, except an experiment in which no trial passed the evaluator."""
    if stage != "experiment":
        return True
    return any(t.score is not None and not t.failure for t in ctx.store.trials(ctx.run.id))


def train_planner(ctx: RunContext) -> list[dict]:
    """The SDPO round(s) owed at the end of a run with written feedback (policy.when decides)."""
    if not any(f.text for f in ctx.store.feedback(ctx.user_id, ctx.run.id)):
        return []
    try:
        results = at_end_of_run(ctx.settings, ctx.store)
    except Exception as exc:  # noqa: BLE001 - e.g. a remote planner has no weights, or torch ran out of memory:
        # the run's results stand either way, and `nanoresearch policy train` can try again
        message = exc.message if isinstance(exc, NanoResearchError) else f"{type(exc).__name__}: {exc}"
        ctx.say(f"planner policy not trained: {message}")
        ctx.log("policy_update", status="skipped", message=message)
        return [{"status": "skipped", "message": message}]
    for result in results:
        ctx.say(f"planner policy: {result.message}")
        ctx.log("policy_update", status=result.status, version=result.version, message=result.message)
    return [{"status": r.status, "version": r.version, "message": r.message} for r in results]
