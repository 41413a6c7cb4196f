"""Markdown, a section cut off at the token limit, a section the checks emptied and a related work citing
nothing are repaired and recorded in checks.json, never compiled silently (the demo's paper had all four,
and a 0-byte references.bib with 8 papers retrieved)."""

from __future__ import annotations

import json
from pathlib import Path

from nanoresearch.literature.source import Paper
from nanoresearch.paper.factsheet import FactSheet
from nanoresearch.paper.repairs import EMPTY_NOTE, cite_mentioned_papers, markdown_to_latex, trim_unfinished
from nanoresearch.paper.results import Results
from nanoresearch.paper.write import write_paper

DEMO_MARKDOWN = """# Method Description

We train a **logistic regression** on the pixel values, as in *the recipe*.

- The solver runs for `MAX_ITER` iterations
- Each trial changes train.py only

## Evaluation

```python
model.fit(x, y)
```
The evaluator scores the held-out images."""


def repairs_of(folder: Path) -> list[tuple[str, str]]:
    return [(r["section"], r["kind"]) for r in json.loads((folder / "checks.json").read_text())["repairs"]]


def test_markdown_becomes_the_latex_the_guard_keeps() -> None:
    text, changes = markdown_to_latex(DEMO_MARKDOWN)

    assert text.lstrip().startswith("We train a \\textbf{logistic regression} on the pixel values, as in \\emph{the recipe}.")
    assert "The solver runs for MAX_ITER iterations. Each trial changes train.py only." in text
    assert "\\subsection{Evaluation}" in text and "model.fit" not in text and "#" not in text and "`" not in text
    assert changes == [
        "Markdown heading '# Method Description' removed",
        "a Markdown list of 2 item(s) written as sentences",
        "Markdown heading '## Evaluation' made a subsection",
        "a Markdown code block removed",
        "1 Markdown bold mark(s) converted",
        "1 Markdown emphasis mark(s) converted",
        "1 Markdown inline code mark(s) converted",
    ]


def test_a_heading_run_into_the_prose_becomes_a_subsection() -> None:
    # The recorded 1.5B run's introduction: an inline "## Contributions" reached the PDF as \#\#.
    text, changes = markdown_to_latex("We study the digits. ## Contributions We raise the solver's cap. It converges.")
    assert text == "We study the digits.\n\n\\subsection{Contributions}\n\nWe raise the solver's cap. It converges."
    assert changes == ["Markdown heading '## Contributions' made a subsection"]
    text, _ = markdown_to_latex("Prior work is short. ## Related Work Prior studies used kernels.")
    assert "\\subsection{Related Work}" in text and "\nPrior studies used kernels." in text
    assert "#" not in markdown_to_latex("We end here. ## Results")[0]
    assert markdown_to_latex("Issue 5 ## is not a heading")[0] == "Issue 5 ## is not a heading"


def test_a_section_written_twice_over_is_kept_once() -> None:
    # The re-recorded 1.5B run's introduction: cut off at the token limit and asked for the rest, the
    # model wrote the whole section again, so the paper's introduction said everything twice.
    first = ("# Introduction\n\n## Problem\nThe goal is to raise the accuracy of a digit classifier on the held-out split.\n\n"
             "## Hypothesis\nMore solver iterations let the model converge and raise its accuracy on held-out digits.")
    again = ("## Introduction\n\nThe goal is to raise the accuracy of a digit classifier on the held-out split.\n\n"
             "## Hypothesis\nMore solver iterations let the model converge and raise its accuracy on held-out digits.\n\n"
             "## Caveats\nOnly one recipe and one split were tried in these experiments here.")
    text, changes = markdown_to_latex(f"{first} {again}")
    assert text.count("The goal is to raise") == 1 and text.count("More solver iterations") == 1
    assert text.count("\\subsection{Hypothesis}") == 1 and "\\subsection{Introduction}" not in text
    assert "\\subsection{Caveats}\n\nOnly one recipe" in text  # what was new in the second writing stays
    assert changes[0].startswith("a paragraph written twice removed: The goal is to raise the accuracy")
    assert changes[1].startswith("a paragraph written twice removed: More solver iterations")
    assert "a heading over only repeated text removed: ## Introduction" in changes
    # a short line may be meant twice
    assert markdown_to_latex("See the table.\n\nSee the table.")[0] == "See the table.\n\nSee the table."


def test_a_line_of_only_bold_words_is_a_heading() -> None:
    # The 1.5B starts its abstract with "**Abstract**"; the PDF showed a bold "Abstract" under the title.
    text, changes = markdown_to_latex("**Abstract**\n\nWe raise the solver's cap.\n\n**Why it matters:**\nDigits are a benchmark.")
    assert text.strip() == "We raise the solver's cap.\n\n\n\\subsection{Why it matters}\n\nDigits are a benchmark."
    assert changes == ["Markdown heading '**Abstract**' removed", "Markdown heading '**Why it matters:**' made a subsection"]
    assert markdown_to_latex("**A bold sentence that is long enough to be prose, not a title at all.**")[0].startswith("\\textbf")


def test_plain_prose_is_left_alone() -> None:
    prose = "Accuracy is 2 * 3 times nothing; see \\emph{x} and \\cite{a}."
    assert markdown_to_latex(prose) == (prose, [])


def test_a_section_cut_off_mid_sentence_is_trimmed_to_its_last_full_sentence() -> None:
    assert trim_unfinished("The recipe is logistic regression. It stops after the") == (
        "The recipe is logistic regression.", "It stops after the"
    )  # fmt: skip
    assert trim_unfinished("Done (see the table).") == ("Done (see the table).", None)
    assert trim_unfinished("As shown before. \\cite{x}") == ("As shown before. \\cite{x}", None)
    assert trim_unfinished("only a fragment of") == ("", "only a fragment of")


def test_write_paper_repairs_markdown_and_cut_off_sections_and_says_so(
    tmp_path: Path, digits_results: Results, digits_sheet: FactSheet
) -> None:
    sections = {"method": DEMO_MARKDOWN, "conclusion": "The recipe was left as it was. Future work could tune the"}

    files = write_paper(tmp_path, "Digits", sections, digits_results, [], [], sheet=digits_sheet)

    tex = files.tex.read_text()
    assert "\\# Method Description" not in tex and "**" not in tex and "\\textbf{logistic regression}" in tex
    assert "The recipe was left as it was.\n" in tex and "Future work could tune the" not in tex
    assert ("conclusion", "cut_off") in repairs_of(tmp_path) and ("method", "markdown") in repairs_of(tmp_path)


def test_a_section_with_nothing_left_says_so_in_the_paper(
    tmp_path: Path, digits_results: Results, digits_sheet: FactSheet
) -> None:
    sections = {"abstract": "We train a CNN on MNIST with 60,000 images.", "method": ""}

    files = write_paper(tmp_path, "Digits", sections, digits_results, [], [], sheet=digits_sheet)

    tex = files.tex.read_text()
    assert tex.count(EMPTY_NOTE) == 2
    assert repairs_of(tmp_path) == [("abstract", "empty_section"), ("method", "empty_section")]


def test_a_related_work_citing_nothing_cites_the_papers_it_names_or_lists_them(
    tmp_path: Path, results: Results, papers: list[Paper]
) -> None:
    naming = {"related_work": "LeCun and colleagues applied gradient-based learning to documents."}
    naming_none = {"related_work": "Digit recognition has a long history."}

    named = write_paper(tmp_path / "named", "T", naming, results, papers, [])
    listed = write_paper(tmp_path / "listed", "T", naming_none, results, papers, [])

    assert "documents~\\citep{lecun1998gradient}." in named.tex.read_text()
    assert named.cited_keys == ["lecun1998gradient"] and repairs_of(tmp_path / "named") == [
        ("related_work", "bibliography")
    ]
    assert listed.cited_keys == [p.key for p in papers]  # the demo's references.bib was empty with papers retrieved
    assert listed.bib.read_text().count("@") == len(papers)
    assert "Dropout: A Simple Way to Prevent Neural Networks from Overfitting~\\citep{srivastava2014dropout}" in (
        listed.tex.read_text()
    )


def test_a_sentence_already_citing_is_not_given_a_second_citation(papers: list[Paper]) -> None:
    text = "LeCun showed it \\cite{lecun1998gradient}. Srivastava and Hinton proposed dropout."

    repaired, added = cite_mentioned_papers(text, papers)

    assert added == ["srivastava2014dropout"]
    assert repaired == "LeCun showed it \\cite{lecun1998gradient}. Srivastava and Hinton proposed dropout~\\citep{srivastava2014dropout}."


def test_the_summary_status_shows_counts_what_checks_json_holds(
    tmp_path: Path, digits_results: Results, digits_sheet: FactSheet, papers: list[Paper]
) -> None:
    sections = {"related_work": "Digits are hard.", "method": "We train a CNN. It uses \\cite{ghost}"}

    files = write_paper(tmp_path, "Digits", sections, digits_results, papers, [], sheet=digits_sheet)

    assert files.checks.summary() == (
        "1 sentence(s) removed (1 facts); 1 unknown cite key(s) removed; 1 repair(s) (bibliography)"
    )
