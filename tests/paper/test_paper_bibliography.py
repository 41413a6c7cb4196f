"""references.bib: a paper's own BibTeX only when it is harmless, otherwise an entry built from its fields."""

from __future__ import annotations

import re

from nanoresearch.literature.source import Paper
from nanoresearch.paper.bibliography import bib_entry, bib_key, references_bib


def test_entry_is_built_from_fields_with_everything_escaped() -> None:
    paper = Paper(
        key="evil2024",
        title="Attention {is} all_you_need \\input{/etc/passwd} 100% & more α",
        authors=["Ada Lovelace", "Grace O'Hopper", "Smith, Jr., John", "Tom and Jerry"],
        year=2024,
        venue="NeurIPS #37",
        doi="10.1000/abc_def",
        url="https://example.org/a%20b",  # % would be read as a comment in the .bbl
    )

    entry = bib_entry(paper, bib_key(paper))

    assert entry.startswith("@article{evil2024,\n")
    assert "\\input" not in entry
    assert "title = {{Attention \\textbraceleft{}is\\textbraceright{} all\\_you\\_need \\textbackslash{}input" in entry
    assert "100\\% \\& more \\ensuremath{\\alpha}}}" in entry
    assert "author = {Ada Lovelace and Grace O'Hopper and {Smith, Jr., John} and {Tom and Jerry}}" in entry
    assert "journal = {NeurIPS \\#37}" in entry
    assert "doi = {10.1000/abc_def}" in entry
    assert "url" not in entry
    assert entry.count("{") == entry.count("}")


def test_a_harmless_source_entry_is_kept_with_our_key() -> None:
    bibtex = '@inproceedings{Some:Key 1,\n  title = {Deep Residual Learning},\n  author = {He, Kaiming and Sch\\"olkopf, B.},\n  booktitle = {CVPR},\n  pages = {770--778},\n  year = {2016}\n}'  # noqa: E501
    paper = Paper(key="he2016deep", title="Deep Residual Learning", bibtex=bibtex)

    entry = bib_entry(paper, bib_key(paper))

    assert entry.startswith("@inproceedings{he2016deep,\n  title = {Deep Residual Learning}")
    assert "pages = {770--778}" in entry


def test_source_entries_that_could_run_tex_are_rebuilt() -> None:
    for bibtex in [
        "@article{x, title = {\\input{/etc/passwd}}, year = {2020}}",
        "@article{x, title = {A}, year = {2020}}\n@article{y, title = {B}}",
        "@article{x, title = {unbalanced {brace}, year = {2020}}",
        "@article{x, title = {50% off}, year = {2020}}",
        "@string{foo = {bar}}",
        "not bibtex at all",
    ]:
        paper = Paper(key="x2020", title="Safe Title", year=2020, bibtex=bibtex)
        entry = bib_entry(paper, "x2020")
        assert entry == "@misc{x2020,\n  title = {{Safe Title}},\n  year = {2020},\n}\n", bibtex


def test_keys_are_made_safe_and_repeated_keys_keep_their_first_paper() -> None:
    papers = [
        Paper(key="bad key{1},", title="First"),
        Paper(key="badkey1", title="Second"),
        Paper(key="{}", title="No usable key"),
    ]

    bib = references_bib(papers)

    keys = re.findall(r"^@\w+\{([^,]+),", bib, re.M)
    assert keys[0] == "badkey1" and len(keys) == 2
    assert keys[1].startswith("ref")
    assert "First" in bib and "Second" not in bib
