"""A run its budget stopped: the outcome `stopped: budget`, and a short report written by code.

When a unit of the run's budget is spent (the LLM client's gate refused a call, or no trial fits), no
model call is left to write with, so the report is assembled from what exists: the stages that
finished and their summaries, the trials and their measured scores, what was spent, and the command
that gives the run more. A budget stop is no research result: it writes no negative result and no
memory (a hypothesis that was never tested is no dead end).
"""

from __future__ import annotations

from nanoresearch.compute.budget import spent
from nanoresearch.errors import BudgetExhausted
from nanoresearch.pipeline.context import STAGE_NAMES, RunContext
from nanoresearch.profile import format_budget
from nanoresearch.trials import lineage

REPORT = "report.md"


def stop_for_budget(ctx: RunContext, stage: str, stop: BudgetExhausted) -> None:
    """Record the stop with the stage that hit the limit, and write the report (runs.lifecycle then
    records the run as `stopped: budget`)."""
    if stage in STAGE_NAMES and ctx.done(stage, "stage") is None:
        ctx.store.save_step(ctx.run.id, stage, "stage", "running", {"stopped": stop.message})
    ctx.path(REPORT).write_text(budget_report(ctx, stage, stop), encoding="utf-8")
    ctx.log("run_stopped", stage=stage, reason="budget", unit=stop.unit, message=stop.message)
    ctx.say(f"stopped: {stop.message}")


def budget_report(ctx: RunContext, stage: str, stop: BudgetExhausted) -> str:
    lines = [
        f"# Stopped: budget: {ctx.run.goal}",
        "",
        f"The run stopped {where_it_stopped(ctx, stage)} because {stop.message}. This report is written by",
        "code from what the run produced before the stop; it is not a research result.",
        "",
        "## Stages",
        *stage_lines(ctx),
        "",
        "## Trials",
        *trial_lines(ctx),
        "",
        "## Spent",
        spent_line(ctx),
        "",
        "## To continue",
        continue_line(ctx, stop),
    ]
    return "\n".join(lines) + "\n"


def continue_line(ctx: RunContext, stop: BudgetExhausted) -> str:
    how = "Give the run more budget and continue it with"
    if stop.hint and stop.hint.startswith("give more with"):
        return stop.hint.replace("give more with", how) + "."
    return f"{how} `nanoresearch resume {ctx.run.id} --budget UNIT=+AMOUNT` (e.g. `trials=+4`, `wall=+10m`)."


def where_it_stopped(ctx: RunContext, stage: str) -> str:
    if stage not in STAGE_NAMES:
        return "after its last stage"
    return f"after its {stage} stage" if ctx.done(stage, "stage") is not None else f"in its {stage} stage"


def stage_lines(ctx: RunContext) -> list[str]:
    steps = {s.stage: s for s in ctx.store.steps(ctx.run.id) if s.step == "stage"}
    lines = []
    for name in STAGE_NAMES:
        step = steps.get(name)
        if step is None:
            lines.append(f"- {name}: not run")
        elif step.status == "done":
            lines.append(f"- {name}: done: {step.payload.get('summary', '')}")
        else:
            lines.append(f"- {name}: stopped: {step.payload.get('stopped') or step.payload.get('error', '')}")
    return lines


def trial_lines(ctx: RunContext) -> list[str]:
    trials = ctx.store.trials(ctx.run.id)
    if not trials:
        return ["No trial ran."]
    lines = ["| trial | proposer | outcome | hypothesis |", "|---|---|---|---|"]
    for trial in trials:
        hypothesis = " ".join(trial.hypothesis.split())[:100].replace("|", "/")
        lines.append(f"| {trial.id} | {trial.proposer} | {lineage.outcome_text(trial)} | {hypothesis} |")
    if ctx.task is None:
        return lines
    best = lineage.head(trials, ctx.task.score.direction)
    if best is not None:
        lines += ["", f"Best so far: trial {best.id}, {ctx.task.score.metric} = {best.score:.4g} (one run, one seed)."]
    return lines


def spent_line(ctx: RunContext) -> str:
    used = spent(ctx.store, ctx.user_id, ctx.run.id)
    return (f"{used.trials} trials, {used.tokens:,.0f} tokens, ${used.usd:.4f}, {used.cpu_hours:.3f} CPU-hours, "
            f"{used.gpu_hours:.3f} GPU-hours (budget: {format_budget(ctx.options.budget)}).")
