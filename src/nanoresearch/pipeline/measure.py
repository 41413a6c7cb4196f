"""Analysis and figures: statistics and plots computed by code from the trials, never by the LLM."""

from __future__ import annotations

from nanoresearch.paper.figures import draw_figures
from nanoresearch.pipeline.analysis import MatrixCell, analyse, read_results, write_results
from nanoresearch.pipeline.context import RunContext
from nanoresearch.pipeline.planner import StagePlan

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
    task = ctx.task
    loop_trials = [t for t in trials if not t.proposer.startswith(MATRIX_PROPOSER)]
    results = analyse(ctx.run.id, task.name, task.score.metric, task.score.direction, loop_trials, cells)
    if isinstance(matrix, dict):
        results.notes.extend(matrix.get("notes", []))
    write_results(results, ctx.path("results.json"))
    if not results.success:
        return "no trial succeeded: results.json records the failures only"
    parts = [f"{c.name} {c.mean:.4g}±{c.std:.2g} (n={c.n})" for c in results.conditions if c.mean is not None]
    return f"{task.score.metric}: " + "; ".join(parts)


def run_figures(ctx: RunContext, plan: StagePlan) -> str:
    results = read_results(ctx.workspace / "results.json")
    folder = ctx.workspace / "figures"
    folder.mkdir(exist_ok=True)
    figures = draw_figures(results, folder)
    ctx.write_json("figures/figures.json", [f.model_dump(mode="json") for f in figures])
    return f"{len(figures)} figures: " + ", ".join(f.path.name for f in figures)
