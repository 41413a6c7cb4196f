"""Figures: plots drawn by code from results.json, never by the LLM."""

from __future__ import annotations

from nanoresearch.paper.figures import draw_figures
from nanoresearch.paper.results import read_results
from nanoresearch.pipeline.coevolution.planner import StagePlan
from nanoresearch.pipeline.context import RunContext


def run_figures(ctx: RunContext, plan: StagePlan) -> str:
    results = read_results(ctx.workspace / "results.json")
    folder = ctx.workspace / "figures"
    folder.mkdir(exist_ok=True)
    figures = draw_figures(results, folder)
    ctx.write_json("figures/figures.json", [f.model_dump(mode="json") for f in figures])
    return f"{len(figures)} figures: " + ", ".join(f.path.name for f in figures)
