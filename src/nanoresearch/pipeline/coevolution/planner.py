"""The planner: one call at the start of each stage turns the goal, the user's constraints, what
earlier stages produced and the user's feedback into a structured stage plan.

Each call is stored with its exact prompt and, for a local planner, the exact token ids of its
output: with the user's feedback on the stage, that is the (x, y, F) triple the policy trains on.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from nanoresearch.compute.budget import left, spent
from nanoresearch.llm.provider import Message
from nanoresearch.llm.structured import with_schema_instruction
from nanoresearch.pipeline.coevolution.recall import CODE_STAGES, Recalled, prompt_block, recall
from nanoresearch.pipeline.context import RunContext
from nanoresearch.pipeline.gates import (
    Degenerate,
    Finding,
    degenerate_reason,
    record_degenerate,
    schema_names,
    vacuous_reason,
)
from nanoresearch.policy.prompt import SYSTEM
from nanoresearch.policy.routing import planner_model_name
from nanoresearch.profile import load_profile, profile_prompt
from nanoresearch.store.models import StagePlanRecord

Line = Annotated[str, StringConstraints(min_length=3, max_length=160)]
# The headings of every planner prompt (`planner_messages`): a plan line made of their words says nothing.
PROMPT_HEADINGS = "research goal, stage, done so far, user feedback in this run, budget left"


class StagePlan(BaseModel):
    objectives: list[Line] = Field(min_length=1, max_length=3)
    constraints: list[Line] = Field(default_factory=list, max_length=3)
    skills: list[str] = Field(default_factory=list, max_length=3)  # names of recalled skills to use
    budget_share: Literal["25%", "50%", "75%", "100%"] = "100%"
    # Filled by code, not the model: the chosen skills' procedures, which reach the stage's prompts.
    procedures: dict[str, str] = Field(default_factory=dict)

    def fraction(self) -> float:
        return int(self.budget_share.rstrip("%")) / 100

    def text(self) -> str:
        lines = [f"- objective: {o}" for o in self.objectives] + [f"- constraint: {c}" for c in self.constraints]
        lines += [f"- use skill {name}: <data>{procedure}</data>" for name, procedure in self.procedures.items()]
        return "\n".join(lines)


def plan_schema(recalled: Recalled) -> dict:
    """The plan's JSON schema for this stage: skills limited to the ones recalled, procedures left to code."""
    schema = StagePlan.model_json_schema()
    del schema["properties"]["procedures"]
    names = [s.name for s in recalled.skills]
    schema["properties"]["skills"] = {"type": "array", "items": {"type": "string", "enum": names}, "maxItems": len(names)}
    if not names:
        schema["properties"]["skills"]["items"] = {"type": "string"}
    return schema


class PlannedStage(BaseModel):
    plan: StagePlan
    plan_id: int | None  # None: no planner call, because no model reads this stage's plan (`unplanned`)
    unplanned: str = ""
    degenerate: dict[str, str] = Field(default_factory=dict)  # "objectives[1]" -> why the gates caught it

    def lines(self) -> list[str]:
        return [] if self.unplanned else plan_lines(self.plan.model_dump(), self.degenerate)


def plan_lines(plan: dict, degenerate: dict[str, str]) -> list[str]:
    """How the run (and `watch`, from the log) shows a plan: its objectives, and every line the gates caught
    labelled with why (constraints are shown only then)."""
    lines = []
    for key, label in (("objectives", "plan"), ("constraints", "plan constraint")):
        for i, text in enumerate(plan.get(key, [])):
            reason = degenerate.get(f"{key}[{i}]")
            if reason:
                lines.append(f"{label} (degenerate: {reason}): {text}")
            elif key == "objectives":
                lines.append(f"{label}: {text}")
    return lines


def plan_findings(plan: StagePlan, goal: str, stage: str, description: str, schema: dict) -> list[Finding]:
    """The plan's objectives and constraints that are no plan, and why: the degenerate-output gates, and lines
    with nothing of their own beyond the goal, the stage's description and the prompt's headings."""
    given = " ".join((goal, stage, description, PROMPT_HEADINGS))
    names = schema_names(schema)
    return [Finding(field=f"{key}[{i}]", value=line, reason=reason)
            for key, lines in (("objectives", plan.objectives), ("constraints", plan.constraints))
            for i, line in enumerate(lines)
            if (reason := degenerate_reason(line, goal, names) or vacuous_reason(line, given))]


def plan_stage(ctx: RunContext, stage: str, description: str, redirect: str = "") -> PlannedStage:
    reason = unplanned_reason(ctx, stage)
    if reason:  # a planner call costs seconds of model time and here could change nothing
        ctx.log("stage_unplanned", stage=stage, reason=reason)
        return PlannedStage(plan=StagePlan(objectives=[description[:160]]), plan_id=None, unplanned=reason)
    recalled = recall(ctx, stage, description)
    messages = stage_prompt(ctx, stage, description, redirect, recalled)
    # The user's SDPO-trained adapter, when there is one and the run uses it (`run --no-policy`: the base planner).
    model, problem = planner_model_name(ctx.settings) if ctx.options.uses("policy") else (None, None)
    if problem:
        ctx.log("planner_adapter_unusable", problem=problem)
        ctx.say(f"  planner: {problem}")
    schema = plan_schema(recalled)
    reply = ctx.llm.complete(messages, stage="planner", schema=schema, max_tokens=200, model=model)
    plan = StagePlan.model_validate({**reply.parsed, "procedures": {}})
    chosen = {name: skill for name in dict.fromkeys(plan.skills) if (skill := recalled.skill(name))}
    plan = plan.model_copy(update={"skills": list(chosen), "procedures": {n: s.procedure for n, s in chosen.items()}})
    # x is what the model saw: the client adds the schema's format instruction to the system message. After a
    # repair round the ids belong to the repair conversation instead, so they are not kept as a training pair.
    first_try = reply.attempts == 1
    record = StagePlanRecord(
        user_id=ctx.user_id, run_id=ctx.run.id, stage=stage, provider=reply.provider, model=reply.model,
        prompt=[m.model_dump() for m in with_schema_instruction(messages, schema)],
        prompt_ids=reply.prompt_ids if first_try else None, output_text=reply.text,
        output_ids=reply.output_ids if first_try else None, plan=plan.model_dump(),
    )
    plan_id = ctx.store.save_stage_plan(record)
    ctx.write_json(f"plans/{stage}.json", {"plan_id": plan_id, **plan.model_dump(), "recalled": recalled.model_dump()})
    # Labelled, never repaired: another call would change what the planner and the stages are sent.
    findings = plan_findings(plan, ctx.run.goal, stage, description, schema)
    degenerate = {f.field: f.reason for f in findings}
    ctx.log("stage_plan", stage=stage, plan_id=plan_id, plan=plan.model_dump(), replayed=reply.replayed,
            degenerate=degenerate)
    record_degenerate(ctx, [Degenerate(stage="planner", field=f"{stage}.{f.field}", value=f.value, reason=f.reason)
                            for f in findings], announce=False)  # the plan's lines say it: PlannedStage.lines
    return PlannedStage(plan=plan, plan_id=plan_id, degenerate=degenerate)


def unplanned_reason(ctx: RunContext, stage: str) -> str:
    """Why no model would read a plan for this stage now ("" when one would): statistics and plots are
    code; a run without an improvement gets its negative-result report from code and has no paper to
    review; the first review reads the paper, not the plan, so only revision rounds use one."""
    if stage in CODE_STAGES:
        return "it runs only code"
    if stage == "writing" and not _improved(ctx):
        return "no improvement over the baseline: code writes the negative-result report"
    if stage == "review" and not (ctx.workspace / "paper" / "sections.json").is_file():
        return "there is no paper to review"
    if stage == "review" and ctx.settings.pipeline.review_rounds == 0:
        return "no revision round is configured, and the review itself reads no plan"
    return ""


def _improved(ctx: RunContext) -> bool:
    from nanoresearch.paper.results import read_results

    path = ctx.workspace / "results.json"
    return not path.is_file() or read_results(path).success  # no results yet: the stage itself will say so


def stage_prompt(ctx: RunContext, stage: str, description: str, redirect: str, recalled: Recalled) -> list[Message]:
    """The planner's prompt for this stage, kept in the workspace: a resumed stage shows the planner the
    same prompt (budget left, redirect and all), so its recorded call replays instead of being paid again."""
    path = f"plans/{stage}.prompt.json"
    if not redirect and (ctx.workspace / path).is_file():
        return [Message.model_validate(m) for m in ctx.read_json(path)]
    messages = planner_messages(ctx, stage, description, redirect, recalled)
    ctx.write_json(path, [m.model_dump() for m in messages])
    return messages


def planner_messages(ctx: RunContext, stage: str, description: str, redirect: str, recalled: Recalled) -> list[Message]:
    parts = [
        f"Research goal: {ctx.run.goal}",
        profile_prompt(load_profile(ctx.settings)),
        prompt_block(recalled),
        f"Stage: {stage}: {description}",
        f"Done so far:\n{_progress(ctx) or '(nothing yet)'}",
        f"User feedback in this run:\n{_feedback(ctx) or '(none)'}",
        f"Budget left: {_budget_left(ctx)}",
    ]
    if redirect:
        parts.append(f"The user redirected this stage: <data>{redirect}</data>")
    return [Message(role="system", content=SYSTEM), Message(role="user", content="\n\n".join(parts))]


def _progress(ctx: RunContext) -> str:
    summaries = [s for s in ctx.store.steps(ctx.run.id) if s.step == "stage" and s.status == "done"]
    return "\n".join(f"- {s.stage}: {s.payload.get('summary', '')}" for s in summaries)


def _feedback(ctx: RunContext) -> str:
    notes = [f for f in ctx.store.feedback(ctx.user_id, ctx.run.id) if f.text]
    return "\n".join(f"- after {f.stage} ({f.action}): <data>{f.text}</data>" for f in notes)


def _budget_left(ctx: RunContext) -> str:
    # Rounded, so the prompt (and therefore the recorded call a resume replays) does not change
    # with every second of wall time.
    remaining = left(ctx.options.budget, spent(ctx.store, ctx.user_id, ctx.run.id))
    return ", ".join(f"{unit} {_rounded(value)}" for unit, value in remaining.items()) or "no limits"


def _rounded(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"
