"""`nanoresearch run | resume | status | list | show | export | feedback`: research runs end to end."""

from __future__ import annotations

import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nanoresearch.config import Settings, load_settings
from nanoresearch.errors import EndpointUnavailableError, NanoResearchError, UserError
from nanoresearch.store import Store
from nanoresearch.store.models import Run, StagePlanRecord

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

MAX_GOAL = 2000


def register(app: typer.Typer) -> None:
    for name, command in (("run", run), ("resume", resume), ("status", status), ("list", list_runs),
                          ("show", show), ("export", export), ("feedback", feedback)):
        app.command(name)(command)


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
) -> None:
    """Run a research project: literature, hypotheses, experiments, analysis, figures, paper, review."""
    from nanoresearch.pipeline.context import RunOptions
    from nanoresearch.runs import new_run
    from nanoresearch.trials.task import load_task

    goal = checked_goal(goal)
    settings = _settings(ctx)
    loaded = load_task(task) if task is not None else None
    budget = profile_budget(settings, budget, executor, loaded.resources.gpus if loaded else 0)
    if corpus is not None and not corpus.is_dir():
        raise UserError(f"corpus folder {corpus} does not exist")
    if offline and corpus is None:
        raise UserError("--offline needs a local corpus", hint="add --corpus DIR, e.g. --corpus examples/corpus")
    options = RunOptions(
        goal=goal, task=str(loaded.folder) if loaded else None, budget=budget, executor=executor, parallel=parallel, offline=offline,
        corpus=str(corpus.resolve()) if corpus else None, max_debug=max_debug,
    )
    with Store(settings.db_path) as store:
        user_id = store.ensure_user(settings.user)
        record = new_run(store, settings, user_id, project or (loaded.name if loaded else "research"), goal, options.model_dump())
        err.print(f"run [bold]{record.id}[/] for {settings.user}: {escape(goal)}")
        err.print(f"workspace {record.workspace}")
        execute(settings, store, user_id, record, yes)


def profile_budget(settings: Settings, budget: str | None, executor: str, gpus: int) -> str:
    """The run's budget: the one asked for (or the profile's usual one), with the profile's hard caps applied."""
    from nanoresearch.profile import cap_budget_text, check_allowed, load_profile

    profile = load_profile(settings)
    check_allowed(profile, gpus=gpus, executor=executor)
    capped, notes = cap_budget_text(budget or profile.compute_budget, profile)
    for note in notes:
        err.print(f"[yellow]{escape(note)}[/]")
    return capped


def resume(
    ctx: typer.Context,
    run_id: Annotated[Optional[str], typer.Argument(help="Run id (default: your latest run).")] = None,
    task: Annotated[Optional[Path], typer.Option(help="A task folder for a run started without one whose "
                                                 "generated task failed.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not stop for feedback after each stage.")] = False,
) -> None:
    """Continue a run after a crash or Ctrl-C: finished stages, trials and paid LLM calls are not repeated."""
    from nanoresearch.runs import users_run

    settings = _settings(ctx)
    with Store(settings.db_path) as store:
        user_id = store.ensure_user(settings.user)
        record = users_run(store, user_id, run_id)
        if record.status == "done":
            err.print(f"run {record.id} already finished; `nanoresearch show {record.id}` shows what it made")
            return
        if "goal" not in record.config:
            raise UserError(f"run {record.id} is a trial session, not a research run",
                            hint=f"continue it with `nanoresearch trials run --task DIR --resume {record.id}`")
        if task is not None:
            record = given_task(store, record, task)
        err.print(f"resuming run [bold]{record.id}[/]")
        execute(settings, store, user_id, record, yes)


def task_flag(exc: NanoResearchError) -> str:
    return " --task DIR" if "--task DIR" in (exc.hint or "") else ""


def given_task(store: Store, record: Run, folder: Path) -> Run:
    """Give a task to a run that has none yet; a run's task never changes once its experiment is planned."""
    from nanoresearch.trials.task import load_task

    if record.config.get("task"):
        raise UserError(f"run {record.id} already has its task {record.config['task']}",
                        hint="start a new run with `nanoresearch run GOAL --task DIR`")
    store.set_run_config(record.id, record.config | {"task": str(load_task(folder).folder)})
    return store.get_run(record.id)


def execute(settings: Settings, store: Store, user_id: int, record: Run, yes: bool) -> None:
    from nanoresearch.cli.display import Reporter, TerminalGate
    from nanoresearch.llm.client import LLM
    from nanoresearch.pipeline.context import RunContext, RunOptions
    from nanoresearch.pipeline.orchestrator import Unattended, run_pipeline
    from nanoresearch.policy.adapters import adapter_loader
    from nanoresearch.runs import driving, say_how_to_continue
    from nanoresearch.trials.task import load_task

    options = RunOptions.model_validate(record.config)
    llm = LLM(settings, store, user_id, run_id=record.id, replay_within_run=True, adapters=adapter_loader(settings))
    console = Console(stderr=True, soft_wrap=True)
    with driving(record), Reporter(console, store, user_id, record.id, options.budget) as reporter:
        interactive = not yes and sys.stdin.isatty()
        gate = TerminalGate(console, reporter) if interactive else Unattended()
        context = RunContext(settings, store, user_id, record, llm, options,
                             task=load_task(options.task) if options.task else None, say=reporter.say)
        try:
            run_pipeline(context, gate)
        except KeyboardInterrupt:
            err.print(f"\ninterrupted; the run is paused; continue with: nanoresearch resume {record.id}")
            raise typer.Exit(130) from None
        except NanoResearchError as exc:
            state = "paused" if isinstance(exc, EndpointUnavailableError) else "failed"
            say_how_to_continue(exc, record.id, f"nanoresearch resume {record.id}{task_flag(exc)}", state)
            raise
    print_artifacts(Path(record.workspace))


def status(ctx: typer.Context, run_id: Annotated[Optional[str], typer.Argument(help="Run id (default: your latest).")] = None) -> None:
    """Where a run stands: each stage, what it produced, what was spent and what is left."""
    from nanoresearch.compute.budget import left, parse_budget, spent
    from nanoresearch.runs import shown_status

    store, record = _open_run(ctx, run_id)
    run_status = shown_status(record)
    table = Table(title=f"{record.id} ({run_status})")
    for column in ("stage", "status", "summary"):
        table.add_column(column)
    steps = {s.stage: s for s in store.steps(record.id) if s.step == "stage"}
    from nanoresearch.pipeline.orchestrator import STAGE_NAMES

    for name in STAGE_NAMES:
        step = steps.get(name)
        summary = (step.payload.get("summary") or step.payload.get("error", "")) if step else ""
        stage_status = step.status if step else "pending"
        if stage_status == "running" and run_status != "running":
            stage_status = run_status  # the stage stopped with its run: paused, interrupted or failed
        table.add_row(name, stage_status, escape(summary))
    out.print(table)
    used = spent(store, store.ensure_user(_settings(ctx).user), record.id)
    remaining = left(parse_budget(record.config.get("budget", "")), used) if record.config.get("budget") else {}
    out.print(f"spent: {used.trials} trials, {used.tokens:.0f} tokens, ${used.usd:.4f}, {used.cpu_hours:.3f} CPU-h, "
              f"{used.gpu_hours:.3f} GPU-h; left: {', '.join(f'{k} {v:.3g}' for k, v in remaining.items()) or 'no limits'}")


def list_runs(ctx: typer.Context) -> None:
    """Your runs, oldest first."""
    from nanoresearch.runs import shown_status

    settings = _settings(ctx)
    with Store(settings.db_path) as store:
        runs = store.list_runs(store.ensure_user(settings.user))
    table = Table(title=f"runs of {settings.user}")
    for column in ("id", "status", "kind", "goal", "created"):
        table.add_column(column)
    for record in runs:
        kind = "research" if "goal" in record.config else "trials"
        table.add_row(record.id, shown_status(record), kind, escape(record.goal[:70]), record.created_at[:19])
    out.print(table)


def show(ctx: typer.Context, run_id: Annotated[Optional[str], typer.Argument(help="Run id (default: your latest).")] = None) -> None:
    """A run's goal, selected hypothesis, results, paper and final review."""
    from nanoresearch.runs import shown_status

    _, record = _open_run(ctx, run_id)
    folder = Path(record.workspace)
    out.print(f"[bold]{record.id}[/] ({shown_status(record)}): {escape(record.goal)}")
    ideas = _json(folder / "ideas.json")
    if ideas:
        chosen = ideas["hypotheses"][ideas["selected"]]
        out.print(f"hypothesis: {escape(chosen['statement'])} (novelty {chosen['novelty']:.2f}; {escape(ideas['reason'])})")
    results = _json(folder / "results.json")
    for condition in (results or {}).get("conditions", []):
        if condition["mean"] is not None:
            out.print(f"  {escape(condition['name'])}: {condition['mean']:.4g} ± {condition['std']:.2g} (n={condition['n']})")
    review = _json(folder / "reviews" / "review.json")
    if review:
        out.print(f"review: overall {review['overall']}/10, soundness {review['soundness']}, presentation "
                  f"{review['presentation']}, contribution {review['contribution']}, confidence {review['confidence']}")
    print_artifacts(folder)


def export(
    ctx: typer.Context,
    run_id: Annotated[Optional[str], typer.Argument(help="Run id (default: your latest).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Zip file to write (default: RUN.zip).")] = None,
) -> None:
    """The run's workspace as a zip, with its trials, steps, feedback and LLM calls from the store."""
    store, record = _open_run(ctx, run_id)
    user_id = store.ensure_user(_settings(ctx).user)
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
    from nanoresearch.pipeline.orchestrator import STAGE_NAMES

    if stage not in STAGE_NAMES:
        raise UserError(f"unknown stage {stage!r}", hint=f"stages are: {', '.join(STAGE_NAMES)}")
    if action not in ("comment", "redirect", "approve"):
        raise UserError(f"unknown action {action!r}", hint="use comment, redirect or approve")
    if action != "approve" and not text.strip():
        raise UserError("the feedback text is empty")
    store, record = _open_run(ctx, run_id)
    user_id = store.ensure_user(_settings(ctx).user)
    plan = judged_plan(store, user_id, record.id, stage)
    if plan is None:
        raise UserError(f"run {record.id} has no {stage} stage yet", hint=f"`nanoresearch status {record.id}` shows its stages")
    store.add_feedback(user_id, record.id, stage, action, text.strip(), plan.id)
    err.print(f"recorded your {action} on {stage} of {record.id} (with planner call {plan.id})")
    settings = _settings(ctx)
    if train and text.strip() and settings.policy.when != "manual":
        train_on_feedback(settings, store)


def judged_plan(store: Store, user_id: int, run_id: str, stage: str) -> StagePlanRecord | None:
    """The plan the user saw last for the stage: the finished stage's own, else the latest one."""
    plans = [p for p in store.stage_plans(user_id, run_id) if p.stage == stage]
    done = next((s for s in store.steps(run_id) if s.stage == stage and s.step == "stage" and s.status == "done"), None)
    chosen = next((p for p in plans if done is not None and p.id == done.payload.get("plan_id")), None)
    return chosen or (plans[-1] if plans else None)


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


def print_artifacts(folder: Path) -> None:
    names = ["ideas.json", "blueprint.json", "results.json", "figures", "paper/paper.pdf", "paper/paper.tex",
             "reviews/review.json", "report.md"]
    for name in names:
        if (folder / name).exists():
            out.print(f"  {name}: {folder / name}", highlight=False)


def _settings(ctx: typer.Context) -> Settings:
    return load_settings(ctx.obj or {})


def _open_run(ctx: typer.Context, run_id: str | None) -> tuple[Store, Run]:
    from nanoresearch.runs import users_run

    settings = _settings(ctx)
    store = Store(settings.db_path)
    return store, users_run(store, store.ensure_user(settings.user), run_id)


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
