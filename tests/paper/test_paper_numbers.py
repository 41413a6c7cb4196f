"""Number macros: names, formatting, and provenance that resolves back to results.json."""

from __future__ import annotations

import json
import math
import re

from hypothesis import given
from hypothesis import strategies as st

from nanoresearch.paper.numbers import (
    facts_text,
    format_p,
    format_value,
    macros_tex,
    number_macros,
    number_map_json,
    tex_number,
)
from nanoresearch.paper.results import Comparison, Condition, Results


def resolve(document: object, pointer: str) -> object:
    """RFC 6901 JSON pointer (our pointers use no escapes)."""
    for part in pointer.lstrip("/").split("/"):
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def test_every_macro_resolves_to_its_value_in_results_json(results: Results) -> None:
    refs = number_macros(results)
    document = json.loads(results.model_dump_json())
    number_map = json.loads(number_map_json(refs))

    assert len(refs) > 20
    for ref in refs:
        assert resolve(document, ref.source) == ref.value
        assert number_map[ref.macro]["source"] == ref.source
        assert number_map[ref.macro]["value"] == resolve(document, number_map[ref.macro]["source"])
    assert set(number_map) == {ref.macro for ref in refs}


def test_macro_names_are_readable_and_cover_each_kind_of_number(results: Results) -> None:
    by_macro = {ref.macro: ref for ref in number_macros(results)}

    assert by_macro["\\ResProposedMean"].text == "0.947"
    assert by_macro["\\ResProposedMean"].source == "/conditions/1/mean"
    assert by_macro["\\ResBaselineCILow"].source == "/conditions/0/ci95/0"
    assert by_macro["\\ResAblationWithoutLayerTwoN"].text == "1"
    assert by_macro["\\ResProposedVsBaselineP"].text == "<0.001"
    assert by_macro["\\ResProposedVsAblationWithoutDropoutP"].text == "0.006"
    assert by_macro["\\ResBestTrialScore"].source == "/trials/2/score"
    # Missing values get no macro: n = 1 has no interval, an untestable comparison no p-value.
    assert "\\ResAblationWithoutLayerTwoCILow" not in by_macro
    assert "\\ResProposedVsAblationWithoutLayerTwoP" not in by_macro


@given(st.lists(st.text(max_size=12), min_size=1, max_size=8))
def test_macro_names_are_letters_only_and_unique_for_any_condition_names(names: list[str]) -> None:
    conditions = [Condition(name=name, kind="proposed", n=2, mean=0.5, std=0.1) for name in names]
    comparisons = [Comparison(a=names[0], b=name, difference=0.0, test="Welch t-test") for name in names]
    results = Results(run_id="r", task="t", metric="m", direction="minimize", success=True,
                      conditions=conditions, comparisons=comparisons)  # fmt: skip

    macros = [ref.macro for ref in number_macros(results)]

    assert all(re.fullmatch(r"\\Res[A-Za-z]+", macro) for macro in macros)
    assert len(macros) == len(set(macros))


def test_duplicate_and_awkward_names_get_distinct_stems() -> None:
    conditions = [
        Condition(name="best trial", kind="baseline", n=1, mean=1.0),
        Condition(name="Baseline", kind="baseline", n=1, mean=2.0),
        Condition(name="baseline!", kind="baseline", n=1, mean=3.0),
        Condition(name="模型", kind="proposed", n=1, mean=4.0),
        Condition(name="lr 3e-4 (Müller)", kind="proposed", n=1, mean=5.0),
    ]
    results = Results(run_id="r", task="t", metric="m", direction="maximize", success=True, conditions=conditions)

    means = [ref.macro for ref in number_macros(results) if ref.source.endswith("/mean")]

    assert means == [
        "\\ResBestTrialBMean",  # "BestTrial" is taken by the best-trial score
        "\\ResBaselineMean",
        "\\ResBaselineBMean",
        "\\ResConditionMean",
        "\\ResLrThreeEFourMullerMean",
    ]


def test_non_finite_values_get_no_macro() -> None:
    condition = Condition(name="proposed", kind="proposed", n=2, mean=float("nan"), std=float("inf"))
    results = Results(run_id="r", task="t", metric="m", direction="maximize", success=True, conditions=[condition])

    assert [ref.macro for ref in number_macros(results)] == ["\\ResProposedN"]


def test_values_are_formatted_to_three_significant_digits() -> None:
    assert format_value(0.94732) == "0.947"
    assert format_value(12.345) == "12.3"
    assert format_value(0.099999) == "0.100"
    assert format_value(-0.012) == "-0.0120"
    assert format_value(999.7) == "1000"
    assert format_value(123456.7) == "123457"
    assert format_value(1.234e-5) == "1.23e-05"
    assert format_value(0.0) == "0"
    assert format_value(-0.0) == "0"
    assert format_p(0.00021) == "<0.001"
    assert format_p(0.0061) == "0.006"
    assert format_p(0.31) == "0.310"


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9))
def test_formatted_values_stay_close_to_the_value(value: float) -> None:
    text = format_value(value)
    assert math.isclose(float(text), value, rel_tol=5e-3, abs_tol=1e-12) or abs(value) >= 100
    assert abs(float(text) - value) <= 0.5 + 5e-3 * abs(value)


def test_tex_numbers_use_math_mode_only_where_text_mode_would_misprint() -> None:
    assert tex_number("0.947") == "0.947"
    assert tex_number("-0.0120") == "\\ensuremath{-0.0120}"
    assert tex_number("<0.001") == "\\ensuremath{<0.001}"
    assert tex_number("1.23e-05") == "\\ensuremath{1.23\\times 10^{-5}}"


def test_macros_tex_and_facts_text_list_every_number(results: Results) -> None:
    refs = number_macros(results)
    tex = macros_tex(refs)
    facts = facts_text(refs).splitlines()

    assert "\\newcommand{\\ResProposedMean}{0.947}\n" in tex
    assert "\\newcommand{\\ResProposedVsBaselineP}{\\ensuremath{<0.001}}\n" in tex
    assert tex.count("\\newcommand") == len(refs) == len(facts)
    assert "\\ResProposedMean = 0.947: mean accuracy of proposed over 3 seeds" in facts
    assert "\\ResAblationWithoutLayerTwoMean = 0.900: mean accuracy of ablation: without layer 2 over 1 seed" in facts
