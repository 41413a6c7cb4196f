"""write_paper: whatever the LLM wrote, paper.tex cites only references.bib and uses only defined macros."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from nanoresearch.literature.source import Paper
from nanoresearch.paper.results import Results
from nanoresearch.paper.template import Figure
from nanoresearch.paper.write import write_paper

ADVERSARIAL = {
    "abstract": "We reach \\ResProposedMean{} accuracy, far above 99.9% claimed elsewhere. \\cite{made_up}",
    "introduction": (
        "CNNs \\cite{lecun1998gradient,ghost2021} started it. \\ci\\input{x}te{phantom2020} is sneaky. "
        "\\citep{srivastava2014dropout} helps. \\nocite{*} \\ResTotallyInvented{} is best. Then <<abstract>> stays text."
    ),
    "related_work": "See \\citet[p.~1]{evil2020}. Also \\citeauthor{lecun1998gradient}.",
    "method": "\\def\\cite#1{} \\write18{rm -rf ~} We train with dropout.",
    "experiments": "Proposed: \\ResProposedMean; baseline: \\ResBaselineMean (p = \\ResProposedVsBaselineP).",
    "conclusion": "It works.",
    "limitations": "Only \\ResProposedN seeds.",
}


def cite_keys(tex: str) -> set[str]:
    return {key.strip() for group in re.findall(r"\\cite[a-z]*\*?(?:\[[^\]]*\])*\{([^}]*)\}", tex) for key in group.split(",")}


def bib_keys(bib: str) -> set[str]:
    return set(re.findall(r"^@\w+\{([^,]+),", bib, re.M))


def assert_consistent(folder: Path) -> None:
    tex = (folder / "paper.tex").read_text()
    bib = (folder / "references.bib").read_text()
    defined = set(re.findall(r"\\newcommand\{(\\Res[A-Za-z]+)\}", tex))
    assert cite_keys(tex) == bib_keys(bib)
    assert set(re.findall(r"\\Res[A-Za-z]+", tex)) <= defined
    assert defined == set(json.loads((folder / "numbers.json").read_text()))
    assert "<<" not in tex.split("\\begin{document}")[0]


def test_adversarial_prose_cannot_cite_or_use_what_does_not_exist(
    tmp_path: Path, results: Results, papers: list[Paper]
) -> None:
    files = write_paper(tmp_path, "Dropout & Friends", ADVERSARIAL, results, papers, [], user="ada")

    assert_consistent(tmp_path)
    tex = files.tex.read_text()
    assert files.cited_keys == ["lecun1998gradient", "srivastava2014dropout"]
    assert bib_keys(files.bib.read_text()) == {"lecun1998gradient", "srivastava2014dropout"}  # higgins is not cited
    assert files.removed_cite_keys == ["made_up", "ghost2021", "evil2020"]  # \\ci\\input{x}te{..} is no citation
    assert "\\ResTotallyInvented{} is best." in files.removed_sentences
    assert any("99.9" in sentence for sentence in files.removed_sentences)
    assert "\\write18" not in tex and "rm -rf" not in tex and "\\nocite" not in tex and "\\def\\cite" not in tex
    assert "\\author{NanoResearch, on behalf of ada}" in tex
    assert "\\title{Dropout \\& Friends}" in tex
    assert "\\section{Limitations}\nOnly \\ResProposedN{} seeds." in tex
    assert "<<abstract>> stays text" in tex
    assert tex.index("\\label{tab:results}") < tex.index("\\section{Conclusion}")
    assert "\\bibliography{references}" in tex


def test_without_citations_there_is_no_bibliography(tmp_path: Path, results: Results, papers: list[Paper]) -> None:
    files = write_paper(tmp_path, "T", {"introduction": "Nothing cited \\cite{nope}."}, results, papers, [])

    assert "\\bibliography" not in files.tex.read_text()
    assert files.bib.read_text() == ""
    assert files.cited_keys == []


def test_figures_are_included_with_their_captions_escaped(
    tmp_path: Path, results: Results, papers: list[Paper]
) -> None:
    figure = Figure(path=Path("figures/learning_curve.pdf"), caption="Accuracy_per trial, 100% of 12 trials", label="lc")

    files = write_paper(tmp_path, "T", {}, results, papers, [figure])

    tex = files.tex.read_text()
    assert "\\includegraphics[width=0.8\\linewidth]{figures/learning_curve.pdf}" in tex
    assert "\\caption{Accuracy\\_per trial, 100\\% of 12 trials}\n\\label{fig:lc}" in tex


@pytest.mark.parametrize("path", ["../secret.png", "/etc/figure.png", "my figure.png", "fig.v2.png", "figure.eps"])
def test_figure_paths_must_be_plain_and_inside_the_paper_folder(path: str) -> None:
    with pytest.raises(ValidationError):
        Figure(path=Path(path), caption="c", label="l")


FRAGMENTS = st.sampled_from(
    [
        "\\cite{", "\\citep{", "\\citet*[x]{", "lecun1998gradient", "higgins2017beta", "invented", ",", "}", "{",
        "\\ResProposedMean", "\\ResNope", "\\input{a}", "\\", " text. ", "Next ", "0.947", " 42 ", "\n\n", "%", "~",
    ]
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["introduction", "method", "related_work"]), st.lists(FRAGMENTS).map("".join)))
def test_any_prose_gives_a_consistent_paper(
    tmp_path: Path, results: Results, papers: list[Paper], sections: dict[str, str]
) -> None:
    files = write_paper(tmp_path, "T", sections, results, papers, [])

    assert_consistent(tmp_path)
    # A related work that leaves the paper citing nothing gets the retrieved papers listed (repairs.py).
    listed = any(repair.kind == "bibliography" for repair in files.checks.repairs)
    assert set(files.cited_keys) <= ({p.key for p in papers} if listed else {"lecun1998gradient", "higgins2017beta"})
