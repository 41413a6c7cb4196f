"""Planning: the experiment blueprint, validated by a schema and grounded in the task.

The model drafts the scientific content (datasets, baselines, method, metrics, ablations, seeds);
code checks it against the task (metric names and direction are the evaluator's, knob ablations
must name real knobs within their range and describe them, the method may name no model family
that neither the recipe nor the hypothesis has) and against degenerate output (a title "Draft",
baselines ["none"]: pipeline/gates.py), asks for one repair when something is off, then drops
what is still wrong or replaces it by what code knows (the baseline is the task's recipe as
given), and adds what code knows better: the compute estimate and the run matrix.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationError

from nanoresearch.errors import EndpointUnavailableError, LLMError, UserError
from nanoresearch.paper.factsheet import read_task_folder
from nanoresearch.pipeline.coevolution.planner import StagePlan
from nanoresearch.pipeline.context import RunContext
from nanoresearch.pipeline.feasibility import recipe_identifiers, stems
from nanoresearch.pipeline.gates import (
    Finding,
    find_degenerate,
    gated_complete,
    record_degenerate,
    recorded,
    schema_names,
)
from nanoresearch.pipeline.stages.ideation import Ideas, text
from nanoresearch.pipeline.taskgen import generate_task
from nanoresearch.profile import load_profile
from nanoresearch.trials.task import Task, editable_files


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
    about = f"{hypothesis.title}. {hypothesis.statement}. {hypothesis.change}"
    draft, notes = draft_blueprint(ctx, plan, hypothesis.statement, about)
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


def draft_blueprint(ctx: RunContext, plan: StagePlan, hypothesis: str, about: str = "") -> tuple[Draft, list[str]]:
    """The model's draft after one repair round for what the gates find; what is still wrong is then
    dropped, replaced by what code knows, or labelled (notes, degenerate.json). `about` is the selected
    hypothesis in full (title, statement, change), which a method may follow where the recipe does not."""
    task = ctx.experiment_task
    schema = draft_schema(task)
    prompt = planning_prompt(ctx, plan, hypothesis)
    names = schema_names(schema)

    def problems(parsed: dict) -> list[Finding]:
        return draft_findings(task, Draft.model_validate(parsed), f"{hypothesis} {about}", ctx.run.goal, names)

    try:
        parsed, remaining = gated_complete(ctx, prompt, stage="planning", schema=schema, max_tokens=500, problems=problems)
        draft = Draft.model_validate(parsed)
    except EndpointUnavailableError:
        raise
    except (LLMError, ValidationError) as exc:
        raise UserError(
            f"the planning model could not produce a valid blueprint: {getattr(exc, 'message', exc)}",
            hint="use a stronger model for the planning stage (stages.planning in config.toml), then `nanoresearch resume`",
        ) from None
    return settled(ctx, task, draft, remaining + data_findings(task, draft), about or hypothesis)


def settled(ctx: RunContext, task: Task, draft: Draft, remaining: list[Finding], hypothesis: str) -> tuple[Draft, list[str]]:
    """The draft with what is still wrong after the repair dropped, or replaced by what code knows."""
    wrong = {f.field.split(".")[0].split("[")[0] for f in remaining}
    bad_ablations = {f.field.split(".")[0] for f in remaining if f.field.startswith("ablations[")}
    bad_lists = {f.field for f in remaining if re.fullmatch(r"(baselines|datasets)\[\d+\]", f.field)}
    update: dict = {
        "ablations": [a for i, a in enumerate(draft.ablations) if f"ablations[{i}]" not in bad_ablations],
        "secondary_metrics": [m for m in draft.secondary_metrics if m in task_metrics(task)],
        "baselines": [b for i, b in enumerate(draft.baselines) if f"baselines[{i}]" not in bad_lists]
        or [f"the task's recipe as given ({task.name})"],
        "datasets": [d for i, d in enumerate(draft.datasets) if f"datasets[{i}]" not in bad_lists]
        or [f"the data of task {task.name}, with the evaluator's fixed split"],
    }
    if "title" in wrong:
        update["title"] = hypothesis.split(". ")[0][:120]
    if "proposed_method" in wrong:
        update["proposed_method"] = f"the task's recipe{recipe_family_text(task)}, changed as the hypothesis says: {hypothesis}"[:400]
    by_code = {"title", "proposed_method", "baselines", "datasets"}
    record_degenerate(ctx, recorded("planning", [f for f in remaining if f.field.split("[")[0] in by_code], "replaced by code")
                      + recorded("planning", [f for f in remaining if f.field.split("[")[0] not in by_code], "dropped"))
    notes = [f"after one repair, {f.field} = {f.value[:60]!r}: {f.reason}; "
             f"{'replaced by what code knows' if f.field.split('[')[0] in by_code else 'dropped'}" for f in remaining]
    return draft.model_copy(update=update), notes


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


def draft_findings(task: Task, draft: Draft, hypothesis: str, goal: str, names: set[str]) -> list[Finding]:
    """What the blueprint gate finds: degenerate text, metrics the evaluator does not measure, a method
    naming a model the recipe and hypothesis do not, ablations that do not fit their knob."""
    found = find_degenerate(draft.model_dump(exclude={"primary_metric", "secondary_metrics"}), goal, names, skip={"knob"})
    found += [Finding(field="secondary_metrics", value=m, reason="not measured by the task's evaluator", degenerate=False)
              for m in draft.secondary_metrics if m not in task_metrics(task)]
    contradiction = method_contradiction(task, draft.proposed_method, hypothesis)
    if contradiction:
        found.append(Finding(field="proposed_method", value=draft.proposed_method, reason=contradiction, degenerate=False))
    return found + [f for i, a in enumerate(draft.ablations) for f in ablation_problems(task, a, i)]


GENERIC_DATA_WORDS = stems("data dataset datasets set split splits train training test held out images samples examples")


def data_findings(task: Task, draft: Draft) -> list[Finding]:
    """Datasets the task does not use, and baselines that name the data instead of a method. Checked after
    the repair round and settled by code, which knows the task's data and recipe (a 1.5B model named MNIST
    for scikit-learn's 8x8 UCI digits and gave that dataset as the baseline)."""
    _, loaders, _, _ = read_task_folder(task.folder)
    data = stems(f"{task.description} {' '.join(loaders)}") - GENERIC_DATA_WORDS
    recipe = stems(recipe_family_text(task)) | {w[:5] for w in recipe_identifiers(task)}
    found = [Finding(field=f"datasets[{i}]", value=d, reason=f"not the task's data ({task.description})", degenerate=False)
             for i, d in enumerate(draft.datasets) if not stems(d) & data]
    return found + [
        Finding(field=f"baselines[{i}]", value=b, reason="names the task's data, not a method to compare with", degenerate=False)
        for i, b in enumerate(draft.baselines) if (words := stems(b) - GENERIC_DATA_WORDS) and words <= data and not words & recipe]


def ablation_problems(task: Task, ablation: KnobAblation, index: int = 0) -> list[Finding]:
    field = f"ablations[{index}]"
    knob = task.knobs.get(ablation.knob)
    if knob is None:
        return [Finding(field=f"{field}.knob", value=ablation.knob, degenerate=False,
                        reason=f"ablation {ablation.name!r} sets {ablation.knob!r}, which is not a knob of the task")]
    low, high = sorted((knob.min, knob.default))
    if not low <= ablation.value <= high or ablation.value == knob.default:
        return [Finding(field=f"{field}.value", value=f"{ablation.value:g}", degenerate=False,
                        reason=f"ablation {ablation.name!r} sets {ablation.knob}={ablation.value:g}; "
                               f"use a value in [{low:g}, {high:g}] other than the default")]
    if not mentions_knob(ablation.knob, f"{ablation.name} {ablation.description}"):
        return [Finding(field=f"{field}.description", value=ablation.description, degenerate=False,
                        reason=f"does not describe what it changes: name the knob {ablation.knob} and the value it sets")]
    return []


def mentions_knob(knob: str, text: str) -> bool:
    """Whether a text speaks of the knob: MAX_ITER in "max_iter 3", "maxiter" or "fewer iterations"."""
    words = re.findall(r"[a-z0-9]+", text.casefold())
    if re.sub(r"[^a-z0-9]", "", knob.casefold()) in "".join(words):
        return True
    stems = [part.removesuffix("s") for part in re.split(r"[^a-z0-9]+", knob.casefold()) if len(part) >= 4]
    return any(word.startswith(stem) for stem in stems for word in words)


# Model families a method may name, each with the words that name it and the code that uses it.
MODEL_FAMILIES = {
    "logistic regression": (r"logistic regression|\blogit\b", r"LogisticRegression"),
    "neural network": (r"neural net\w*|\bmlp\b|perceptron|\bcnn\b|convolutional|deep (learning|network)|transformer",
                       r"\btorch\b|nn\.Module|MLPClassifier|keras|tensorflow"),
    "support vector machine": (r"support[- ]vector|\bsvm\b|\bsvc\b", r"\bSVC\b|LinearSVC|\bSVR\b"),
    "random forest": (r"random forest", r"RandomForest"),
    "decision tree": (r"decision tree", r"DecisionTree"),
    "gradient boosting": (r"gradient[- ]boost\w*|xgboost|lightgbm", r"GradientBoosting|xgboost|lightgbm"),
    "nearest neighbours": (r"nearest[- ]neighbo\w*|\bk-?nn\b", r"KNeighbors"),
    "naive Bayes": (r"naive bayes", r"GaussianNB|MultinomialNB|BernoulliNB"),
}


def recipe_families(task: Task) -> list[str]:
    code = "\n".join((task.folder / f).read_text(encoding="utf-8", errors="replace") for f in editable_files(task))
    return [name for name, (_, used) in MODEL_FAMILIES.items() if re.search(used, code)]


def recipe_family_text(task: Task) -> str:
    families = recipe_families(task)
    return f" ({', '.join(families)})" if families else ""


def method_contradiction(task: Task, method: str, hypothesis: str) -> str | None:
    """A model family the method names that neither the recipe uses nor the hypothesis proposes."""
    used = recipe_families(task)
    named = [name for name, (words, _) in MODEL_FAMILIES.items() if re.search(words, method, re.IGNORECASE)]
    foreign = [n for n in named if n not in used and not re.search(MODEL_FAMILIES[n][0], hypothesis, re.IGNORECASE)]
    if not foreign:
        return None
    recipe = f"the recipe is {' and '.join(used)}" if used else "the recipe uses none"
    return f"names {', '.join(foreign)}, but {recipe} and the hypothesis does not propose it"


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
