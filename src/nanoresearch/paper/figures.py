"""The paper's figures, drawn only from results.json; captions are written by code from the same numbers.

Each figure is saved twice: a PNG at 150 dpi (previews) and a PDF (vector, for LaTeX). Both are byte-for-byte
reproducible: the PDF carries no creation date. Text that comes from the run (metric, condition names, failure
labels) is drawn literally, never parsed as mathtext, so a `$` or `_` cannot break a figure.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from pydantic import BaseModel

from nanoresearch.paper.results import Comparison, Condition, Results, TrialPoint

DPI = 150
NO_SUCCESS = "no successful trial"
NO_PROPOSED = "no proposed condition to compare with"
KIND_COLOURS = {"baseline": "#8c8c8c", "proposed": "#1f77b4", "ablation": "#ff7f0e"}
KEPT_COLOUR = "#1f77b4"
REVERTED_COLOUR = "#8c8c8c"
FAILED_COLOUR = "#d62728"
HELPED_COLOUR = "#2ca02c"


class FigureFile(BaseModel):
    """One figure for the paper: `path` is the PNG; the PDF beside it (`pdf`) is the one to include in LaTeX."""

    path: Path
    caption: str
    label: str

    @property
    def pdf(self) -> Path:
        return self.path.with_suffix(".pdf")


def draw_figures(results: Results, folder: Path) -> list[FigureFile]:
    """Every figure the results support: the learning curve, the comparison of conditions, the ablations if any."""
    folder = Path(folder)
    figures = [
        FigureFile(
            path=learning_curve(results, folder / "learning_curve.png"),
            caption=learning_curve_caption(results),
            label="fig:learning_curve",
        ),
        FigureFile(
            path=comparison_bars(results, folder / "comparison.png"),
            caption=comparison_caption(results),
            label="fig:comparison",
        ),
    ]
    ablations = ablation_chart(results, folder / "ablations.png")
    if ablations:
        figures.append(FigureFile(path=ablations, caption=ablation_caption(results), label="fig:ablations"))
    return figures


# --- learning curve -------------------------------------------------------------------------------------------


def learning_curve(results: Results, path: Path) -> Path:
    """Score of each loop trial in run order: kept trials filled, reverted hollow, the running best as a step line,
    failed trials as crosses along the bottom with their failure labels."""
    fig, ax = new_figure(width=6.4, height=3.8)
    scored = [t for t in results.trials if t.score is not None]
    reverted = [t for t in scored if not t.kept]
    kept = [t for t in scored if t.kept]
    ax.plot(ids(reverted), scores(reverted), "o", mfc="none", color=REVERTED_COLOUR, label="reverted")
    ax.plot(ids(kept), scores(kept), "o", color=KEPT_COLOUR, label="kept")
    best_x, best_y = running_best(results)
    ax.step(best_x, best_y, where="post", color=KEPT_COLOUR, linewidth=1.2, label="best kept so far")
    mark_failures(ax, [t for t in results.trials if t.score is None])
    if not scored:
        annotate_empty(ax, NO_SUCCESS, ax.yaxis)
    show_trial_axis(ax, results.trials)
    ax.set_xlabel("trial (run order)")
    ax.set_ylabel(metric_label(results), parse_math=False)
    add_legend(ax)
    return save(fig, path)


def show_trial_axis(ax: Axes, trials: list[TrialPoint]) -> None:
    """Whole trial ids only, with half a trial of room at either end; no ticks at all when nothing ran."""
    if not trials:
        ax.xaxis.set_ticks([])
        return
    ax.set_xlim(min(ids(trials)) - 0.5, max(ids(trials)) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def ids(trials: list[TrialPoint]) -> list[int]:
    return [t.id for t in trials]


def scores(trials: list[TrialPoint]) -> list[float]:
    """The scores of scored trials (what the callers pass), in order."""
    return [t.score for t in trials if t.score is not None]


def running_best(results: Results) -> tuple[list[int], list[float]]:
    """The best kept score after each trial, from the first kept trial on (nothing is drawn before it)."""
    pick = max if results.direction == "maximize" else min
    best: float | None = None
    xs, ys = [], []
    for trial in results.trials:
        if trial.kept and trial.score is not None:
            best = trial.score if best is None else pick(best, trial.score)
        if best is not None:
            xs.append(trial.id)
            ys.append(best)
    return xs, ys


def mark_failures(ax: Axes, failed: list[TrialPoint]) -> None:
    # x in data coordinates, y in axes coordinates: failures sit on the bottom edge whatever the score range.
    bottom = ax.get_xaxis_transform()
    ax.plot(ids(failed), [0.03] * len(failed), "x", color=FAILED_COLOUR, transform=bottom, label="failed")
    for trial in failed:
        ax.text(
            trial.id,
            0.07,
            trial.failure or "no score",
            transform=bottom,
            rotation=90,
            ha="center",
            va="bottom",
            fontsize=7,
            color=FAILED_COLOUR,
            parse_math=False,
        )


def learning_curve_caption(results: Results) -> str:
    trials = results.trials
    metric = capitalised(results.metric)
    if not trials:
        return f"{metric} of each trial in run order: the closed loop ran no trials."
    scored = [t for t in trials if t.score is not None]
    failed = len(trials) - len(scored)
    caption = f"{metric} of each trial in run order ({count(len(trials), 'trial')}, {better(results)} is better)."
    if scored:
        caption += (
            " Filled markers were kept, hollow markers were reverted, and the line is the best kept score so far."
        )
    else:
        caption += " No trial produced a score."
    if failed:
        caption += f" Crosses along the bottom mark the {count(failed, 'failed trial')}, labelled with the failure."
    return caption


# --- comparison of conditions ---------------------------------------------------------------------------------


def comparison_bars(results: Results, path: Path) -> Path:
    """Mean per condition with 95% CI error bars (the std where there is no interval) and each seed as a dot."""
    conditions = results.conditions
    fig, ax = new_figure(width=max(4.5, 1.5 * len(conditions) + 1.5), height=3.8)
    if all(c.mean is None for c in conditions):
        annotate_empty(ax, NO_SUCCESS, ax.yaxis)
    else:
        for x, condition in enumerate(conditions):
            draw_condition(ax, x, condition)
    ax.set_xticks(range(len(conditions)), [tick_label(c) for c in conditions], parse_math=False)
    ax.set_xlim(-0.6, max(len(conditions), 1) - 0.4)  # keeps slots without a bar (no successful seed) in view
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylabel(f"mean {metric_label(results)}", parse_math=False)
    return save(fig, path)


def draw_condition(ax: Axes, x: int, condition: Condition) -> None:
    if condition.mean is None:
        ax.text(
            x,
            0.5,
            "no successful seed",
            transform=ax.get_xaxis_transform(),
            rotation=90,
            ha="center",
            va="center",
            fontsize=8,
            color=FAILED_COLOUR,
        )
        return
    ax.bar(x, condition.mean, width=0.6, color=KIND_COLOURS[condition.kind], alpha=0.85)
    ax.errorbar(x, condition.mean, yerr=error_bar(condition), fmt="none", ecolor="black", capsize=4)
    ax.plot([x] * condition.n, condition.scores, ".", color="black", markersize=4, alpha=0.6)


def error_bar(condition: Condition) -> list[list[float]]:
    """Distances below and above the mean, as matplotlib's asymmetric `yerr` wants them."""
    if condition.ci95 is not None and condition.mean is not None:  # an interval always comes with a mean
        low, high = condition.ci95
        return [[condition.mean - low], [high - condition.mean]]
    spread = condition.std or 0.0
    return [[spread], [spread]]


def tick_label(condition: Condition) -> str:
    return textwrap.fill(condition.name, width=18) + f"\n(n={condition.n})"


def comparison_caption(results: Results) -> str:
    conditions = results.conditions
    if not conditions:
        return f"Mean {results.metric} per condition: no conditions were run."
    if all(c.mean is None for c in conditions):
        return f"Mean {results.metric} per condition: no seed succeeded in any condition."
    caption = (
        f"Mean {results.metric} of each condition over its seeds ({better(results)} is better; n in each label); "
        "error bars are 95% t-confidence intervals of the mean and dots are individual seeds."
    )
    without_interval = [c.name for c in conditions if c.mean is not None and c.ci95 is None]
    if without_interval:
        caption += f" With a single seed there is no interval: {', '.join(without_interval)}."
    without_seed = [c.name for c in conditions if c.mean is None]
    if without_seed:
        caption += f" No seed succeeded for {', '.join(without_seed)}."
    return caption


# --- ablations ------------------------------------------------------------------------------------------------


def ablation_chart(results: Results, path: Path) -> Path | None:
    """Change in the metric when each component is removed (ablation minus proposed); None without ablations."""
    ablations = [c for c in results.conditions if c.kind == "ablation"]
    if not ablations:
        return None
    proposed = proposed_condition(results)
    fig, ax = new_figure(width=6.4, height=1.2 + 0.6 * len(ablations))
    changes = draw_ablations(ax, results, proposed, ablations)
    ax.set_yticks(range(len(ablations)), [textwrap.fill(a.name, width=28) for a in ablations], parse_math=False)
    ax.set_ylim(len(ablations) - 0.5, -0.5)  # first ablation on top, as listed
    # Symmetric around zero with room beyond the longest bar for its p-value label.
    reach = max((abs(c) for c in changes if c is not None), default=0.0) or 1.0
    ax.set_xlim(-1.8 * reach, 1.8 * reach)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"change in {results.metric}: ablation - proposed ({better(results)} is better)", parse_math=False)
    return save(fig, path)


def draw_ablations(
    ax: Axes, results: Results, proposed: Condition | None, ablations: list[Condition]
) -> list[float | None]:
    """A bar per ablation, or the reason there are none; returns each ablation's change."""
    if proposed is None:
        annotate_empty(ax, NO_PROPOSED, ax.xaxis)
        return []
    if proposed.mean is None or all(a.mean is None for a in ablations):
        annotate_empty(ax, NO_SUCCESS, ax.xaxis)
        return []
    return [draw_ablation(ax, y, results, proposed, ablation) for y, ablation in enumerate(ablations)]


def proposed_condition(results: Results) -> Condition | None:
    return next((c for c in results.conditions if c.kind == "proposed"), None)


def draw_ablation(ax: Axes, y: int, results: Results, proposed: Condition, ablation: Condition) -> float | None:
    """One bar: the change in the metric when this component is removed; returns it (None when not measured)."""
    comparison = find_comparison(results, proposed, ablation)
    if comparison is None:
        reason = "no successful seed" if ablation.mean is None else "not compared in results.json"
        ax.text(0, y, f" {reason}", va="center", fontsize=8, color=FAILED_COLOUR)
        return None
    change = -comparison.difference  # the comparison is proposed - ablation
    ax.barh(y, change, height=0.5, color=HELPED_COLOUR if component_helped(results, change) else FAILED_COLOUR)
    ax.text(
        change,
        y,
        f"  {significance_text(comparison)}  ",
        va="center",
        ha="left" if change >= 0 else "right",
        fontsize=8,
        parse_math=False,
    )
    return change


def find_comparison(results: Results, proposed: Condition, ablation: Condition) -> Comparison | None:
    return next((c for c in results.comparisons if c.a == proposed.name and c.b == ablation.name), None)


def component_helped(results: Results, change: float) -> bool:
    """Removing a component that helped makes the metric worse."""
    return change < 0 if results.direction == "maximize" else change > 0


def significance_text(comparison: Comparison) -> str:
    return f"p = {comparison.p_value:.3g}" if comparison.p_value is not None else comparison.test


def ablation_caption(results: Results) -> str:
    worse = "lower" if results.direction == "maximize" else "higher"
    proposed = proposed_condition(results)
    if proposed is None:
        return f"Ablations of the recipe on {results.metric}: there is no proposed condition to compare them with."
    if proposed.mean is None:
        return f"Ablations of the recipe on {results.metric}: no seed of the proposed condition succeeded."
    if all(c.mean is None for c in results.conditions if c.kind == "ablation"):
        return f"Ablations of the recipe on {results.metric}: no seed of any ablation succeeded."
    return (
        f"Change in mean {results.metric} when each component is removed (ablation minus proposed; "
        f"{better(results)} is better). Green bars mark components whose removal made the result {worse}, i.e. "
        "components that helped; red bars mark the others. Labels give the Welch t-test p-value, or why no test "
        "was possible."
    )


# --- shared ---------------------------------------------------------------------------------------------------


def new_figure(width: float, height: float) -> tuple[Figure, Axes]:
    # A bare Figure with its own Agg canvas: no pyplot, so no global figure state and no GUI backend.
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def better(results: Results) -> str:
    return "higher" if results.direction == "maximize" else "lower"


def metric_label(results: Results) -> str:
    return f"{results.metric} ({better(results)} is better)"


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def annotate_empty(ax: Axes, message: str, value_axis: Axis) -> None:
    """Say in the plot that there is nothing to show, and hide the value axis's ticks, which would mean nothing."""
    value_axis.set_ticks([])
    ax.text(
        0.5,
        0.5,
        message,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=12,
        color=FAILED_COLOUR,
        bbox={"facecolor": "white", "edgecolor": FAILED_COLOUR},
    )


def add_legend(ax: Axes) -> None:
    handles, labels = ax.get_legend_handles_labels()
    # every labelled series here is a line; skip the empty ones
    drawn = [(h, label) for h, label in zip(handles, labels) if isinstance(h, Line2D) and np.size(h.get_xdata())]
    if drawn:
        ax.legend(*zip(*drawn), fontsize=8, loc="best")


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def save(fig: Figure, path: Path) -> Path:
    """Write `path` as PNG and the same figure beside it as PDF; returns the PNG's path."""
    png = Path(path).with_suffix(".png")
    png.parent.mkdir(parents=True, exist_ok=True)
    # TrueType fonts in the PDF (venues reject Type 3); no creation date, so equal results give equal bytes.
    with matplotlib.rc_context({"pdf.fonttype": 42}):
        fig.savefig(png, dpi=DPI)
        fig.savefig(png.with_suffix(".pdf"), metadata={"CreationDate": None})
    return png
