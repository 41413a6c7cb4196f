"""The trial loop against the simple baselines on the example tasks, at an equal trial budget: the table.

Runs `eval search` (src/nanoresearch/evaluation/search.py) on each task with the configured model
(the embedded SmolLM2-135M unless your settings say otherwise), in a temporary NANORESEARCH_HOME
unless --home is given, writes each task's results to OUT/<task>/ (search.json, search.md,
best_so_far.png, rewritten after every seed) and prints every task's table. With --from, it only
prints the tables of results already written; with --merge OUT too, it writes them as one result
(a search run in parts: `--first-seed 3 --seeds 2` continues one of seeds 0-2).

    python bench/bench_eval_search.py --tasks examples/tasks/diabetes-regression --trials 6 --seeds 3
    python bench/bench_eval_search.py --from bench/results/eval-search/diabetes-regression
    python bench/bench_eval_search.py --from part1/diabetes-regression part2/diabetes-regression --merge both

The numbers depend on the model, the machine's load (a trial that runs out of its time limit
fails) and the seeds; the table says which of each it used.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from nanoresearch.compute.budget import Budget
from nanoresearch.compute.executor import create_executor
from nanoresearch.config import load_settings
from nanoresearch.errors import NanoResearchError
from nanoresearch.evaluation.search import (
    Harness,
    SearchConfig,
    load_result,
    markdown_table,
    merge_results,
    run_search,
    write_results,
)
from nanoresearch.store import Store
from nanoresearch.trials.task import load_task

ROOT = Path(__file__).resolve().parents[1]


def search_task(task_folder: Path, args: argparse.Namespace) -> Path:
    task = load_task(task_folder)
    settings = load_settings()
    config = SearchConfig(budget=Budget(trials=args.trials), seeds=list(range(args.first_seed, args.first_seed + args.seeds)),
                          fresh_seeds=args.fresh_seeds, temperature=args.temperature,
                          methods=args.methods.split(","))
    started = time.monotonic()
    folder = args.out / task.name
    with Store(settings.db_path) as store:
        harness = Harness(settings, store, store.ensure_user(settings.user), create_executor("local", settings),
                          say=lambda message: print(f"  {message}", file=sys.stderr) if args.verbose else None,
                          after_seed=lambda result: write_results(result, folder))
        run_search(task, config, harness)
    print(f"{task.name}: {time.monotonic() - started:.0f} s", file=sys.stderr)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", type=Path, default=[ROOT / "examples/tasks/diabetes-regression"])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--fresh-seeds", type=int, default=2)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--methods", default="loop,random,independent,sequential,repeat")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/eval-search")
    parser.add_argument("--home", type=Path, help="NANORESEARCH_HOME to use (default: a temporary one)")
    parser.add_argument("--from", dest="existing", nargs="*", type=Path, default=[],
                        help="only print the tables of these result folders")
    parser.add_argument("--merge", type=Path, help="with --from: write those results as one, to this folder")
    parser.add_argument("--verbose", action="store_true", help="print every trial's progress")
    args = parser.parse_args()
    folders = list(args.existing)
    if args.merge:
        write_results(merge_results([load_result(folder) for folder in folders]), args.merge)
        folders = [args.merge]
    if not folders:
        with tempfile.TemporaryDirectory(prefix="nanoresearch-bench-") as scratch:
            os.environ["NANORESEARCH_HOME"] = str(args.home or scratch)
            folders = [search_task(task, args) for task in args.tasks]
    for folder in folders:
        print(markdown_table(load_result(folder)))


if __name__ == "__main__":
    try:
        main()
    except NanoResearchError as exc:  # a folder that holds no results, results that cannot be merged
        sys.exit(f"error: {exc}")
