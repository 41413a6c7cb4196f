"""Planning: the experiment blueprint, validated by a schema and grounded in the task.

The model drafts the scientific content (datasets, baselines, method, metrics, ablations, seeds);
code checks it against the task (metric names and direction are the evaluator's, knob ablations
must name real knobs within their range), asks for one repair when something is off, and adds
what code knows better: the compute estimate and the run matrix.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationError

from nanoresearch.errors import EndpointUnavailableError, LLMError, UserError
from nanoresearch.pipeline.coevolution.planner import StagePlan
from nanoresearch.pipeline.context import RunContext
from nanoresearch.pipeline.stages.ideation import Ideas, text
from nanoresearch.pipeline.taskgen import generate_task
from nanoresearch.profile import load_profile
from nanoresearch.trials.task import Task


class Metric(BaseModel):
    name: str
    direction: Literal["maximize", "minimize"]


class KnobAblation(BaseModel):
    name: Annotated[str, text(60)]
    description: Annotated[str, text(200)]
    knob: str  # one of the task's knobs
    value: float


class Draft(BaseModel):
    """What the model writes."""

    title: Annotated[str, text(120)]
    datasets: list[Annotated[str, text(100)]] = Field(min_length=1, max_length=3)
    baselines: list[Annotated[str, text(160)]] = Field(min_length=1, max_length=3)
    proposed_method: Annotated[str, text(400)]
    primary_metric: Metric
    secondary_metrics: list[str] = Field(default_factory=list, max_length=3)
    ablations: list[KnobAblation] = Field(default_factory=list, max_length=3)
    seeds: int = Field(3, ge=1, le=5)


class ComputeEstimate(BaseModel):
    trials: int
    cpu_hours: float
    gpu_hours: float
    basis: str


class MatrixRow(BaseModel):
    condition: str
    kind: Literal["baseline", "proposed", "ablation"]
    description: str
    seeds: int


class Blueprint(Draft):
    """The validated blueprint the experiment runs (blueprint.json)."""

    hypothesis: str
    task: str
    compute_estimate: ComputeEstimate
    run_matrix: list[MatrixRow]
    notes: list[str] = Field(default_factory=list)


def run_planning(ctx: RunContext, plan: StagePlan) -> str:
    ideas = Ideas.model_validate(ctx.read_json("ideas.json"))
    hypothesis = ideas.hypotheses[ideas.selected]
    if ctx.task is None:
        use_generated_task(ctx, generate_task(ctx, plan, hypothesis.statement))
    draft, notes = draft_blueprint(ctx, plan, hypothesis.statement)
    blueprint = ground(ctx, draft, hypothesis.statement, notes)
    ctx.write_json("blueprint.json", blueprint)
    cells = sum(row.seeds for row in blueprint.run_matrix)
    return f"blueprint {blueprint.title!r}: {len(blueprint.run_matrix)} conditions, {cells} matrix runs"


def use_generated_task(ctx: RunContext, task: Task) -> None:
    """From now on the run's task, also for `resume`: the folder goes into the stored run options."""
    ctx.task = task
    ctx.options = ctx.options.model_copy(update={"task": str(task.folder)})
    ctx.store.set_run_options(ctx.run.id, ctx.options)
    ctx.log("task_generated", folder=str(task.folder), metric=task.score.metric, knobs=sorted(task.knobs))
    ctx.say(f"generated task {task.name}: {task.metric_text()}")


def draft_blueprint(ctx: RunContext, plan: StagePlan, hypothesis: str) -> tuple[Draft, list[str]]:
    task = ctx.experiment_task
    schema = draft_schema(task)
    prompt = planning_prompt(ctx, plan, hypothesis)
    try:
        draft = Draft.model_validate(ctx.llm.complete(prompt, stage="planning", schema=schema, max_tokens=500).parsed)
    except EndpointUnavailableError:
        raise
    except (LLMError, ValidationError) as exc:
        raise UserError(
            f"the planning model could not produce a valid blueprint: {getattr(exc, 'message', exc)}",
            hint="use a stronger model for the planning stage (stages.planning in config.toml), then `nanoresearch resume`",
        ) from None
    problems = draft_problems(task, draft)
    notes: list[str] = []
    if problems:  # one repair round, then drop what is still wrong
        repair = f"{prompt}\n\nYour previous blueprint had these problems; fix them:\n" + "\n".join(f"- {p}" for p in problems)
        try:
            draft = Draft.model_validate(ctx.llm.complete(repair, stage="planning", schema=schema, max_tokens=500).parsed)
        except EndpointUnavailableError:
            raise
        except (LLMError, ValidationError) as exc:
            notes.append(f"the repair of the blueprint failed ({getattr(exc, 'message', exc)}); the first draft is kept")
        remaining = draft_problems(task, draft)
        if remaining:
            kept = [a for a in draft.ablations if not ablation_problems(task, a)]
            notes += [f"dropped after one repair: {p}" for p in remaining]
            draft = draft.model_copy(update={"ablations": kept})
    return draft, notes


def draft_schema(task: Task) -> dict:
    schema = Draft.model_json_schema()
    props, defs = schema["properties"], schema["$defs"]
    metrics = task_metrics(task)
    defs["Metric"]["properties"]["name"] = {"type": "string", "enum": [task.score.metric]}
    defs["Metric"]["properties"]["direction"] = {"type": "string", "enum": [task.score.direction]}
    props["secondary_metrics"]["items"] = {"type": "string", "enum": metrics}
    if task.knobs:
        defs["KnobAblation"]["properties"]["knob"] = {"type": "string", "enum": sorted(task.knobs)}
    else:
        props["ablations"]["maxItems"] = 0
    return schema


def planning_prompt(ctx: RunContext, plan: StagePlan, hypothesis: str) -> str:
    task = ctx.experiment_task
    knobs = "\n".join(f"- {name}: default {k.default:g}, lowest {k.min:g}" for name, k in task.knobs.items())
    return (
        f"Research goal: {ctx.run.goal}\nHypothesis to test: {hypothesis}\n"
        f"Task: {task.name}: {task.description}\nScore: {task.score.metric} ({task.score.direction}).\n"
        f"Knobs the recipe reads (ablations may set one to another value in its range):\n{knobs or '(none)'}\n"
        f"Plan:\n{plan.text()}\n\nWrite the experiment blueprint."
    )


def task_metrics(task: Task) -> list[str]:
    return list(dict.fromkeys([task.score.metric, *(g.metric for g in task.legality.gates)]))


def draft_problems(task: Task, draft: Draft) -> list[str]:
    problems = [f"metric {m!r} is not measured by the task's evaluator" for m in draft.secondary_metrics if m not in task_metrics(task)]
    return problems + [p for a in draft.ablations for p in ablation_problems(task, a)]


def ablation_problems(task: Task, ablation: KnobAblation) -> list[str]:
    knob = task.knobs.get(ablation.knob)
    if knob is None:
        return [f"ablation {ablation.name!r} sets {ablation.knob!r}, which is not a knob of the task"]
    low, high = sorted((knob.min, knob.default))
    if not low <= ablation.value <= high or ablation.value == knob.default:
        return [f"ablation {ablation.name!r} sets {ablation.knob}={ablation.value:g}; use a value in [{low:g}, {high:g}] other than the default"]
    return []


def ground(ctx: RunContext, draft: Draft, hypothesis: str, notes: list[str]) -> Blueprint:
    task = ctx.experiment_task
    settings = ctx.settings.pipeline
    profile = load_profile(ctx.settings)
    seeds = seeds_for_rigour(profile.rigour, draft.seeds, settings.seeds) if task.seed_env else 1
    if not task.seed_env:
        notes.append(f"task {task.name} takes no seed (no seed_env): every condition runs once")
    ablations = [] if profile.ablation_strictness == "none" else draft.ablations[: settings.max_ablations]
    seeds, ablations = fit_matrix(ctx.options.budget.trials, seeds, ablations, notes)
    matrix = [
        MatrixRow(condition="baseline", kind="baseline", description="the task's recipe as given", seeds=seeds),
        MatrixRow(condition="proposed", kind="proposed", description="the best recipe the trial loop kept", seeds=seeds),
        *(MatrixRow(condition=f"ablation: {a.name}", kind="ablation", description=f"{a.description} ({a.knob}={a.value:g})", seeds=seeds) for a in ablations),
    ]
    return Blueprint(
        **draft.model_copy(update={"seeds": seeds, "ablations": ablations}).model_dump(),
        hypothesis=hypothesis, task=task.name, compute_estimate=estimate(ctx, matrix), run_matrix=matrix, notes=notes,
    )


def seeds_for_rigour(rigour: str, drafted: int, configured: int) -> int:
    """The profile decides how many seeds: quick runs take one, strict ones at least the configured number."""
    return {"quick": 1, "standard": drafted, "strict": max(drafted, configured)}[rigour]


def matrix_runs(seeds: int, ablations: int) -> int:
    """New trials the matrix needs: seed 0 of baseline and proposed reuses the loop's own trials."""
    return 2 * (seeds - 1) + seeds * ablations


def fit_matrix(trials: int | None, seeds: int, ablations: list[KnobAblation], notes: list[str]) -> tuple[int, list[KnobAblation]]:
    """Fewer seeds, then fewer ablations, until the matrix takes at most half the trial budget."""
    if trials is None:
        return seeds, ablations
    room = trials // 2
    wanted = (seeds, len(ablations))
    while matrix_runs(seeds, len(ablations)) > room and (seeds > 1 or ablations):
        if seeds > 1:
            seeds -= 1
        else:
            ablations = ablations[:-1]
    if (seeds, len(ablations)) != wanted:
        notes.append(f"the trial budget ({trials}) fits {seeds} seed(s) and {len(ablations)} ablation(s), not {wanted[0]} and {wanted[1]}")
    return seeds, ablations


def estimate(ctx: RunContext, matrix: list[MatrixRow]) -> ComputeEstimate:
    """The trial budget (or 8 loop trials) plus the matrix runs, each at the task's requested resources."""
    task = ctx.experiment_task
    budget = ctx.options.budget
    cells = matrix_runs(matrix[0].seeds, len(matrix) - 2)
    trials = budget.trials if budget.trials is not None else 8 + cells
    hours = trials * task.resources.time_s / 3600
    return ComputeEstimate(
        trials=trials, cpu_hours=round(hours * task.resources.cpus, 3), gpu_hours=round(hours * task.resources.gpus, 3),
        basis=f"{trials} runs at most {task.resources.time_s} s each with {task.resources.cpus} CPU and {task.resources.gpus} GPU",
    )
