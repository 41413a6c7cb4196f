"""No sentence may claim an improvement that results.json does not show.

The demo's abstract claimed 0.947 was "higher than the baseline accuracy of 0.947" in a run whose best
kept trial was the baseline.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nanoresearch.paper.claims_check import ClaimContext, check_claims, claim_context, unbacked_claim
from nanoresearch.paper.numbers import number_macros
from nanoresearch.paper.results import Results
from nanoresearch.paper.write import write_paper

DEMO_ABSTRACT = "Our method reaches an accuracy of 0.947, which is higher than the baseline accuracy of 0.947."
IMPROVEMENT_CLAIMS = [
    "More solver iterations improve the accuracy of the classifier.",
    "The proposed recipe outperforms the baseline.",
    "The proposed recipe reaches higher accuracy than the baseline.",
    "The change yields better accuracy on the held-out images.",
    "The proposed recipe reaches \\ResProposedMean{}, higher than \\ResBaselineMean{}.",
]
HONEST = [
    "No change to the recipe improved on the baseline.",
    "The proposed recipe did not outperform the baseline.",
    "The proposed recipe reaches \\ResProposedMean{}, the same as the baseline.",
    "Support-vector networks outperform earlier classifiers \\cite{cortes1995support}.",  # about cited work
    "For accuracy, higher is better.",
    "We hypothesise that more solver iterations improve held-out accuracy.",  # a hypothesis is no claim
]


@pytest.fixture
def negative(digits_results: Results) -> ClaimContext:
    return claim_context(digits_results, number_macros(digits_results))


@pytest.fixture
def positive(results: Results) -> ClaimContext:
    return claim_context(results, number_macros(results))


@pytest.mark.parametrize("sentence", [DEMO_ABSTRACT, *IMPROVEMENT_CLAIMS])
def test_with_no_kept_improvement_no_sentence_claims_one(sentence: str, negative: ClaimContext) -> None:
    assert unbacked_claim(sentence, negative) is not None


@pytest.mark.parametrize("sentence", HONEST)
def test_honest_sentences_about_a_negative_result_stay(sentence: str, negative: ClaimContext) -> None:
    assert unbacked_claim(sentence, negative) is None


def test_a_comparison_its_own_numbers_contradict_goes_even_in_a_successful_run(positive: ClaimContext) -> None:
    assert unbacked_claim(DEMO_ABSTRACT, positive) == "says 0.947 is higher than 0.947, which its own numbers contradict"
    # In that run the proposed recipe (0.947) did beat the baseline (0.905): saying so stays, the reverse goes.
    assert unbacked_claim("The proposed recipe outperforms the baseline.", positive) is None
    assert unbacked_claim("\\ResProposedMean{} is higher than \\ResBaselineMean{}.", positive) is None
    assert unbacked_claim("\\ResBaselineMean{} is higher than \\ResProposedMean{}.", positive) is not None
    assert unbacked_claim("The error of 0.2 is lower than 0.1.", positive) is not None


def test_a_run_whose_change_won_may_not_say_it_failed(positive: ClaimContext, negative: ClaimContext) -> None:
    # The recorded 1.5B run's abstract: its first edit crashed, the debugger's repair of it was kept.
    sentence = "However, this approach failed due to crashes."
    assert unbacked_claim(sentence, positive) == (
        "says our change failed ('failed'), but results.json shows a kept change that beat the baseline"
    )
    assert unbacked_claim(sentence, negative) is None
    assert unbacked_claim("The first edit failed to run; the debugger repaired it.", positive) is None
    assert unbacked_claim("The modification did not improve the accuracy.", positive) is not None


def test_significance_is_claimed_only_when_the_test_found_it(negative: ClaimContext, positive: ClaimContext) -> None:
    sentence = "The difference to the baseline is statistically significant."

    assert unbacked_claim(sentence, negative) is not None  # zero variance: no test was possible
    assert unbacked_claim(sentence, positive) is None  # p = 0.00021
    assert unbacked_claim("The difference is not significant.", negative) is None


def test_better_follows_the_metrics_direction(digits_results: Results) -> None:
    loss = digits_results.model_copy(update={"metric": "loss", "direction": "minimize", "success": True})
    context = claim_context(loss, number_macros(loss))

    assert unbacked_claim("A loss of 0.2 is better than 0.3.", context) is None
    assert unbacked_claim("A loss of 0.3 is better than 0.2.", context) is not None


def test_check_claims_keeps_the_honest_rest(negative: ClaimContext) -> None:
    text, removed = check_claims(f"{HONEST[0]} {DEMO_ABSTRACT} {HONEST[1]}", negative)

    assert text == f"{HONEST[0]} {HONEST[1]}"
    assert removed == [(DEMO_ABSTRACT, "says 0.947 is higher than 0.947, which its own numbers contradict")]


def test_the_paper_drops_the_demos_abstract_and_records_why(tmp_path: Path, digits_results: Results) -> None:
    abstract = f"We tune the solver of a digit classifier. {DEMO_ABSTRACT} {IMPROVEMENT_CLAIMS[1]}"

    files = write_paper(tmp_path, "Digits", {"abstract": abstract}, digits_results, [], [])

    tex = files.tex.read_text()
    assert "We tune the solver of a digit classifier." in tex and "higher than" not in tex and "outperforms" not in tex
    removed = json.loads((tmp_path / "checks.json").read_text())["removed"]
    assert [(r["check"], r["sentence"]) for r in removed] == [("claims", DEMO_ABSTRACT), ("claims", IMPROVEMENT_CLAIMS[1])]
    assert "results.json shows no kept change that beat the baseline" in removed[1]["reason"]
