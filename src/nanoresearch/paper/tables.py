"""Result tables drawn by code from results.json, never by the LLM.

Every value in a table is a \\Res... macro, the same one the prose uses, so a table and numbers.json
cannot disagree. Values a condition lacks (no successful seed, n < 2 for an interval) print as "--".
"""

from __future__ import annotations

from nanoresearch.paper.latex import latex_escape
from nanoresearch.paper.numbers import CI_LEVEL, NumberRef
from nanoresearch.paper.results import Condition, Results

TABLE_LABELS = {"results": "tab:results", "comparisons": "tab:comparisons", "ablations": "tab:ablations"}
_MISSING = "--"


class _Cells:
    """Table cells by JSON pointer: the macro defined for that place in results.json, or '--'."""

    def __init__(self, refs: list[NumberRef]) -> None:
        self.macros = {ref.source: ref.macro for ref in refs}

    def at(self, pointer: str) -> str:
        macro = self.macros.get(pointer)
        return macro + "{}" if macro else _MISSING

    def mean_std(self, index: int) -> str:
        mean, std = self.at(f"/conditions/{index}/mean"), self.at(f"/conditions/{index}/std")
        return mean if _MISSING in (mean, std) else f"{mean} $\\pm$ {std}"

    def interval(self, index: int) -> str:
        low, high = self.at(f"/conditions/{index}/ci95/0"), self.at(f"/conditions/{index}/ci95/1")
        return _MISSING if _MISSING in (low, high) else f"[{low}, {high}]"


def _table(caption: str, label: str, columns: str, header: list[str], rows: list[list[str]]) -> str:
    lines = [" & ".join(header) + " \\\\", "\\midrule", *(" & ".join(row) + " \\\\" for row in rows)]
    return (
        "\\begin{table}[htbp]\n\\centering\n"
        f"\\caption{{{caption}}}\n\\label{{{label}}}\n"
        f"\\begin{{tabular}}{{{columns}}}\n\\toprule\n" + "\n".join(lines) + "\n\\bottomrule\n\\end{tabular}\n\\end{table}"
    )


def _metric_heading(results: Results) -> str:
    better = "higher" if results.direction == "maximize" else "lower"
    return f"{latex_escape(results.metric)} ({better} is better)"


def _indexed(results: Results, ablations: bool) -> list[tuple[int, Condition]]:
    return [(i, c) for i, c in enumerate(results.conditions) if (c.kind == "ablation") == ablations]


def results_table(results: Results, refs: list[NumberRef]) -> str:
    """Baseline and proposed conditions: mean +- std, confidence interval of the mean, seeds."""
    cells = _Cells(refs)
    rows = [
        [latex_escape(c.name), cells.mean_std(i), cells.interval(i), cells.at(f"/conditions/{i}/n")]
        for i, c in _indexed(results, ablations=False)
    ]
    caption = (
        f"Results on {latex_escape(results.task)}: mean {latex_escape(results.metric)} over seeds "
        f"$\\pm$ sample standard deviation, {latex_escape(CI_LEVEL)} confidence interval of the mean, "
        "and $n$, the number of seeds that finished."
    )
    header = ["Condition", _metric_heading(results), f"{latex_escape(CI_LEVEL)} CI", "$n$"]
    return _table(caption, TABLE_LABELS["results"], "lccc", header, rows)


def ablation_table(results: Results, refs: list[NumberRef]) -> str | None:
    """Ablation conditions with what each one removes; None when the run had no ablations."""
    ablations = _indexed(results, ablations=True)
    if not ablations:
        return None
    cells = _Cells(refs)
    rows = [
        [
            latex_escape(c.name),
            latex_escape(c.description) or _MISSING,
            cells.mean_std(i),
            cells.interval(i),
            cells.at(f"/conditions/{i}/n"),
        ]
        for i, c in ablations
    ]
    caption = f"Ablations: each row removes one component of the proposed method; same statistics as Table~\\ref{{{TABLE_LABELS['results']}}}."
    header = ["Ablation", "What it changes", _metric_heading(results), f"{latex_escape(CI_LEVEL)} CI", "$n$"]
    return _table(caption, TABLE_LABELS["ablations"], "lp{0.3\\linewidth}ccc", header, rows)


def comparisons_table(results: Results, refs: list[NumberRef]) -> str | None:
    """Pairwise tests on the primary metric; None when there are none."""
    if not results.comparisons:
        return None
    cells = _Cells(refs)
    significance = {True: "yes", False: "no", None: _MISSING}
    rows = [
        [
            f"{latex_escape(c.a)} vs.\\ {latex_escape(c.b)}",
            cells.at(f"/comparisons/{j}/difference"),
            latex_escape(c.test),
            cells.at(f"/comparisons/{j}/statistic"),
            cells.at(f"/comparisons/{j}/p_value"),
            significance[c.significant],
        ]
        for j, c in enumerate(results.comparisons)
    ]
    caption = (
        f"Comparisons on {latex_escape(results.metric)}: difference of the means (first minus second), "
        "test, statistic, $p$-value, and whether $p < 0.05$."
    )
    header = ["Comparison", "Difference", "Test", "Statistic", "$p$", "Significant"]
    return _table(caption, TABLE_LABELS["comparisons"], "lccccc", header, rows)


def result_tables(results: Results, refs: list[NumberRef]) -> list[str]:
    """The tables the experiments section gets: results, then comparisons and ablations when there are any."""
    tables = [results_table(results, refs), comparisons_table(results, refs), ablation_table(results, refs)]
    return [table for table in tables if table is not None]
