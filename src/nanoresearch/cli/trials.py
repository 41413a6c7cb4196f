"""`nanoresearch trials …`: run the closed trial loop on a task and inspect its lineage."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape
from rich.tree import Tree

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
    short,
)
from nanoresearch.errors import UserError
from nanoresearch.trials.lineage import head, outcome_text

if TYPE_CHECKING:
    from nanoresearch.store import Store
    from nanoresearch.store.budget import Budget
    from nanoresearch.store.models import Run, Trial

app = typer.Typer(help="Run the closed trial loop on a task and inspect its lineage.", no_args_is_help=True)

DEFAULT_BUDGET = "trials=6,wall=20m"  # a new session's, unless --budget says otherwise
EXPORT_FIELDS = ("id", "parent_id", "proposer", "hypothesis", "status", "kept", "score", "failure", "detail",
                 "executor", "job_id", "started_at", "ended_at", "knobs", "metrics", "diff")


@app.command("run", epilog=examples(
    "nanoresearch trials run --task examples/tasks/digits-classifier --budget trials=6,wall=20m",
    "nanoresearch trials run --task examples/tasks/tiny-mlp --executor local --parallel 2 --max-debug 2",
))
def trials_run(
    ctx: typer.Context,
    task: Annotated[Path, typer.Option(help="Task folder (with task.toml).")],
    budget: Annotated[Optional[str], typer.Option(help="Hard limits, e.g. trials=8,wall=15m,cpu_hours=1,gpu_hours=2,tokens=200k,usd=1 "
                                                  f"(default {DEFAULT_BUDGET}; with --resume, the session's own).")] = None,
    executor: Annotated[str, typer.Option(help="Where trials run: local, slurm or ray.")] = "local",
    parallel: Annotated[int, typer.Option(min=1, max=16, help="Trials in flight at once.")] = 1,
    max_debug: Annotated[int, typer.Option(min=0, max=10, help="Repair attempts for a crashed edit.")] = 2,
    resume: Annotated[Optional[str], typer.Option(help="Continue this run's lineage instead of starting a new run.")] = None,
) -> None:
    """Improve a task's score with LLM-proposed trials inside a budget."""
    from nanoresearch.compute.budget import ModelCallGate, parse_budget
    from nanoresearch.compute.executor import create_executor
    from nanoresearch.llm.client import LLM
    from nanoresearch.runs import drive, lifecycle, new_run, users_run
    from nanoresearch.store.budget import format_budget
    from nanoresearch.store.models import RunOptions
    from nanoresearch.trials.loop import LoopSettings, TrialLoop
    from nanoresearch.trials.task import load_task

    checked_executor(executor)
    loaded = load_task(task)
    asked = parse_budget(budget) if budget is not None else None
    with session(ctx) as (settings, store, user_id):
        if resume:
            run = resumed_session(store, users_run(store, user_id, resume), asked)
        else:
            options = RunOptions(task=str(loaded.folder), budget=asked or parse_budget(DEFAULT_BUDGET), executor=executor,
                                 parallel=parallel, max_debug=max_debug, direction=loaded.score.direction)
            run = new_run(store, settings, user_id, loaded.name, f"optimise {loaded.metric_text()}", options, kind="trials")
        loop = TrialLoop(
            loaded, store, LLM(settings, store, user_id, run_id=run.id, budget=ModelCallGate(store, user_id, run.id)),
            create_executor(executor, settings),
            run.id, user_id, run.options.budget, Path(run.workspace), LoopSettings(
                parallel=parallel, max_debug=max_debug, show_search_space=settings.pipeline.show_search_space),
            on_event=lambda message: err.print(f"[dim]{escape(message)}[/]"),
        )
        with drive(store, run, again=f"nanoresearch trials run --task {task} --resume {run.id}"):
            err.print(f"run [bold]{run.id}[/] on {loaded.name} ({executor} executor), budget {format_budget(run.options.budget)}")
            with lifecycle(store, run.id):
                best = loop.run()
        out.print(render_tree_for(store, run.id, loaded.score.direction))
        if best is None:
            err.print(f"[yellow]{escape(loop.why_no_result())}[/]")
            raise typer.Exit(1)
        out.print(best_text(best, loaded.score.metric))


def resumed_session(store: Store, run: Run, budget: Budget | None) -> Run:
    """The trial session `--resume` names; a budget given now replaces the session's own."""
    if run.kind != "trials":
        raise UserError(f"run {run.id} is a research run; `trials run --resume` continues trial sessions",
                        hint=f"continue it with `nanoresearch resume {run.id}`")
    if budget is None:
        return run
    store.set_run_options(run.id, run.options.model_copy(update={"budget": budget}))
    return store.get_run(run.id)


def best_text(best: Trial, metric: str) -> str:
    return f"best: trial {best.id}, {metric} = {best.score:.4g}"


@app.command("list", epilog=examples("nanoresearch trials list", "nanoresearch trials list --run RUN --json"))
def trials_list(ctx: typer.Context, run: Annotated[Optional[str], typer.Option(help="Run id (default: your latest).")] = None,
                as_json: JsonOption = False) -> None:
    """The trials of a run, one line each (narrow output drops columns and shortens the hypothesis)."""
    (_, store, _), selected = open_run(ctx, run)
    trials = store.trials(selected.id)
    if as_json:
        print_json([{k: v for k, v in t.model_dump().items() if k in EXPORT_FIELDS} for t in trials])
        return
    rows = [[str(t.id), str(t.parent_id or "-"), t.proposer, outcome_text(t), t.hypothesis] for t in trials]
    print_table(f"trials of {selected.id}", ("id", "parent", "proposer", "outcome", "hypothesis"), rows,
                flex="hypothesis", droppable=("parent", "proposer"))


@app.command("show", epilog=examples("nanoresearch trials show 3"))
def trials_show(ctx: typer.Context, trial_id: Annotated[int, typer.Argument(help="Trial id.")]) -> None:
    """One trial: hypothesis, diff, command, resources, score, failure and logs."""
    store, trial = _open_trial(ctx, trial_id)
    out.print(f"[bold]trial {trial.id}[/] (parent {trial.parent_id or '-'}) by {trial.proposer}: {escape(trial.hypothesis)}")
    out.print(f"status {trial.status}, kept {trial.kept}, score {trial.score}, failure {trial.failure or '-'}")
    if trial.detail:
        out.print(f"detail: {escape(trial.detail)}")
    out.print(f"command: {escape(trial.command)}   executor: {trial.executor} job {trial.job_id}")
    out.print(f"resources: {trial.resources}   knobs: {trial.knobs}   metrics: {trial.metrics}")
    out.rule("diff")
    out.print(escape(trial.diff) or "(no change: the parent's code)", highlight=False)
    out.rule("logs (tail)")
    out.print(escape(trial.logs_tail) or "(none)", highlight=False)


@app.command("tree", epilog=examples("nanoresearch trials tree", "nanoresearch trials tree --run RUN"))
def trials_tree(ctx: typer.Context, run: Annotated[Optional[str], typer.Option(help="Run id (default: your latest).")] = None) -> None:
    """The lineage of a run drawn as a tree; the head (best kept trial) in bold."""
    (_, store, _), selected = open_run(ctx, run)
    out.print(render_tree_for(store, selected.id, selected.options.direction))


@app.command("export", epilog=examples("nanoresearch trials export --format json -o trials.json"))
def trials_export(
    ctx: typer.Context,
    run: Annotated[Optional[str], typer.Option(help="Run id (default: your latest).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="tsv or json.")] = "tsv",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
) -> None:
    """The whole trajectory of a run as TSV or JSON."""
    if fmt not in ("tsv", "json"):
        raise UserError(f"unknown format {fmt!r}", hint="use --format tsv or --format json")
    (_, store, _), selected = open_run(ctx, run)
    rows = [{k: v for k, v in t.model_dump().items() if k in EXPORT_FIELDS} for t in store.trials(selected.id)]
    text = json.dumps(rows, indent=2) if fmt == "json" else _tsv(rows)
    if output:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {len(rows)} trials to {output}")
    else:
        typer.echo(text)  # raw: Rich would expand the TSV's tabs


def render_tree_for(store: Store, run_id: str, direction: str) -> Tree:
    """The lineage of a run as a tree: the head (best kept trial) bold green, failures red, reverted dim."""
    trials = store.trials(run_id)
    best = head(trials, direction)
    root = Tree("[bold]lineage[/]")
    nodes: dict[int, Tree] = {}
    for t in trials:
        style = "bold green" if best and t.id == best.id else ("red" if t.failure else ("green" if t.kept else "dim"))
        label = f"[{style}]#{t.id} {t.proposer}: {outcome_text(t)}[/] {escape(short(t.hypothesis, 70))}"
        parent = nodes.get(t.parent_id) if t.parent_id else None
        nodes[t.id] = (parent or root).add(label)
    return root


def _tsv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in row.items()})
    return buffer.getvalue()


def _open_trial(ctx: typer.Context, trial_id: int) -> tuple[Store, Trial]:
    from nanoresearch.runs import users_run

    _, store, user_id = session(ctx)
    trial = store.trial(trial_id)
    users_run(store, user_id, trial.run_id)  # refuses another user's trial
    return store, trial
