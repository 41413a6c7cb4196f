"""`eval search`: the trial loop against simple baselines, at the same trial budget and model.

For each seed, each method (evaluation/baselines.py) is one trials run in the store, through the
product's TrialLoop, under the same Budget and the same model settings. The in-search best of a
method is selected from noisy single runs, so its final pick (the best kept trial) is run again on
fresh seeds that no search trial used, and the table reports that score.

Seeds: trial k (0-based) of the search with seed s runs with the task's seed variable at
s * SEED_STRIDE + k; the fresh seeds are FRESH_SEED_BASE + j, the same for every method and seed.
Re-scoring trials are recorded in the method's run with the proposer "rescore", after its search.

The files written to the output folder (schema in docs/evaluation.md#eval-search):
search.json (SearchResult), search.md (the table) and best_so_far.png/.pdf (the curves).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from nanoresearch.compute.budget import Budget, ModelCallGate
from nanoresearch.compute.executor import Executor
from nanoresearch.config import Settings
from nanoresearch.errors import NanoResearchError, UserError
from nanoresearch.evaluation.baselines import METHOD_TEXT, METHODS, SeededTrials, check_methods, method_loop
from nanoresearch.llm.client import LLM, Provider
from nanoresearch.paper.figures import add_legend, new_figure, save
from nanoresearch.pipeline.stages.analysis import describe
from nanoresearch.runs import lifecycle, new_run
from nanoresearch.store import Store
from nanoresearch.store.models import RunOptions, Trial
from nanoresearch.trials.lineage import head
from nanoresearch.trials.loop import LoopSettings
from nanoresearch.trials.task import Task

SCHEMA_VERSION = 1
SEED_STRIDE = 1000  # search seeds of one seed's trials: s * 1000 + k, so no two searches share one
FRESH_SEED_BASE = 1_000_000  # above every search seed (trials < 1000, seeds < 1000)
RESCORE = "rescore"


class SearchConfig(BaseModel):
    budget: Budget  # each method's, on each seed; its `trials` is the budget compared
    seeds: list[int] = Field(min_length=1)
    fresh_seeds: int = Field(3, ge=1, le=20)
    methods: list[str] = Field(default_factory=lambda: list(METHODS))
    temperature: float | None = Field(None, ge=0, le=2)  # the proposing stage's, for every method; None: as configured


class MethodRun(BaseModel):
    """One method on one seed."""

    method: str
    seed: int
    run_id: str
    trials_run: int  # search trials that started (the budget's unit); never more than the budget
    best_so_far: list[float | None]  # after each search trial, padded to the budget; None until one scored
    pick_trial: int | None  # the best kept trial; None when none passed the evaluator
    search_score: float | None  # the pick's score in the search (selected from noisy runs)
    fresh_scores: list[float | None]  # the pick re-run on each fresh seed; None where that run failed
    fresh_score: float | None  # mean of fresh_scores that succeeded: the score the table reports
    calls: int
    tokens: int  # prompt + completion tokens of the model calls the search made
    models: list[str]  # "provider/model" of every call


class MethodSummary(BaseModel):
    method: str
    description: str
    seeds_scored: int  # seeds whose pick scored on fresh seeds
    fresh_mean: float | None
    fresh_ci95: tuple[float, float] | None  # Student-t interval over seeds; None below two scored seeds
    search_mean: float | None  # mean in-search score of the picks: the gap to fresh_mean is selection noise
    wins: int  # seeds on which this method's fresh score is the best of all methods (ties count for each)
    loop_beats: int | None  # seeds on which the loop's fresh score is better than this method's; None for the loop
    # and when the loop was not among the methods
    trials_mean: float
    tokens_mean: float  # per seed
    tokens_total: int


class SearchResult(BaseModel):
    schema_version: int = SCHEMA_VERSION
    created_at: str
    task: str
    task_folder: str
    metric: str
    direction: str
    budget: Budget
    budget_trials: int
    model: str  # "endpoint/model" of the proposing stage, the same for every method
    temperature: float
    seeds: list[int]
    fresh_seeds: list[int]
    methods: list[str]
    runs: list[MethodRun]
    summary: list[MethodSummary]


@dataclass
class Harness:
    """Where the methods run: the store and user they are recorded under, their executor, the settings
    every method's model calls use, and (for tests) providers in place of the configured ones."""

    settings: Settings
    store: Store
    user_id: int
    executor: Executor
    providers: dict[str, Provider] | None = None
    say: Callable[[str], None] = lambda message: None
    # Called with the result so far after each seed, so a long search that is stopped keeps its finished seeds.
    after_seed: Callable[[SearchResult], object] = lambda result: None


def run_search(task: Task, config: SearchConfig, harness: Harness) -> SearchResult:
    """Every method on every seed, each pick re-scored on the fresh seeds; checked for equal budget and model."""
    check_methods(task, config.methods)
    if not config.budget.trials:
        raise UserError("eval search compares methods at an equal number of trials: the budget needs trials=N",
                        hint="e.g. --budget trials=8")
    if config.budget.trials >= SEED_STRIDE or max(config.seeds) >= SEED_STRIDE or min(config.seeds) < 0:
        raise UserError(f"trials and seeds must each lie in 0..{SEED_STRIDE - 1}, so search seeds never meet fresh ones")
    harness = replace(harness, settings=search_settings(harness.settings, config.temperature))
    fresh = [FRESH_SEED_BASE + j for j in range(config.fresh_seeds)]
    runs: list[MethodRun] = []
    for done, seed in enumerate(config.seeds, start=1):
        runs += [run_method(task, method, seed, config.budget, fresh, harness) for method in config.methods]
        check_same_budget_and_model(runs, config.budget)
        result = search_result(task, config, harness.settings, config.seeds[:done], fresh, runs)
        harness.after_seed(result)
    return result


def search_result(task: Task, config: SearchConfig, settings: Settings, seeds: list[int], fresh: list[int],
                  runs: list[MethodRun]) -> SearchResult:
    stage = settings.stage("coding")
    return SearchResult(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"), task=task.name, task_folder=str(task.folder),
        metric=task.score.metric, direction=task.score.direction, budget=config.budget,
        budget_trials=config.budget.trials or 0, model=f"{stage.endpoint}/{stage.model}", temperature=stage.temperature,
        seeds=seeds, fresh_seeds=fresh, methods=config.methods, runs=runs,
        summary=summarise(runs, config.methods, task.score.direction),
    )


def search_settings(settings: Settings, temperature: float | None) -> Settings:
    """The settings every method's calls use: live calls only (a replayed answer would make independent
    samples copies of one another and hide tokens), at one temperature. Offline replay (`only`) stays."""
    replay = "only" if settings.llm.replay == "only" else "off"
    coding = settings.stage("coding")
    stages = settings.stages.model_copy(update={"coding": coding.model_copy(
        update={"temperature": coding.temperature if temperature is None else temperature})})
    return settings.model_copy(update={"llm": settings.llm.model_copy(update={"replay": replay}), "stages": stages})


def run_method(task: Task, method: str, seed: int, budget: Budget, fresh: list[int], harness: Harness) -> MethodRun:
    """One method's search on one seed as a trials run of its own, then its pick re-scored."""
    store, user_id = harness.store, harness.user_id
    options = RunOptions(task=str(task.folder), budget=budget, executor=harness.executor.name, direction=task.score.direction)
    run = new_run(store, harness.settings, user_id, f"eval-search-{task.name}",
                  f"eval search: {method} on {task.name}, seed {seed}", options, kind="trials")
    llm = LLM(harness.settings, store, user_id, run_id=run.id, providers=harness.providers,
              budget=ModelCallGate(store, user_id, run.id))
    loop = method_loop(method, task, store, llm, harness.executor, run.id, user_id, budget, Path(run.workspace),
                       settings=LoopSettings(show_search_space=harness.settings.pipeline.show_search_space),
                       first_seed=seed * SEED_STRIDE, on_event=lambda message: harness.say(f"{method} seed {seed}: {message}"))
    with lifecycle(store, run.id):
        loop.run()
        searched = [t for t in store.trials(run.id) if t.job_id]
        pick = head(searched, task.score.direction)
        fresh_scores = rescore(loop, pick, fresh) if pick else [None] * len(fresh)
    calls = store.llm_calls(user_id, run.id)
    succeeded = [s for s in fresh_scores if s is not None]
    return MethodRun(
        method=method, seed=seed, run_id=run.id, trials_run=len(searched),
        best_so_far=best_so_far(searched, task, budget.trials or len(searched)),
        pick_trial=pick.id if pick else None, search_score=pick.score if pick else None,
        fresh_scores=fresh_scores, fresh_score=sum(succeeded) / len(succeeded) if succeeded else None,
        calls=len(calls), tokens=sum(c.prompt_tokens + c.completion_tokens for c in calls),
        models=sorted({f"{c.provider}/{c.model}" for c in calls}),
    )


def rescore(loop: SeededTrials, pick: Trial, fresh: list[int]) -> list[float | None]:
    """The pick's recipe, with what it ran with, run again once per fresh seed. The search's budget is
    spent by now; these runs are the harness's measurement, so they run outside it."""
    loop.budget = Budget()
    seed_env = loop.task.seed_env or ""  # check_methods refused a task without one
    scores: list[float | None] = []
    for seed in fresh:
        env = {**loop.trial_env(pick), seed_env: str(seed)}
        trial = loop.run_variant(pick, RESCORE, f"re-score trial {pick.id} on fresh seed {seed}", env)
        scores.append(None if trial.failure else trial.score)
    return scores


def best_so_far(searched: list[Trial], task: Task, length: int) -> list[float | None]:
    """The best score that passed the evaluator after each search trial; a method that stopped early
    keeps its last value to the end of the budget."""
    best: float | None = None
    curve: list[float | None] = []
    for trial in searched:
        if trial.status == "done" and trial.score is not None and task.score.better(trial.score, best):
            best = trial.score
        curve.append(best)
    return curve + [best] * (length - len(curve))


def check_same_budget_and_model(runs: list[MethodRun], budget: Budget) -> None:
    """The comparison is only fair if no method ran more trials or asked another model: checked, not assumed."""
    over = [f"{r.method} (seed {r.seed}): {r.trials_run}" for r in runs if budget.trials and r.trials_run > budget.trials]
    if over:
        raise NanoResearchError(f"methods ran more than the {budget.trials} trials of the budget: {', '.join(over)}")
    models = {model for r in runs for model in r.models}
    if len(models) > 1:
        raise NanoResearchError(f"the methods' calls went to different models: {', '.join(sorted(models))}")


def summarise(runs: list[MethodRun], methods: list[str], direction: str) -> list[MethodSummary]:
    by_seed: dict[int, dict[str, float | None]] = {}
    for r in runs:
        by_seed.setdefault(r.seed, {})[r.method] = r.fresh_score
    summary = []
    for method in methods:
        mine = [r for r in runs if r.method == method]
        fresh = [r.fresh_score for r in mine if r.fresh_score is not None]
        searched = [r.search_score for r in mine if r.search_score is not None]
        mean, _, interval = describe(fresh)
        summary.append(MethodSummary(
            method=method, description=METHOD_TEXT[method], seeds_scored=len(fresh), fresh_mean=mean,
            fresh_ci95=interval, search_mean=describe(searched)[0],
            wins=sum(1 for scores in by_seed.values() if is_best(scores.get(method), scores.values(), direction)),
            loop_beats=None if method == "loop" or "loop" not in methods else sum(
                1 for scores in by_seed.values() if beats(scores.get("loop"), scores.get(method), direction)),
            trials_mean=sum(r.trials_run for r in mine) / len(mine),
            tokens_mean=sum(r.tokens for r in mine) / len(mine), tokens_total=sum(r.tokens for r in mine),
        ))
    return summary


def merge_results(results: list[SearchResult]) -> SearchResult:
    """Searches of one task under one setup on different seeds as one result (a long search run in
    parts); refused when anything but the seeds differs, or a seed was searched twice."""
    first = results[0]
    setup = {"task", "metric", "direction", "budget", "model", "temperature", "fresh_seeds", "methods"}
    for other in results[1:]:
        differs = sorted(k for k in setup if getattr(other, k) != getattr(first, k))
        if differs:
            raise UserError(f"cannot merge searches that differ in {', '.join(differs)}")
    seeds = [seed for r in results for seed in r.seeds]
    if len(set(seeds)) < len(seeds):
        raise UserError(f"cannot merge searches that share seeds: {sorted(seeds)}")
    runs = sorted((run for r in results for run in r.runs), key=lambda run: run.seed)
    return first.model_copy(update={
        "created_at": max(r.created_at for r in results), "seeds": sorted(seeds), "runs": runs,
        "summary": summarise(runs, first.methods, first.direction)})


def beats(a: float | None, b: float | None, direction: str) -> bool:
    """Whether score `a` is strictly better than `b`; no score loses to any score."""
    if a is None:
        return False
    if b is None:
        return True
    return a > b if direction == "maximize" else a < b


def is_best(score: float | None, scores: Iterable[float | None], direction: str) -> bool:
    return score is not None and not any(beats(other, score, direction) for other in scores)


# ---------------------------------------------------------------- files


def write_results(result: SearchResult, folder: Path) -> list[Path]:
    """search.json, search.md and the best-so-far figure (PNG and PDF) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path, table_path = folder / "search.json", folder / "search.md"
    json_path.write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
    table_path.write_text(markdown_table(result), encoding="utf-8")
    figure = best_so_far_figure(result, folder / "best_so_far.png")
    return [json_path, table_path, figure, figure.with_suffix(".pdf")]


def load_result(path: Path) -> SearchResult:
    """A search.json (or the folder holding one), checked against the schema."""
    path = path / "search.json" if path.is_dir() else path
    try:
        return SearchResult.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} does not exist", hint="`nanoresearch eval search --out DIR` writes it") from None
    except ValueError as exc:
        raise UserError(f"{path} is not an eval search result: {str(exc).splitlines()[0]}") from None


def markdown_table(result: SearchResult) -> str:
    better = "higher" if result.direction == "maximize" else "lower"
    lines = [
        f"# eval search: {result.task}",
        "",
        f"{result.metric} ({better} is better) of each method's final pick, re-run on {len(result.fresh_seeds)} fresh "
        f"seeds; {len(result.seeds)} search seeds; {result.budget_trials} trials per method and seed; "
        f"model {result.model} at temperature {result.temperature:g}.",
        "",
        "| method | fresh score (mean [95% CI]) | in-search score | wins | loop beats it | trials | tokens/seed |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in result.summary:
        lines.append(f"| {s.method} | {score_text(s.fresh_mean, s.fresh_ci95)} ({s.seeds_scored}/{len(result.seeds)}) "
                     f"| {number(s.search_mean)} | {s.wins} | {'—' if s.loop_beats is None else s.loop_beats} "
                     f"| {s.trials_mean:.3g} | {s.tokens_mean:,.0f} |")
    lines += ["", "Methods: " + "; ".join(f"**{s.method}**: {s.description}" for s in result.summary) + ".", ""]
    short = unspent_text(result)
    return "\n".join(lines + ([short, ""] if short else []))


def unspent_text(result: SearchResult) -> str:
    """Which methods stopped with trials of the budget left (the loop's stall rule: proposals that never
    ran, one after another), so a column of means does not hide that a method gave up."""
    parts = []
    for method in result.methods:
        short = [r for r in result.runs if r.method == method and r.trials_run < result.budget_trials]
        if short:
            left = sum(result.budget_trials - r.trials_run for r in short)
            parts.append(f"{method} on {len(short)} of {len(result.seeds)} seeds ({left} trials unspent)")
    return ("Stopped with trials of the budget unspent (the stall rule: proposals that never ran, one after another; "
            "or another limit of the budget): " + "; ".join(parts) + ".") if parts else ""


def score_text(mean: float | None, interval: tuple[float, float] | None) -> str:
    if mean is None:
        return "no pick scored"
    return number(mean) + (f" [{number(interval[0])}, {number(interval[1])}]" if interval else "")


def number(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.4g}"


def best_so_far_figure(result: SearchResult, path: Path) -> Path:
    """Mean in-search best-so-far over seeds, per trial, one line per method (seeds with no score yet left out)."""
    fig, ax = new_figure(width=6.4, height=3.8)
    for method in result.methods:
        curves = [r.best_so_far for r in result.runs if r.method == method]
        xs, ys = [], []
        for index in range(result.budget_trials):
            values = [c[index] for c in curves if index < len(c) and c[index] is not None]
            if values:
                xs.append(index + 1)
                ys.append(sum(v for v in values if v is not None) / len(values))
        ax.step(xs, ys, where="post", label=method)
    ax.set_xlabel("trial")
    ax.set_ylabel(f"best {result.metric} so far (in search, mean over seeds)", parse_math=False)
    ax.set_title(result.task, fontsize=9, loc="left")
    add_legend(ax)
    return save(fig, path)
