"""Analysis: statistics of the experiment, computed by code from the trials that ran; the LLM never does arithmetic here.

The closed loop gives the learning curve. The run matrix (each condition re-run over several seeds) gives the
conditions and their comparisons. A failed seed is reported by its label and never contributes a number.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections import Counter
from typing import Literal

from pydantic import BaseModel
from scipy import stats

from nanoresearch.paper.results import Comparison, Condition, Results, TrialPoint, write_results
from nanoresearch.pipeline.coevolution.planner import StagePlan
from nanoresearch.pipeline.context import RunContext
from nanoresearch.store.models import Trial
from nanoresearch.trials.lineage import head

ConditionKind = Literal["baseline", "proposed", "ablation"]

ALPHA = 0.05
WELCH = "Welch t-test"
NO_TEST_SMALL_N = "n < 2"
NO_TEST_ZERO_VARIANCE = "zero variance: identical scores across seeds"


class MatrixCell(BaseModel):
    """One (condition, seed) cell of the run matrix, with the trial row it produced."""

    condition: str
    kind: ConditionKind
    description: str = ""
    seed: int
    trial: Trial


def succeeded(trial: Trial) -> bool:
    # A missed gate still carries a score, so the failure label decides, not the score.
    return trial.failure is None and trial.score is not None


def failure_label(cell: MatrixCell) -> str:
    reason = cell.trial.failure or "no score"
    return f"seed {cell.seed} (trial {cell.trial.id}): {reason}"


def summarise(name: str, kind: ConditionKind, description: str, cells: list[MatrixCell], metric: str) -> Condition:
    """Mean, sample std and 95% t-interval of the primary metric over the seeds that succeeded.

    `metric` names the primary metric (the trials' `score`); it is recorded alongside the others in `metrics`.
    """
    good = [c for c in cells if succeeded(c.trial)]
    scores = [c.trial.score for c in good if c.trial.score is not None]
    mean, std, ci95 = describe(scores)
    return Condition(
        name=name,
        kind=kind,
        description=description,
        trial_ids=[c.trial.id for c in good],
        seeds=[c.seed for c in good],
        scores=scores,
        metrics=metric_values(good, metric),
        failures=[failure_label(c) for c in cells if not succeeded(c.trial)],
        n=len(scores),
        mean=mean,
        std=std,
        ci95=ci95,
    )


def describe(scores: list[float]) -> tuple[float | None, float | None, tuple[float, float] | None]:
    if not scores:
        return None, None, None
    mean = statistics.fmean(scores)
    if len(scores) == 1:
        return mean, 0.0, None
    std = statistics.stdev(scores)  # ddof=1
    half_width = stats.t.ppf(1 - ALPHA / 2, df=len(scores) - 1) * std / math.sqrt(len(scores))
    return mean, std, (mean - half_width, mean + half_width)


def metric_values(cells: list[MatrixCell], primary: str) -> dict[str, list[float]]:
    """Every metric the evaluator reported, in seed order; a metric missing from a seed is skipped, not filled."""
    values: dict[str, list[float]] = {primary: [c.trial.score for c in cells if c.trial.score is not None]}
    for cell in cells:
        for key, value in cell.trial.metrics.items():
            if key != primary:
                values.setdefault(key, []).append(float(value))
    return values


def compare(a: Condition, b: Condition) -> Comparison:
    """`a` against `b` with Welch's t-test on the per-seed scores, when a test is possible at all."""
    if a.mean is None or b.mean is None:
        raise ValueError(f"cannot compare {a.name!r} with {b.name!r}: {without_mean(a, b)!r} has no successful seed")
    difference = a.mean - b.mean
    reason = untestable_reason(a, b)
    if reason:
        return Comparison(a=a.name, b=b.name, difference=difference, test=reason)
    with warnings.catch_warnings():
        # scipy warns of "precision loss" when one group is constant; Welch's test is well defined then.
        warnings.filterwarnings("ignore", message="Precision loss", category=RuntimeWarning)
        result = stats.ttest_ind(a.scores, b.scores, equal_var=False)
    p_value = float(result.pvalue)
    return Comparison(
        a=a.name,
        b=b.name,
        difference=difference,
        test=WELCH,
        statistic=float(result.statistic),
        p_value=p_value,
        significant=p_value < ALPHA,
    )


def without_mean(a: Condition, b: Condition) -> str | None:
    """The name of the first of the two conditions that has no mean (no successful seed), if any."""
    return next((c.name for c in (a, b) if c.mean is None), None)


def untestable_reason(a: Condition, b: Condition) -> str | None:
    if a.n < 2 or b.n < 2:
        return NO_TEST_SMALL_N
    # With one variance zero Welch still works; with both zero the statistic is undefined.
    if a.std == 0 and b.std == 0:
        return NO_TEST_ZERO_VARIANCE
    return None


def analyse(
    run_id: str,
    task_name: str,
    metric: str,
    direction: Literal["maximize", "minimize"],
    loop_trials: list[Trial],
    cells: list[MatrixCell],
) -> Results:
    """results.json from the closed loop's trials and the run matrix's cells."""
    trials = sorted(loop_trials, key=lambda t: t.id)
    best = head(trials, direction)
    conditions = build_conditions(cells, metric)
    comparisons, skipped = build_comparisons(conditions)
    disagreement = matrix_disagrees(comparisons, direction)
    return Results(
        run_id=run_id,
        task=task_name,
        metric=metric,
        direction=direction,
        success=best is not None and best.proposer != "baseline" and disagreement is None,
        evaluated=any(succeeded(t) for t in trials),
        best_trial_id=best.id if best else None,
        trials=[trial_point(t) for t in trials],
        conditions=conditions,
        comparisons=comparisons,
        notes=loop_notes(trials, best) + condition_notes(conditions) + skipped + ([disagreement] if disagreement else []),
    )


def matrix_disagrees(comparisons: list[Comparison], direction: str) -> str | None:
    """Why the run matrix does not bear out the loop's improvement, or None: over fresh seeds the
    proposed recipe must do better than the baseline on average, or the loop's pick was noise."""
    for c in comparisons:
        if (c.a, c.b) == ("proposed", "baseline"):
            better = c.difference > 0 if direction == "maximize" else c.difference < 0
            if not better:
                return f"over the matrix's seeds the proposed recipe did not beat the baseline (difference {c.difference:+.4g})"
    return None


def trial_point(trial: Trial) -> TrialPoint:
    elapsed = trial.ended_at - trial.started_at if trial.started_at is not None and trial.ended_at is not None else None
    return TrialPoint(
        id=trial.id,
        parent_id=trial.parent_id,
        proposer=trial.proposer,
        hypothesis=trial.hypothesis,
        score=trial.score if succeeded(trial) else None,
        kept=trial.kept,
        failure=trial.failure,
        elapsed_s=elapsed,
    )


def build_conditions(cells: list[MatrixCell], metric: str) -> list[Condition]:
    """One condition per name, ordered baseline, proposed, then ablations (each kind in the order first seen)."""
    groups: dict[str, list[MatrixCell]] = {}
    for cell in cells:
        groups.setdefault(cell.condition, []).append(cell)
    rank = {"baseline": 0, "proposed": 1, "ablation": 2}
    ordered = sorted(groups.values(), key=lambda group: rank[group[0].kind])  # stable: keeps first-seen order
    return [summarise(g[0].condition, g[0].kind, g[0].description, g, metric) for g in ordered]


def build_comparisons(conditions: list[Condition]) -> tuple[list[Comparison], list[str]]:
    """Proposed against the baseline and against each ablation; a pair without both means becomes a note."""
    proposed = [c for c in conditions if c.kind == "proposed"]
    others = [c for c in conditions if c.kind == "baseline"] + [c for c in conditions if c.kind == "ablation"]
    comparisons, skipped = [], []
    for a in proposed:
        for b in others:
            missing = without_mean(a, b)
            if missing:
                skipped.append(f"no comparison of {a.name} with {b.name}: {missing} has no successful seed")
            else:
                comparisons.append(compare(a, b))
    return comparisons, skipped


def loop_notes(trials: list[Trial], best: Trial | None) -> list[str]:
    if not trials:
        return ["the closed loop ran no trials"]
    notes = []
    failed = Counter(t.failure or "no score" for t in trials if not succeeded(t))
    if failed:
        labels = ", ".join(f"{count} {label}" for label, count in failed.most_common())
        notes.append(f"{failed.total()} of {len(trials)} loop trials failed ({labels})")
    if best is None:
        notes.append("no loop trial passed the evaluator: there is no best trial")
    elif best.proposer == "baseline":
        notes.append("no trial improved on the baseline: proposed = baseline")
    return notes


def condition_notes(conditions: list[Condition]) -> list[str]:
    notes = []
    for c in conditions:
        seeds = c.n + len(c.failures)
        if c.failures:
            notes.append(f"{len(c.failures)} of {seeds} seeds failed for {c.name}")
        if c.n == 0:
            notes.append(f"{c.name} has no successful seed: no mean is reported")
        elif c.n == 1:
            notes.append(f"{c.name} has a single successful seed: no spread or confidence interval")
        elif c.std == 0:
            notes.append(f"recipe is deterministic: all seeds identical for {c.name} ({c.n} seeds gave {c.mean:.6g})")
    return notes


MATRIX_PROPOSER = "matrix:"


def run_analysis(ctx: RunContext, plan: StagePlan) -> str:
    trials = ctx.store.trials(ctx.run.id)
    by_id = {t.id: t for t in trials}
    matrix = ctx.read_json("matrix.json")
    cells = [
        MatrixCell(condition=c["condition"], kind=c["kind"], description=c["description"], seed=c["seed"],
                   trial=by_id[c["trial_id"]])
        for c in (matrix.get("cells", []) if isinstance(matrix, dict) else [])
    ]
    task = ctx.experiment_task
    loop_trials = [t for t in trials if not t.proposer.startswith(MATRIX_PROPOSER)]
    results = analyse(ctx.run.id, task.name, task.score.metric, task.score.direction, loop_trials, cells)
    if isinstance(matrix, dict):
        results.notes.extend(matrix.get("notes", []))
    write_results(results, ctx.path("results.json"))
    if not results.evaluated:
        return "no trial succeeded: results.json records the failures only"
    if not results.success:
        return "no change beat the baseline: results.json records a negative result"
    parts = [f"{c.name} {c.mean:.4g}±{c.std:.2g} (n={c.n})" for c in results.conditions if c.mean is not None]
    return f"{task.score.metric}: " + "; ".join(parts)
