"""Prose naming a dataset, model family or size that the fact sheet does not hold is removed, with its reason.

The fabricated sentences are the demo's (issue 15): a paper about a logistic regression on the 1,797
UCI digits that spoke of a CNN on MNIST with 60,000 images.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nanoresearch.literature.source import Paper
from nanoresearch.paper.fact_checker import FactContext, check_facts, named_entities, normalise, unsupported_fact
from nanoresearch.paper.factsheet import FactSheet
from nanoresearch.paper.results import Results
from nanoresearch.paper.write import write_paper

DEMO_FABRICATIONS = [
    "We train a convolutional neural network (CNN) on the MNIST dataset.",
    "The MNIST training set holds 60,000 images of handwritten digits.",
    "We increase the number of training samples from 10,000 to 20,000.",
    "Our model has three hidden layers.",
]
TRUE_TO_THE_SHEET = [
    "A logistic regression is trained on the 1,437 training images and scored on the 360 held-out images.",
    "The solver is stopped after 10 iterations, so the recipe leaves room to improve.",
]
LECUN = Paper(
    key="lecun1998gradient",
    title="Gradient-Based Learning Applied to Document Recognition",
    authors=["Yann LeCun"],
    year=1998,
    abstract="Convolutional neural networks trained on the MNIST database outperform other methods.",
)
CORTES = Paper(key="cortes1995support", title="Support-Vector Networks", authors=["Corinna Cortes"], year=1995)


@pytest.fixture
def context(digits_sheet: FactSheet) -> FactContext:
    papers = {p.key: f"{p.title}\n{p.abstract}" for p in (LECUN, CORTES)}
    sizes = {str(size.count) for size in digits_sheet.sizes}
    return FactContext(sheet=digits_sheet.text(model_words=False), sizes=sizes, knobs=digits_sheet.knob_values(),
                       papers=papers)  # fmt: skip


@pytest.mark.parametrize("sentence", DEMO_FABRICATIONS)
def test_the_demos_fabricated_facts_are_not_on_the_digits_sheet(sentence: str, context: FactContext) -> None:
    assert unsupported_fact(sentence, context) is not None


@pytest.mark.parametrize("sentence", TRUE_TO_THE_SHEET)
def test_what_the_task_folder_says_may_be_said(sentence: str, context: FactContext) -> None:
    assert unsupported_fact(sentence, context) is None


def test_the_reason_names_what_is_missing(context: FactContext) -> None:
    assert unsupported_fact(DEMO_FABRICATIONS[0], context) == (
        "names the dataset MNIST, the model family convolutional neural network, which the fact sheet does not"
    )
    assert unsupported_fact(DEMO_FABRICATIONS[2], context) == (
        "states the size 'samples from 10,000 to 20,000', which is not on the fact sheet"
    )


def test_related_work_may_name_what_the_paper_it_cites_names(context: FactContext) -> None:
    cited = "Convolutional networks were trained on MNIST \\cite{lecun1998gradient}."
    wrong_paper = "Convolutional networks were trained on MNIST \\cite{cortes1995support}."

    assert unsupported_fact(cited, context) is None
    assert unsupported_fact(wrong_paper, context) == (
        "names the dataset MNIST, the model family convolutional neural network, which the fact sheet or the papers "
        "it cites does not"
    )
    assert named_entities("We follow \\cite{krizhevsky2012imagenet}.") == []  # a cite key names nothing


def test_names_match_however_they_are_spelled() -> None:
    assert normalise("LogisticRegression on CIFAR10") == " logistic regression on cifar 10 "
    assert [e.name for e in named_entities("Two SVMs and a random-forest on CIFAR-10.")] == [
        "CIFAR-10", "support vector machine", "random forest",
    ]  # fmt: skip


def test_check_facts_keeps_the_rest_and_lists_each_removal(context: FactContext) -> None:
    text, removed = check_facts(" ".join([TRUE_TO_THE_SHEET[0], *DEMO_FABRICATIONS[:2]]), context)

    assert text == TRUE_TO_THE_SHEET[0]
    assert [sentence for sentence, _ in removed] == DEMO_FABRICATIONS[:2]


def test_write_paper_with_the_digits_sheet_removes_them_and_records_why(
    tmp_path: Path, digits_results: Results, digits_sheet: FactSheet
) -> None:
    method = " ".join([TRUE_TO_THE_SHEET[0], *DEMO_FABRICATIONS])

    files = write_paper(tmp_path, "Digits", {"method": method}, digits_results, [LECUN], [], sheet=digits_sheet)

    tex = files.tex.read_text()
    assert "1,437 training images" in tex and "360 held-out images" in tex  # the sheet's sizes may be typed
    assert "MNIST" not in tex and "60,000" not in tex and "20,000" not in tex and "hidden layers" not in tex
    checks = json.loads((tmp_path / "checks.json").read_text())
    assert [(r["check"], r["sentence"]) for r in checks["removed"]] == [("facts", s) for s in DEMO_FABRICATIONS]
    assert all(r["section"] == "method" and r["reason"] for r in checks["removed"])


def test_without_a_sheet_nothing_is_removed_as_unsupported(
    tmp_path: Path, digits_results: Results
) -> None:
    files = write_paper(tmp_path, "Digits", {"method": DEMO_FABRICATIONS[0]}, digits_results, [], [])

    assert "MNIST" in files.tex.read_text() and files.checks.removed == []


def test_a_suggestion_for_future_work_may_name_other_models(context: FactContext) -> None:
    assert unsupported_fact("Future work could try a random forest or a small neural network.", context) is None
    assert unsupported_fact("We trained a random forest.", context) is not None


def test_the_value_a_trial_set_may_be_typed_but_no_other(
    tmp_path: Path, digits_results: Results, digits_sheet: FactSheet
) -> None:
    changed = digits_sheet.trials[1].model_copy(update={"changed": ["+ model = LogisticRegression(max_iter=100)"]})
    sheet = digits_sheet.model_copy(update={"trials": [digits_sheet.trials[0], changed]})
    method = "Trial 2 set max_iter to 100. Another run used 500 iterations."

    files = write_paper(tmp_path, "Digits", {"method": method}, digits_results, [], [], sheet=sheet)

    assert "set max\\_iter to 100." in files.tex.read_text()
    assert files.removed_sentences == ["Another run used 500 iterations."]


# The recorded Qwen2.5-Coder-1.5B run's abstract, of a run whose two edits raised max_iter and both ran.
QWEN_FABRICATIONS = [
    "The proposed edit failed due to crashes during training.",
    "A different kernel type was also tested.",
    "We also applied data augmentation and early stopping.",
]


@pytest.mark.parametrize("sentence", QWEN_FABRICATIONS)
def test_a_crash_or_a_technique_no_trial_tried_is_not_on_the_sheet(sentence: str, context: FactContext) -> None:
    assert unsupported_fact(sentence, context) is not None


def test_a_crash_may_be_told_when_a_trial_on_the_sheet_failed(context: FactContext) -> None:
    assert unsupported_fact(QWEN_FABRICATIONS[0], context.model_copy(update={"crashed": True})) is None


def test_a_technique_may_be_suggested_or_cited(context: FactContext) -> None:
    assert unsupported_fact("Future work could try an RBF kernel.", context) is None
    assert unsupported_fact(r"Support-vector networks map inputs through a kernel \cite{cortes1995support}.",
                            context.model_copy(update={"papers": {"cortes1995support": "Support-Vector Networks with a polynomial kernel"}})) is None  # fmt: skip
    assert "the technique kernel" in (unsupported_fact(QWEN_FABRICATIONS[1], context) or "")
