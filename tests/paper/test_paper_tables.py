"""Tables drawn from results.json use the same macros as numbers.json."""

from __future__ import annotations

import re

from nanoresearch.paper.numbers import number_macros
from nanoresearch.paper.results import Condition, Results
from nanoresearch.paper.tables import ablation_table, comparisons_table, result_tables, results_table


def rows(table: str) -> list[str]:
    body = table.split("\\midrule\n")[1].split("\n\\bottomrule")[0]
    return body.splitlines()


def test_results_table_has_baseline_and_proposed_with_their_macros(results: Results) -> None:
    table = results_table(results, number_macros(results))

    assert rows(table) == [
        "baseline & \\ResBaselineMean{} $\\pm$ \\ResBaselineStd{} & [\\ResBaselineCILow{}, \\ResBaselineCIHigh{}]"
        " & \\ResBaselineN{} \\\\",
        "proposed & \\ResProposedMean{} $\\pm$ \\ResProposedStd{} & [\\ResProposedCILow{}, \\ResProposedCIHigh{}]"
        " & \\ResProposedN{} \\\\",
    ]
    assert "\\toprule" in table and "\\label{tab:results}" in table
    assert "accuracy (higher is better)" in table
    assert "Results on tiny\\_mnist" in table


def test_ablation_table_lists_only_ablations_and_marks_missing_values(results: Results) -> None:
    table = ablation_table(results, number_macros(results))

    assert table is not None
    assert rows(table) == [
        "ablation: without dropout & dropout\\_rate = 0 \\& no 50\\% masking & \\ResAblationWithoutDropoutMean{} "
        "$\\pm$ \\ResAblationWithoutDropoutStd{} & [\\ResAblationWithoutDropoutCILow{}, "
        "\\ResAblationWithoutDropoutCIHigh{}] & \\ResAblationWithoutDropoutN{} \\\\",
        "ablation: without layer 2 & -- & \\ResAblationWithoutLayerTwoMean{} $\\pm$ \\ResAblationWithoutLayerTwoStd{}"
        " & -- & \\ResAblationWithoutLayerTwoN{} \\\\",
    ]


def test_comparisons_table_shows_difference_test_and_p(results: Results) -> None:
    table = comparisons_table(results, number_macros(results))

    assert table is not None
    assert rows(table)[0] == (
        "proposed vs.\\ baseline & \\ResProposedVsBaselineDiff{} & Welch t-test & \\ResProposedVsBaselineStat{}"
        " & \\ResProposedVsBaselineP{} & yes \\\\"
    )
    assert rows(table)[2] == (
        "proposed vs.\\ ablation: without layer 2 & \\ResProposedVsAblationWithoutLayerTwoDiff{} & "
        "untestable (n < 2) & -- & -- & -- \\\\"
    )


def test_every_macro_in_the_tables_is_defined(results: Results) -> None:
    refs = number_macros(results)
    used = set(re.findall(r"\\Res[A-Za-z]+", "\n".join(result_tables(results, refs))))

    assert used <= {ref.macro for ref in refs}
    assert len(result_tables(results, refs)) == 3


def test_without_ablations_or_comparisons_only_the_results_table_is_drawn() -> None:
    failed = Condition(name="baseline", kind="baseline", n=0, failures=["crash", "crash"])
    results = Results(run_id="r", task="t", metric="loss", direction="minimize", success=False, conditions=[failed])
    refs = number_macros(results)

    tables = result_tables(results, refs)

    assert len(tables) == 1
    assert rows(tables[0]) == ["baseline & -- & -- & \\ResBaselineN{} \\\\"]
    assert "loss (lower is better)" in tables[0]
    assert ablation_table(results, refs) is None
    assert comparisons_table(results, refs) is None
