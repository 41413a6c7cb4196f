"""`nanoresearch trials …`: run the closed trial loop on a task and inspect its lineage."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nanoresearch.config import Settings, load_settings
from nanoresearch.errors import UserError

if TYPE_CHECKING:
    from nanoresearch.store import Store
    from nanoresearch.store.models import Trial
    from nanoresearch.trials.loop import TrialLoop

app = typer.Typer(help="Run the closed trial loop on a task and inspect its lineage.", no_args_is_help=True)
out = Console()
err = Console(stderr=True, soft_wrap=True)  # paths in messages must stay copyable

EXPORT_FIELDS = ("id", "parent_id", "proposer", "hypothesis", "status", "kept", "score", "failure", "detail",
                 "executor", "job_id", "started_at", "ended_at", "knobs", "metrics", "diff")


def _settings(ctx: typer.Context) -> Settings:
    return load_settings((ctx.obj or {}) if ctx.obj else {})


@app.command("run")
def trials_run(
    ctx: typer.Context,
    task: Annotated[Path, typer.Option(help="Task folder (with task.toml).")],
    budget: Annotated[str, typer.Option(help="Hard limits, e.g. trials=8,wall=15m,cpu_hours=1,gpu_hours=2,tokens=200k,usd=1.")] = "trials=6,wall=20m",
    executor: Annotated[str, typer.Option(help="Where trials run: local, slurm or ray.")] = "local",
    parallel: Annotated[int, typer.Option(min=1, max=16, help="Trials in flight at once.")] = 1,
    max_debug: Annotated[int, typer.Option(min=0, max=10, help="Repair attempts for a crashed edit.")] = 2,
    resume: Annotated[Optional[str], typer.Option(help="Continue this run's lineage instead of starting a new run.")] = None,
) -> None:
    """Improve a task's score with LLM-proposed trials inside a budget."""
    from nanoresearch.compute.budget import parse_budget
    from nanoresearch.compute.executor import create_executor
    from nanoresearch.llm.client import LLM
    from nanoresearch.runs import driving, new_run, users_run
    from nanoresearch.store import Store
    from nanoresearch.trials.loop import LoopSettings, TrialLoop
    from nanoresearch.trials.task import load_task

    settings = _settings(ctx)
    loaded = load_task(task)
    limits = parse_budget(budget)
    with Store(settings.db_path) as store:
        user_id = store.ensure_user(settings.user)
        if resume:
            run = users_run(store, user_id, resume)
        else:
            config = {"task": str(loaded.folder), "budget": limits.model_dump(), "executor": executor,
                      "direction": loaded.score.direction}
            run = new_run(store, settings, user_id, loaded.name, f"optimise {loaded.metric_text()}", config)
        loop = TrialLoop(
            loaded, store, LLM(settings, store, user_id, run_id=run.id), create_executor(executor, settings),
            run.id, user_id, limits, Path(run.workspace), LoopSettings(parallel=parallel, max_debug=max_debug),
            on_event=lambda message: err.print(f"[dim]{escape(message)}[/]"),
        )
        with driving(run):
            err.print(f"run [bold]{run.id}[/] on {loaded.name} ({executor} executor), budget {budget}")
            best = drive_trials(store, run.id, loop, again=f"nanoresearch trials run --task {task} --resume {run.id}")
        out.print(render_tree_for(store, run.id, loaded.score.direction))
        if best is None:
            err.print("[yellow]no trial passed the evaluator[/]")
            raise typer.Exit(1)
        out.print(f"best: trial {best.id}, {loaded.score.metric} = {best.score:.4g}")


def drive_trials(store: Store, run_id: str, loop: TrialLoop, again: str) -> Trial | None:
    """Run the loop with the run marked `running`; whatever stops it leaves the run paused or failed."""
    from nanoresearch.errors import EndpointUnavailableError, NanoResearchError
    from nanoresearch.runs import say_how_to_continue

    store.set_run_status(run_id, "running")
    try:
        best = loop.run()
    except KeyboardInterrupt:
        store.set_run_status(run_id, "paused")
        err.print(f"interrupted; the run is paused; continue with: {again}")
        raise typer.Exit(130) from None
    except Exception as exc:
        state = "paused" if isinstance(exc, EndpointUnavailableError) else "failed"
        store.set_run_status(run_id, state)
        if isinstance(exc, NanoResearchError):
            say_how_to_continue(exc, run_id, again, state)
        raise
    store.set_run_status(run_id, "done")
    return best


@app.command("list")
def trials_list(ctx: typer.Context, run: Annotated[Optional[str], typer.Option(help="Run id (default: your latest).")] = None) -> None:
    """The trials of a run, one line each."""
    store, selected = _open_run(ctx, run)
    table = Table(title=f"trials of {selected.id}")
    for column in ("id", "parent", "proposer", "outcome", "hypothesis"):
        table.add_column(column)
    from nanoresearch.trials.lineage import outcome_text

    for t in store.trials(selected.id):
        table.add_row(str(t.id), str(t.parent_id or "-"), t.proposer, outcome_text(t), escape(t.hypothesis[:80]))
    out.print(table)


@app.command("show")
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


@app.command("tree")
def trials_tree(ctx: typer.Context, run: Annotated[Optional[str], typer.Option(help="Run id (default: your latest).")] = None) -> None:
    """The lineage of a run drawn as a tree; the head (best kept trial) in bold."""
    store, selected = _open_run(ctx, run)
    direction = selected.config.get("direction", "maximize")
    out.print(render_tree_for(store, selected.id, direction))


@app.command("export")
def trials_export(
    ctx: typer.Context,
    run: Annotated[Optional[str], typer.Option(help="Run id (default: your latest).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="tsv or json.")] = "tsv",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
) -> None:
    """The whole trajectory of a run as TSV or JSON."""
    if fmt not in ("tsv", "json"):
        raise UserError(f"unknown format {fmt!r}", hint="use --format tsv or --format json")
    store, selected = _open_run(ctx, run)
    rows = [{k: v for k, v in t.model_dump().items() if k in EXPORT_FIELDS} for t in store.trials(selected.id)]
    text = json.dumps(rows, indent=2) if fmt == "json" else _tsv(rows)
    if output:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {len(rows)} trials to {output}")
    else:
        typer.echo(text)  # raw: Rich would expand the TSV's tabs


def render_tree_for(store, run_id: str, direction: str):
    from nanoresearch.trials.lineage import render_tree

    return render_tree(store.trials(run_id), direction)


def _tsv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in row.items()})
    return buffer.getvalue()


def _open_run(ctx: typer.Context, run_id: str | None):
    from nanoresearch.runs import users_run
    from nanoresearch.store import Store

    settings = _settings(ctx)
    store = Store(settings.db_path)
    return store, users_run(store, store.ensure_user(settings.user), run_id)


def _open_trial(ctx: typer.Context, trial_id: int):
    from nanoresearch.runs import users_run
    from nanoresearch.store import Store

    settings = _settings(ctx)
    store = Store(settings.db_path)
    trial = store.trial(trial_id)
    users_run(store, store.ensure_user(settings.user), trial.run_id)  # refuses another user's trial
    return store, trial
