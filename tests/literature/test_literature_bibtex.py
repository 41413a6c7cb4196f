"""BibTeX keys, entries, escaping, key collisions and duplicate merging."""

from __future__ import annotations

import shutil
import subprocess

import bibtexparser
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nanoresearch.errors import LiteratureError
from nanoresearch.literature.bibtex import (
    assign_unique_keys,
    bibliography,
    entry_type,
    escape_latex,
    paper_key,
    to_bibtex,
)
from nanoresearch.literature.papers import finalise, make_paper, merge_duplicates
from nanoresearch.literature.source import Paper


def paper(title: str, authors=("Ada Lovelace",), year=2020, **fields) -> Paper:
    return make_paper(source=fields.pop("source", "test"), title=title, authors=authors, year=year, **fields)


@pytest.mark.parametrize(
    ("authors", "year", "title", "key"),
    [
        (["Yann LeCun", "Léon Bottou"], 1998, "Gradient-based learning applied to document recognition",
         "lecun1998gradient"),
        (["LeCun, Yann"], 1998, "Gradient-Based Learning", "lecun1998gradient"),
        (["Jorge Nocedal"], 1989, "On the limited memory BFGS method", "nocedal1989limited"),
        (["Gaël Varoquaux"], 2011, "The Scikit-learn toolkit", "varoquaux2011scikit"),
        (["Martin Luther King Jr."], 1963, "A Letter", "king1963letter"),
        (["Zhang Wei", "李"], None, "深度学习 deep nets", "wei" + "nd" + "deep"),
        ([], 2001, "Random Forests", "anon2001random"),
    ],
)
def test_paper_key(authors, year, title, key):
    assert paper_key(Paper(key="", title=title, authors=authors, year=year)) == key


def test_latex_specials_are_escaped_so_text_stays_text():
    hostile = r"50% of $x$ & #1 {a_b} ~ ^ \input{/etc/passwd}"
    escaped = escape_latex(hostile)
    assert escaped == (r"50\% of \$x\$ \& \#1 \{a\_b\} \textasciitilde{} \textasciicircum{} "
                       r"\textbackslash{}input\{/etc/passwd\}")
    entry = to_bibtex(paper(hostile, authors=["O'Brien & Sons"], venue="IS&T/SPIE Symposium"))
    assert r"\input{" not in entry and r"O'Brien \& Sons" in entry and r"IS\&T/SPIE" in entry


def test_urls_and_dois_stay_usable_but_cannot_break_the_entry():
    entry = to_bibtex(paper("T", doi="10.1007/978-3-7908-2604-3_16", url="https://example.org/a b/{x}#sec%20one"))
    assert "doi = {10.1007/978-3-7908-2604-3_16}" in entry
    assert r"url = {https://example.org/a\%20b/\%7Bx\%7D\#sec\%20one}" in entry


@pytest.mark.parametrize(
    ("venue", "fields", "kind"),
    [
        ("Proceedings of the IEEE", {}, "article"),
        ("Machine Learning", {}, "article"),
        ("Advances in Neural Information Processing Systems 25", {}, "inproceedings"),
        ("International Conference on Learning Representations (ICLR)", {}, "inproceedings"),
        ("", {"arxiv_id": "1412.6980"}, "misc"),
        ("arXiv (Cornell University)", {}, "misc"),
        ("Springer", {"entry_type": "book"}, "book"),
        ("Somewhere", {"entry_type": "online"}, "misc"),  # a biblatex-only type
    ],
)
def test_entry_type_is_chosen_sensibly(venue, fields, kind):
    assert entry_type(paper("T", venue=venue, **fields)) == kind


def test_entries_parse_back_with_their_fields():
    adam = paper("Adam: A Method for Stochastic Optimization", authors=["Diederik P. Kingma", "Jimmy Ba"], year=2015,
                 venue="ICLR", arxiv_id="1412.6980v9")
    (entry,) = bibtexparser.parse_string(adam.bibtex).entries
    assert entry.key == "kingma2015adam" and entry.entry_type == "inproceedings"
    assert entry["booktitle"] == "ICLR" and entry["eprint"] == "1412.6980" and entry["year"] == "2015"
    assert entry["author"] == "Diederik P. Kingma and Jimmy Ba"


def test_colliding_keys_of_different_papers_get_suffixes():
    first = paper("Deep learning for cats")
    second = paper("Deep networks for dogs")
    third = paper("Deep trees")
    assert first.key == second.key == third.key == "lovelace2020deep"
    other = paper("Analytical engines", year=1843)
    keyed = assign_unique_keys([first, other, second, third])
    assert [p.key for p in keyed] == ["lovelace2020deepa", "lovelace1843analytical", "lovelace2020deepb",
                                      "lovelace2020deepc"]
    assert keyed[2].bibtex.startswith("@misc{lovelace2020deepb,")  # the entry follows its new key


def test_a_suffix_never_lands_on_a_key_already_in_use():
    taken = paper("Taken").model_copy(update={"key": "smith2020deepa"})
    twins = [paper("Deep A", authors=["J. Smith"]), paper("Deep B", authors=["J. Smith"])]
    keys = [p.key for p in assign_unique_keys([taken, *twins])]
    assert keys == ["smith2020deepa", "smith2020deepb", "smith2020deepc"]


@given(st.lists(st.sampled_from(["a", "b", "ab", "aa", "ba", "b"]), max_size=60))
def test_keys_are_always_unique(keys):
    papers = [Paper(key=key, title=f"paper {i}") for i, key in enumerate(keys)]
    assert len({p.key for p in assign_unique_keys(papers)}) == len(papers)


def test_duplicates_merge_by_doi_arxiv_id_or_title_and_fill_gaps():
    local = paper("Gradient-Based Learning Applied to Document Recognition", authors=["Yann LeCun"], year=1998,
                  source="local")
    by_title = paper("Gradient-based learning applied to document recognition.", authors=["Y. LeCun"], year=1998,
                     doi="https://doi.org/10.1109/5.726791", abstract="CNNs read digits.", source="openalex")
    by_doi = paper("Gradient based learning (journal version)", doi="10.1109/5.726791", source="semantic_scholar")
    adam_arxiv = paper("Adam", arxiv_id="1412.6980v9", year=2014, source="arxiv")
    adam_s2 = paper("Adam: a method for stochastic optimization", arxiv_id="1412.6980", source="semantic_scholar")

    merged = merge_duplicates([local, adam_arxiv, by_title, by_doi, adam_s2])
    assert [p.source for p in merged] == ["local", "arxiv"]  # first copy wins, order of first appearance
    lecun = merged[0]
    assert lecun.doi == "10.1109/5.726791" and lecun.abstract == "CNNs read digits."  # gaps filled from copies
    assert "doi = {10.1109/5.726791}" in lecun.bibtex


def test_finalise_merges_then_keys():
    same = [paper("Deep A"), paper("Deep A"), paper("Deep B")]
    assert [p.key for p in finalise(same)] == ["lovelace2020deepa", "lovelace2020deepb"]


def test_bibliography_rebuilds_entries_and_refuses_ambiguous_keys():
    tampered = paper("Safe title").model_copy(update={"bibtex": r"@misc{x, note = {\input{/etc/passwd}}}"})
    text = bibliography([tampered, tampered])
    assert text.count("@misc{lovelace2020safe,") == 1 and r"\input" not in text
    with pytest.raises(LiteratureError, match="two different papers share the BibTeX key"):
        bibliography([paper("Deep A"), paper("Deep B")])


@pytest.mark.skipif(not (shutil.which("pdflatex") and shutil.which("bibtex")), reason="needs pdflatex and bibtex")
def test_the_bibliography_compiles_with_bibtex_and_pdflatex(tmp_path):
    papers = finalise([
        paper(r"Costs & benefits: 100% of {braces}, $money$, #tags, snake_case, ~tilde, x^2 and C:\path",
              authors=["Léon Bottou", "O'Neil, Cathy"], venue="Journal of Odd Characters & More", year=2010,
              doi="10.1007/978-3-7908-2604-3_16", url="https://example.org/~user/a_b?q=1&r=2#frag%20x"),
        paper("Adam: A Method for Stochastic Optimization", authors=["Diederik P. Kingma"], year=2015,
              venue="International Conference on Learning Representations", arxiv_id="1412.6980"),
        paper("A preprint", arxiv_id="2101.00001"),
        paper("A preprint", authors=["Someone Else"], year=2020),
    ])
    (tmp_path / "refs.bib").write_text(bibliography(papers), encoding="utf-8")
    cites = ",".join(p.key for p in papers)
    (tmp_path / "main.tex").write_text(
        "\\documentclass{article}\\usepackage[T1]{fontenc}\\usepackage[utf8]{inputenc}\\usepackage{natbib}"
        "\\usepackage{url}\\begin{document}\\nocite{" + cites + "}\\bibliographystyle{plainnat}"
        "\\bibliography{refs}\\end{document}\n"
    )

    def run(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    run("pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex")
    bib = run("bibtex", "main")
    assert bib.returncode == 0, bib.stdout
    for _ in range(2):
        latex = run("pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex")
        assert latex.returncode == 0, latex.stdout[-2000:]
    text = run("pdftotext", "main.pdf", "-").stdout if shutil.which("pdftotext") else ""
    if text:
        assert "100% of {braces}" in " ".join(text.split()) and "$money$" in text
