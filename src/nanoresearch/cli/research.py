"""`nanoresearch run | resume | status | list | show | export | feedback`: research runs end to end."""

from __future__ import annotations

import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from nanoresearch.cli.common import (
    JsonOption,
    checked_executor,
    err,
    examples,
    open_run,
    out,
    print_json,
    print_table,
    session,
)
from nanoresearch.config import Settings
from nanoresearch.errors import BudgetExhausted, NanoResearchError, UserError
from nanoresearch.store import Store
from nanoresearch.store.models import Run

MAX_GOAL = 2000


app = typer.Typer()


@app.command("run", epilog=examples(
    'nanoresearch run "improve handwritten digit classification accuracy" --task examples/tasks/digits-classifier --budget trials=6,wall=20m',
    'nanoresearch run "GOAL" --task examples/tasks/tiny-mlp --budget trials=10,wall=20m,tokens=500k,usd=2 --yes',
))
def run(
    ctx: typer.Context,
    goal: Annotated[str, typer.Argument(help="The research goal, in a sentence or two.")],
    task: Annotated[Optional[Path], typer.Option(help="Task folder (task.toml, recipe, evaluator); see examples/tasks/. "
                                                 "Without it the coding model writes a recipe on a scikit-learn dataset.")] = None,
    budget: Annotated[Optional[str], typer.Option(help="Hard limits, e.g. trials=10,wall=15m,gpu_hours=2,tokens=500k,usd=2 "
                                                  "(default: your profile's compute_budget). Profile caps apply.")] = None,
    executor: Annotated[str, typer.Option(help="Where trials run: local, slurm or ray.")] = "local",
    parallel: Annotated[int, typer.Option(min=1, max=16, help="Trials in flight at once.")] = 1,
    offline: Annotated[bool, typer.Option(help="Use only the local corpus for literature (no network).")] = False,
    corpus: Annotated[Optional[Path], typer.Option(help="A folder of .bib/.md/.pdf papers to search.")] = None,
    project: Annotated[Optional[str], typer.Option(help="Project name (default: the task's name, or 'research').")] = None,
    max_debug: Annotated[int, typer.Option(min=0, max=10, help="Repair attempts for a crashed trial.")] = 1,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not stop for feedback after each stage.")] = False,
    feedback: Annotated[str, typer.Option(help="Where to answer after each stage: terminal, or web (the dashboard's "
                                          "page for the run, whose URL the terminal shows).")] = "terminal",
    no_skills: Annotated[bool, typer.Option("--no-skills", help="No skills recalled or distilled in this run.")] = False,
    no_memory: Annotated[bool, typer.Option("--no-memory", help="No memories recalled or written in this run.")] = False,
    no_policy: Annotated[bool, typer.Option("--no-policy", help="The base planner, no adapter and no training, in this run.")] = False,
) -> None:
    """Run a research project: literature, hypotheses, experiments, analysis, figures, paper, review."""
    from nanoresearch.compute.budget import parse_budget
    from nanoresearch.runs import new_run
    from nanoresearch.store.models import RunOptions
    from nanoresearch.trials.task import load_task

    goal = checked_goal(goal)
    checked_executor(executor)
    if feedback not in ("terminal", "web"):
        raise UserError(f"unknown --feedback {feedback!r}", hint="use --feedback terminal or --feedback web")
    with session(ctx) as (settings, store, user_id):
        loaded = load_task(task) if task is not None else None
        budget = profile_budget(settings, budget, executor, loaded.resources.gpus if loaded else 0)
        if corpus is not None and not corpus.is_dir():
            raise UserError(f"corpus folder {corpus} does not exist")
        if offline and corpus is None:
            raise UserError("--offline needs a local corpus", hint="add --corpus DIR, e.g. --corpus examples/corpus")
        options = RunOptions(
            task=str(loaded.folder) if loaded else None, budget=parse_budget(budget), executor=executor, parallel=parallel,
            offline=offline, corpus=str(corpus.resolve()) if corpus else None, max_debug=max_debug,
            coevolution=levels_on(settings, skills=not no_skills, memory=not no_memory, policy=not no_policy),
        )
        record = new_run(store, settings, user_id, project or (loaded.name if loaded else "research"), goal, options,
                         kind="research")
        err.print(f"run [bold]{record.id}[/] for {settings.user}: {escape(goal)}")
        err.print(f"workspace {record.workspace}")
        execute(settings, store, user_id, record, yes, web_feedback=feedback == "web")


def levels_on(settings: Settings, **wanted: bool) -> list[str]:
    """The co-evolution levels on for a new run: on in the settings (`[coevolution]`) and not switched off by a flag."""
    return [level for level in settings.coevolution.levels_on() if wanted[level]]


def profile_budget(settings: Settings, budget: str | None, executor: str, gpus: int) -> str:
    """The run's budget: the one asked for (or the profile's usual one), with the profile's hard caps applied."""
    from nanoresearch.profile import cap_budget_text, check_allowed, load_profile

    profile = load_profile(settings)
    check_allowed(profile, gpus=gpus, executor=executor)
    capped, notes = cap_budget_text(budget or profile.compute_budget, profile)
    for note in notes:
        err.print(f"[yellow]{escape(note)}[/]")
    return capped


@app.command("resume", epilog=examples("nanoresearch resume RUN", "nanoresearch resume RUN --budget tokens=+20k"))
def resume(
    ctx: typer.Context,
    run_id: Annotated[Optional[str], typer.Argument(help="Run id (default: your latest run).")] = None,
    task: Annotated[Optional[Path], typer.Option(help="A task folder for a run started without one whose "
                                                 "generated task failed.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not stop for feedback after each stage.")] = False,
    budget: Annotated[Optional[str], typer.Option(help="More budget for the run: tokens=+20k adds to a limit, "
                                                  "tokens=50k sets it; other limits stay. Profile caps apply.")] = None,
) -> None:
    """Continue a run after a crash, Ctrl-C or a spent budget: finished stages, trials and paid LLM calls are not repeated."""
    from nanoresearch.runs import users_run

    with session(ctx) as (settings, store, user_id):
        record = users_run(store, user_id, run_id)
        if record.kind == "trials":
            raise UserError(f"run {record.id} is a trial session; `nanoresearch resume` continues research runs",
                            hint=f"continue it with `nanoresearch trials run --task {record.options.task} --resume {record.id}`")
        if record.status == "done":
            err.print(f"run {record.id} already finished; `nanoresearch show {record.id}` shows what it made")
            return
        checked_executor(record.options.executor)  # a plug-in's may have been uninstalled since
        if task is not None:
            record = given_task(store, record, task)
        if budget is not None:
            record = given_budget(settings, store, record, budget)
        err.print(f"resuming run [bold]{record.id}[/]")
        execute(settings, store, user_id, record, yes)


def given_budget(settings: Settings, store: Store, record: Run, change: str) -> Run:
    """The run's budget raised (or set) as `resume --budget` asks, within the profile's hard caps."""
    from nanoresearch.compute.budget import parse_budget, raised_budget
    from nanoresearch.store.budget import format_budget

    raised = raised_budget(record.options.budget, change)
    text = profile_budget(settings, format_budget(raised), record.options.executor, 0)
    store.set_run_options(record.id, record.options.model_copy(update={"budget": parse_budget(text)}))
    err.print(f"budget: {text}")
    return store.get_run(record.id)


def given_task(store: Store, record: Run, folder: Path) -> Run:
    """Give a task to a run that has none yet; a run's task never changes once its experiment is planned."""
    from nanoresearch.trials.task import load_task

    if record.options.task:
        raise UserError(f"run {record.id} already has its task {record.options.task}",
                        hint="start a new run with `nanoresearch run GOAL --task DIR`")
    store.set_run_options(record.id, record.options.model_copy(update={"task": str(load_task(folder).folder)}))
    return store.get_run(record.id)


def execute(settings: Settings, store: Store, user_id: int, record: Run, yes: bool, web_feedback: bool = False) -> None:
    from nanoresearch.cli.display import Reporter, TerminalGate
    from nanoresearch.cli.web import DEFAULT_PORT, dashboard_url
    from nanoresearch.compute.budget import ModelCallGate
    from nanoresearch.doctor import run_start_lines
    from nanoresearch.llm.client import LLM
    from nanoresearch.pipeline.context import RunContext
    from nanoresearch.pipeline.feedback import DashboardGate
    from nanoresearch.pipeline.orchestrator import FeedbackGate, Unattended, run_pipeline
    from nanoresearch.policy.adapters import adapter_loader
    from nanoresearch.runs import drive
    from nanoresearch.trials.task import load_task

    options = record.options
    settings = settings.for_run(options.coevolution)  # the levels the run was started with, on resume too
    llm = LLM(settings, store, user_id, run_id=record.id, replay_within_run=True, adapters=adapter_loader(settings),
              budget=ModelCallGate(store, user_id, record.id))
    with (
        drive(store, record, again=f"nanoresearch resume {record.id}"),
        Reporter(err, store, user_id, record.id, options.budget) as reporter,
    ):
        interactive = not yes and sys.stdin.isatty()
        gate: FeedbackGate = TerminalGate(err, reporter) if interactive else Unattended()
        if web_feedback and not yes:
            page = f"{dashboard_url('127.0.0.1', DEFAULT_PORT, None)}runs/{record.id}"
            gate = DashboardGate(store, user_id, record.id, page, say=reporter.say)
        context = RunContext(settings, store, user_id, record, llm, options,
                             task=load_task(options.task) if options.task else None, say=reporter.say)
        for line in run_start_lines(settings):  # what each model is good for; plainly when the run is a demonstration
            reporter.say(line)
            context.log("models", line=line)
        try:
            run_pipeline(context, gate)
        except BudgetExhausted:
            print_artifacts(Path(record.workspace))  # what the run made before the stop, its report included
            raise
    print_artifacts(Path(record.workspace))


@app.command("status", epilog=examples("nanoresearch status", "nanoresearch status RUN --json"))
def status(ctx: typer.Context, run_id: Annotated[Optional[str], typer.Argument(help="Run id (default: your latest).")] = None,
           as_json: JsonOption = False) -> None:
    """Where a run stands: each stage of a research run (the live one with its clock and last step) or a trial
    session's lineage, how long it has run, what was spent and what is left."""
    from nanoresearch.cli.trials import render_tree_for
    from nanoresearch.cli.watch import between_stages
    from nanoresearch.compute.budget import left, spent
    from nanoresearch.pipeline.progress import duration_text, left_text, spending_text
    from nanoresearch.runs import shown_status

    (_, store, user_id), record = open_run(ctx, run_id)
    run_status = shown_status(record)
    if as_json:
        print_json(status_data(store, user_id, record))
        return
    if record.kind == "research":
        steps = store.steps(record.id)
        out.print(stage_table(store, record, run_status))
        if run_status == "running" and not any(s.step == "stage" and s.status == "running" for s in steps):
            out.print(between_stages(steps))
    else:
        out.print(f"[bold]{record.id}[/] ({run_status}): {escape(record.goal)}")
        out.print(render_tree_for(store, record.id, record.options.direction))
    used = spent(store, user_id, record.id)
    remaining = left(record.options.budget, used)
    out.print(f"spent: {spending_text(used)} · {used.cpu_hours:.3f} CPU-h · {used.gpu_hours:.3f} GPU-h · "
              f"{duration_text(used.wall_s)} running; left: {left_text(remaining)}", highlight=False)


def status_data(store: Store, user_id: int, record: Run) -> dict:
    """`status --json`: the run, its stage checkpoints, its trials, and what was spent and is left."""
    from nanoresearch.compute.budget import left, spent
    from nanoresearch.runs import shown_status

    used = spent(store, user_id, record.id)
    return {"run": {**record.model_dump(mode="json"), "shown_status": shown_status(record)},
            "stages": [s.model_dump(mode="json") for s in store.steps(record.id) if s.step == "stage"],
            "trials": [t.model_dump(mode="json", exclude={"diff", "logs_tail"}) for t in store.trials(record.id)],
            "spent": used.model_dump(), "left": left(record.options.budget, used)}


def stage_table(store: Store, record: Run, run_status: str) -> Table:
    """A research run's stages, each with its status and summary; the stage running now with its clock and last step."""
    from nanoresearch.cli.watch import live_stage_cells
    from nanoresearch.pipeline.context import STAGE_NAMES

    table = Table(title=f"{record.id} ({run_status})")
    for column in ("stage", "status", "summary"):
        table.add_column(column)
    every_step = store.steps(record.id)
    steps = {s.stage: s for s in every_step if s.step == "stage"}
    for name in STAGE_NAMES:
        step = steps.get(name)
        summary = (step.payload.get("summary") or step.payload.get("error") or step.payload.get("stopped", "")) if step else ""
        stage_status: str = step.status if step else ("not run: budget" if record.stop_reason == "budget" else "pending")
        if stage_status == "running" and run_status != "running":
            stage_status = run_status  # the stage stopped with its run: paused, interrupted or failed
        elif stage_status == "running" and step:
            stage_status, summary = live_stage_cells(every_step, step)
        table.add_row(name, stage_status, escape(summary))
    return table


@app.command("list", epilog=examples("nanoresearch list", "nanoresearch list --all --json"))
def list_runs(
    ctx: typer.Context,
    as_json: JsonOption = False,
    all_runs: Annotated[bool, typer.Option("--all", help="Archived runs too (`nanoresearch archive` hides a run).")] = False,
) -> None:
    """Your runs, oldest first. Ids are never cut: a narrow terminal or a pipe drops columns and
    shortens the goal instead."""
    from nanoresearch.runs import shown_status

    with session(ctx) as (settings, store, user_id):
        runs = [record for record in store.list_runs(user_id) if all_runs or not record.archived_at]
    if as_json:
        print_json([{**record.model_dump(mode="json"), "shown_status": shown_status(record)} for record in runs])
        return
    rows = [[record.id, shown_status(record) + (" (archived)" if record.archived_at else ""), record.kind, record.goal,
             record.created_at[:16].replace("T", " ")] for record in runs]
    print_table(f"runs of {settings.user}", ("id", "status", "kind", "goal", "created"), rows, flex="goal",
                droppable=("created", "kind", "status"))


@app.command("show", epilog=examples("nanoresearch show RUN", "nanoresearch show RUN --json"))
def show(ctx: typer.Context, run_id: Annotated[Optional[str], typer.Argument(help="Run id (default: your latest).")] = None,
         as_json: JsonOption = False) -> None:
    """A run's goal, selected hypothesis, results, paper and final review (a trial session's lineage and best trial)."""
    from nanoresearch.runs import shown_status

    (_, store, _), record = open_run(ctx, run_id)
    folder = Path(record.workspace)
    if as_json:
        print_json({"run": {**record.model_dump(mode="json"), "shown_status": shown_status(record)},
                    **{name: _json(folder / path) for name, path in SHOWN_FILES.items()}, "artifacts": artifacts(folder)})
        return
    out.print(f"[bold]{record.id}[/] ({shown_status(record)}): {escape(record.goal)}")
    if record.kind == "trials":
        show_session(store, record)
    ideas = _json(folder / SHOWN_FILES["ideas"])
    if ideas:
        chosen = ideas["hypotheses"][ideas["selected"]]
        out.print(f"hypothesis: {escape(chosen['statement'])} (novelty {chosen['novelty']:.2f}; {escape(ideas['reason'])})")
    results = _json(folder / SHOWN_FILES["results"])
    for condition in (results or {}).get("conditions", []):
        if condition["mean"] is not None:
            out.print(f"  {escape(condition['name'])}: {condition['mean']:.4g} ± {condition['std']:.2g} (n={condition['n']})")
    review = _json(folder / SHOWN_FILES["review"])
    if review:
        out.print(f"review: overall {review['overall']}/10, soundness {review['soundness']}, presentation "
                  f"{review['presentation']}, contribution {review['contribution']}, confidence {review['confidence']}")
    print_artifacts(folder)


@app.command("export", epilog=examples("nanoresearch export RUN -o run.zip", "nanoresearch export RUN --html run.html"))
def export(
    ctx: typer.Context,
    run_id: Annotated[Optional[str], typer.Argument(help="Run id (default: your latest).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Zip file to write (default: RUN.zip).")] = None,
    html: Annotated[Optional[Path], typer.Option(help="Write one self-contained HTML page of the run here instead "
                                                 "(tree, timeline, figures, review; opens offline).")] = None,
) -> None:
    """The run's workspace as a zip, with its trials, steps, feedback and LLM calls from the store."""
    (_, store, user_id), record = open_run(ctx, run_id)
    if html is not None:
        export_page(store, user_id, record, html)
        return
    target = output or Path(f"{record.id}.zip")
    folder = Path(record.workspace)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                archive.write(path, f"{record.id}/{path.relative_to(folder)}")
        records = {
            "trials.json": [t.model_dump() for t in store.trials(record.id)],
            "steps.json": [s.model_dump() for s in store.steps(record.id)],
            "feedback.json": [f.model_dump() for f in store.feedback(user_id, record.id)],
            "llm_calls.json": [c.model_dump(exclude={"prompt_ids", "output_ids"}) for c in store.llm_calls(user_id, record.id)],
        }
        for name, rows in records.items():
            archive.writestr(f"{record.id}/store/{name}", json.dumps(rows, indent=2, default=str))
    err.print(f"wrote {target}")


def export_page(store: Store, user_id: int, record: Run, target: Path) -> None:
    try:
        from nanoresearch.web.export import write_export
    except ImportError as exc:
        raise UserError(f"the HTML export needs the web extra ({exc.name} is missing)",
                        hint="pip install 'nanoresearch[web]'") from None
    if not target.parent.is_dir():
        raise UserError(f"cannot write {target}: the folder {target.parent} does not exist")
    err.print(f"wrote {write_export(store, user_id, record, target)}")


@app.command("feedback", epilog=examples(
    'nanoresearch feedback RUN --stage planning "always include an ablation of each component"',
    'nanoresearch feedback RUN --stage writing --action redirect --no-train "shorter related work"',
))
def feedback(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    text: Annotated[str, typer.Argument(help="Your comment on the stage.")],
    stage: Annotated[str, typer.Option(help="The stage it is about.")],
    action: Annotated[str, typer.Option(help="comment, redirect or approve.")] = "comment",
    train: Annotated[bool, typer.Option(help="Train your planner on it now (unless policy.when = 'manual').")] = True,
) -> None:
    """Comment on a stage of a run after the fact; it is stored with that stage's planner call, and your
    planner's adapter learns from it (SDPO)."""
    from nanoresearch.pipeline.feedback import checked_feedback, record_feedback, trains_on

    checked_feedback(stage, action, text)
    (settings, store, user_id), record = open_run(ctx, run_id)
    stored = record_feedback(store, user_id, record, stage, action, text)
    err.print(f"recorded your {action} on {stage} of {record.id} (with planner call {stored.plan_id})")
    if train and trains_on(settings, stored):
        train_on_feedback(settings, store)


def show_session(store: Store, record: Run) -> None:
    """A trial session's lineage and its best trial."""
    from nanoresearch.cli.trials import best_text, render_tree_for
    from nanoresearch.trials.lineage import head

    out.print(render_tree_for(store, record.id, record.options.direction))
    best = head(store.trials(record.id), record.options.direction)
    if best is not None:
        out.print(best_text(best, score_name(record)))


def score_name(record: Run) -> str:
    """The name of the score of the run's task, as its task.toml says ('score' once the folder is gone)."""
    from nanoresearch.trials.task import load_task

    try:
        return load_task(record.options.task).score.metric if record.options.task else "score"
    except UserError:
        return "score"


def train_on_feedback(settings: Settings, store: Store) -> None:
    from nanoresearch.policy.train import train_user

    err.print("training your planner on it (`--no-train` skips this; `nanoresearch policy train` runs it later)")
    try:
        result = train_user(settings, store)
    except NanoResearchError as exc:  # the feedback is stored either way
        err.print(f"[yellow]planner policy not trained: {escape(exc.message)}[/]")
        return
    err.print(f"planner policy: {escape(result.message)}")


# helpers


def checked_goal(goal: str) -> str:
    """A goal must be a sentence about something: not empty, not a keyboard smash, not a novel."""
    goal = " ".join(goal.split())
    if not goal:
        raise UserError("the research goal is empty", hint='say what to find out, e.g. "improve digit classification accuracy"')
    if len(goal) > MAX_GOAL:
        raise UserError(f"the research goal is {len(goal)} characters; keep it under {MAX_GOAL}")
    words = re.findall(r"[^\W\d_]{2,}", goal)
    letters = sum(c.isalpha() for c in goal)
    if len(words) < 2 or letters < 0.5 * len(goal.replace(" ", "")):
        raise UserError(f"the research goal {goal!r} does not read as a goal",
                        hint='write a sentence, e.g. "improve digit classification accuracy"')
    return goal


SHOWN_FILES = {"ideas": "ideas.json", "results": "results.json", "review": "reviews/review.json"}  # what `show` reads
ARTIFACTS = ("ideas.json", "blueprint.json", "results.json", "figures", "paper/paper.pdf", "paper/paper.tex",
             "reviews/review.json", "report.md")


def artifacts(folder: Path) -> dict[str, str]:
    """What the run has made so far, by name, with its path."""
    return {name: str(folder / name) for name in ARTIFACTS if (folder / name).exists()}


def print_artifacts(folder: Path) -> None:
    for name, path in artifacts(folder).items():
        out.print(f"  {name}: {path}", highlight=False)


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
