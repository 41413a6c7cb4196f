"""Experiment: the closed trial loop within the run's budget, then the blueprint's run matrix.

The matrix runs baseline, proposed (the loop's head) and each ablation over the blueprint's
seeds. Ablations are the blueprint's knob settings plus, computed here, each recorded edit on the
path from the baseline to the head reverted on its own. Every cell is a trial in the lineage and a
checkpoint, so a resumed run repeats none that finished.
"""

from __future__ import annotations

from pydantic import BaseModel

from nanoresearch.compute.budget import MODEL_UNITS, Budget, Spent, check_model_call, spent
from nanoresearch.compute.executor import create_executor
from nanoresearch.pipeline.coevolution.planner import StagePlan
from nanoresearch.pipeline.context import RunContext
from nanoresearch.pipeline.stages.planning import Blueprint, matrix_runs
from nanoresearch.store.models import Trial
from nanoresearch.trials.loop import BudgetExhausted, LoopSettings, TrialLoop

BASE_SEED = 0
# The trial loop is the one stage that would spend tokens and dollars until none are left: it gets at
# most this part of what is left when it starts, and the rest is kept for analysis, writing and review.
LOOP_MODEL_SHARE = 0.5


class Cell(BaseModel):
    """One run of the matrix (matrix.json)."""

    condition: str
    kind: str
    description: str
    seed: int
    trial_id: int
    env: dict[str, str] = {}
    revert_of: int | None = None  # for a component ablation: the trial whose edit was reverted


class Variant(BaseModel):
    condition: str
    kind: str
    description: str
    parent_id: int | None  # whose code runs (None: the task's own recipe)
    env: dict[str, str] = {}
    revert_of: int | None = None


def run_experiment(ctx: RunContext, plan: StagePlan) -> str:
    blueprint = Blueprint.model_validate(ctx.read_json("blueprint.json"))
    loop = make_loop(ctx, loop_budget(ctx, blueprint, plan), guidance=plan.text())
    if ctx.done("experiment", "loop") is None:
        loop.run()
        ctx.mark("experiment", "loop", {"trials": len(loop.trials())})
    # Spent tokens or dollars leave no model call for the stages after this one: the run stops here,
    # before the matrix spends compute on results nothing could write up (resume --budget runs it).
    check_model_call(ctx.options.budget, spent(ctx.store, ctx.user_id, ctx.run.id), ctx.run.id)
    head = loop.head()
    if head is None:
        stop_if_the_budget_judged_no_trial(ctx, loop)
        ctx.write_json("matrix.json", [])
        return f"no trial passed the evaluator in {len(loop.trials())} trials; no run matrix"
    full = make_loop(ctx, ctx.options.budget)  # the matrix may use what the loop left
    full.recover_interrupted()  # a matrix cell the last process died in: labelled, and its cell is run again
    cells, notes = run_matrix(ctx, full, blueprint, head)
    ctx.write_json("matrix.json", {"cells": [c.model_dump() for c in cells], "notes": notes})
    return f"{len(loop.trials())} trials; head trial {head.id} ({ctx.experiment_task.score.metric} {head.score:.4g}); {len(cells)} matrix runs"


def stop_if_the_budget_judged_no_trial(ctx: RunContext, loop: TrialLoop) -> None:
    """No result because the budget refused or cut short every trial is a budget stop, not a negative
    result: the run stops (BudgetExhausted) rather than report a hypothesis it never tested as failed."""
    if not any(t.job_id and t.failure != "budget_overrun" for t in loop.trials()):
        make_loop(ctx, ctx.options.budget).ensure_budget()


def loop_budget(ctx: RunContext, blueprint: Blueprint, plan: StagePlan) -> Budget:
    """The run's budget less what the matrix will need; the plan's share scales wall time, and of the
    tokens and dollars left the loop gets the plan's share, at most LOOP_MODEL_SHARE."""
    budget = ctx.options.budget
    update: dict = loop_model_limits(budget, spent(ctx.store, ctx.user_id, ctx.run.id), plan.fraction())
    if budget.trials is not None:
        reserve = matrix_runs(blueprint.seeds, len(blueprint.run_matrix) - 2)
        update["trials"] = max(2, budget.trials - reserve)
    if budget.wall_s is not None:
        update["wall_s"] = budget.wall_s * max(0.5, plan.fraction())
    return budget.model_copy(update=update)


def loop_model_limits(budget: Budget, used: Spent, fraction: float) -> dict[str, float]:
    """The loop's limits on tokens and dollars, as run totals: what is spent plus its share of what is left."""
    share = min(fraction, LOOP_MODEL_SHARE)
    limits: dict[str, float] = {}
    for unit in MODEL_UNITS:
        limit = getattr(budget, unit)
        if limit is not None:
            limits[unit] = type(limit)(getattr(used, unit) + max(0.0, limit - getattr(used, unit)) * share)
    return limits


def make_loop(ctx: RunContext, budget: Budget, guidance: str = "") -> TrialLoop:
    task = ctx.experiment_task
    settings = LoopSettings(
        parallel=ctx.options.parallel, max_debug=ctx.options.max_debug,
        env={task.seed_env: str(BASE_SEED)} if task.seed_env else {}, guidance=guidance,
        show_search_space=ctx.settings.pipeline.show_search_space,
    )
    return TrialLoop(
        task, ctx.store, ctx.llm, create_executor(ctx.options.executor, ctx.settings), ctx.run.id, ctx.user_id,
        budget, ctx.workspace, settings, on_event=ctx.say,
    )


def variants(ctx: RunContext, blueprint: Blueprint, loop: TrialLoop, head: Trial) -> list[Variant]:
    root = loop.baseline()
    found = [
        Variant(condition="baseline", kind="baseline", description="the task's recipe as given", parent_id=None),
        Variant(condition="proposed", kind="proposed", description=f"trial {head.id}: {head.hypothesis}", parent_id=head.id),
    ]
    for ablation in blueprint.ablations:
        found.append(Variant(
            condition=f"ablation: {ablation.name}", kind="ablation", parent_id=head.id,
            description=f"{ablation.description} ({ablation.knob}={ablation.value:g})",
            env={ablation.knob: f"{ablation.value:g}"},
        ))
    for step in components(loop.trials(), head, root):
        found.append(Variant(
            condition=f"ablation: without trial {step.id}", kind="ablation", parent_id=head.id, revert_of=step.id,
            description=f"the head with trial {step.id}'s edit reverted ({step.hypothesis})",
        ))
    return found[: 2 + ctx.settings.pipeline.max_ablations]


def components(trials: list[Trial], head: Trial, root: Trial | None) -> list[Trial]:
    """The edits on the path from the baseline (or the task's recipe) to the head, oldest first."""
    by_id = {t.id: t for t in trials}
    path: list[Trial] = []
    node: Trial | None = head
    while node is not None and (root is None or node.id != root.id):
        if node.diff.strip():
            path.append(node)
        node = by_id.get(node.parent_id) if node.parent_id else None
    return list(reversed(path))


def run_matrix(ctx: RunContext, loop: TrialLoop, blueprint: Blueprint, head: Trial) -> tuple[list[Cell], list[str]]:
    by_id = {t.id: t for t in loop.trials()}
    root = loop.baseline()
    seed_env = ctx.experiment_task.seed_env
    cells: list[Cell] = []
    notes: list[str] = []
    for variant in variants(ctx, blueprint, loop, head):
        for seed in range(BASE_SEED, BASE_SEED + blueprint.seeds):
            step = f"matrix:{variant.condition}:seed{seed}"
            saved = ctx.done("experiment", step)
            if saved is None:
                try:
                    trial = run_cell(loop, variant, seed, seed_env, root, head, by_id)
                except BudgetExhausted as stop:
                    # the message, not the hint: notes reach the paper's prompts, the hint names this run's id
                    notes.append(f"the matrix stopped at {variant.condition}, seed {seed}: {stop.message}")
                    return cells, notes
                saved = {"trial_id": trial.id}
                ctx.mark("experiment", step, saved)
            env = {**variant.env, **({seed_env: str(seed)} if seed_env else {})}
            cells.append(Cell(condition=variant.condition, kind=variant.kind, description=variant.description,
                              seed=seed, trial_id=saved["trial_id"], env=env, revert_of=variant.revert_of))
    return cells, notes


def run_cell(loop: TrialLoop, variant: Variant, seed: int, seed_env: str | None, root: Trial | None, head: Trial,
             by_id: dict[int, Trial]) -> Trial:
    if seed == BASE_SEED and not variant.env and variant.revert_of is None and variant.kind != "ablation":
        ran = root if variant.kind == "baseline" else head
        if ran is not None:
            return ran  # the loop already ran this cell, and scored it (an interrupted one is run here)
    env = {**variant.env, **({seed_env: str(seed)} if seed_env else {})}
    parent = by_id.get(variant.parent_id) if variant.parent_id else None
    revert = by_id[variant.revert_of].diff if variant.revert_of else ""
    hypothesis = f"{variant.condition}, seed {seed}: {variant.description}"
    return loop.run_variant(parent, f"matrix:{variant.kind}", hypothesis, env, revert=revert)
