"""`nanoresearch eval search`: the trial loop against simple baselines on one task, at an equal budget."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from nanoresearch.cli.common import err, out, session

app = typer.Typer()

DEFAULT_METHODS = "loop,random,independent,sequential,repeat"


@app.command("search", epilog="Examples:\n  nanoresearch eval search --task examples/tasks/diabetes-regression --budget trials=8 --seeds 5 --out eval-search/diabetes")
def eval_search(
    ctx: typer.Context,
    task: Annotated[Path, typer.Option(help="Task folder (with task.toml, a seed_env and, for random search, [search] ranges).")],
    budget: Annotated[str, typer.Option(help="Each method's budget on each seed; trials=N is required, e.g. trials=8,wall=10m.")] = "trials=8",
    seeds: Annotated[int, typer.Option(min=1, max=100, help="Search seeds (0..S-1); each method searches once per seed.")] = 5,
    fresh_seeds: Annotated[int, typer.Option(min=1, max=20, help="Fresh seeds each method's final pick is re-run on.")] = 3,
    methods: Annotated[str, typer.Option(help=f"Comma-separated methods to compare (default {DEFAULT_METHODS}).")] = DEFAULT_METHODS,
    temperature: Annotated[Optional[float], typer.Option(min=0, max=2, help="Sampling temperature of the proposing model, "
                                                         "for every method (default: the coding stage's).")] = None,
    executor: Annotated[str, typer.Option(help="Where trials run: local, slurm or ray.")] = "local",
    output: Annotated[Path, typer.Option("--out", help="Folder for search.json, search.md and best_so_far.png (rewritten after every seed).")] = Path("eval-search"),
) -> None:
    """Run the trial loop and the simple baselines at the same trial budget and model; report fresh-seed scores."""
    from nanoresearch.compute.budget import parse_budget
    from nanoresearch.compute.executor import create_executor
    from nanoresearch.evaluation.search import (
        Harness,
        SearchConfig,
        SearchResult,
        markdown_table,
        run_search,
        write_results,
    )
    from nanoresearch.trials.task import load_task

    loaded = load_task(task)
    config = SearchConfig(budget=parse_budget(budget), seeds=list(range(seeds)), fresh_seeds=fresh_seeds,
                          methods=[m.strip() for m in methods.split(",") if m.strip()], temperature=temperature)
    written: list[Path] = []

    def write(so_far: SearchResult) -> None:  # after every seed: a search stopped midway keeps its finished seeds
        written[:] = write_results(so_far, output)

    with session(ctx) as (settings, store, user_id):
        harness = Harness(settings, store, user_id, create_executor(executor, settings),
                          say=lambda message: err.print(f"[dim]{escape(message)}[/]"), after_seed=write)
        result = run_search(loaded, config, harness)
    out.print(markdown_table(result), markup=False, highlight=False)
    err.print("wrote " + ", ".join(str(path) for path in written))
