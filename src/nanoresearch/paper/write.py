"""Write the paper folder: paper.tex, references.bib and numbers.json.

The guarantees hold by construction: prose passes `guard_prose` (no TeX code, no citation of a key
outside the retrieved papers, no undefined macro, no typed number), references.bib holds exactly
the retrieved papers that the guarded text cites, and the tables are drawn from the same macros.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from nanoresearch.literature.source import Paper
from nanoresearch.paper.bibliography import bib_key, references_bib
from nanoresearch.paper.guard import cited_keys, guard_prose
from nanoresearch.paper.latex import latex_escape
from nanoresearch.paper.numbers import NumberRef, number_macros, number_map_json
from nanoresearch.paper.results import Results
from nanoresearch.paper.tables import result_tables
from nanoresearch.paper.template import Figure, assemble

TEX_NAME, BIB_NAME, NUMBERS_NAME = "paper.tex", "references.bib", "numbers.json"


class PaperFiles(BaseModel):
    folder: Path
    tex: Path
    bib: Path
    numbers: Path
    cited_keys: list[str]  # in order of first citation; each has an entry in references.bib
    removed_sentences: list[str]  # prose dropped for a typed number or an undefined macro
    removed_cite_keys: list[str]  # cited keys that are not among the retrieved papers


def allowed_numbers(refs: list[NumberRef], papers: list[Paper]) -> set[str]:
    """What prose may type: the macros' printed values and the papers' years. Not even "95%": prose
    that types it is as likely to claim "95% better" as to name the confidence level the tables state."""
    years = {str(paper.year) for paper in papers if paper.year and 1900 <= paper.year <= 2100}
    return {ref.text for ref in refs} | years


def _cited_papers(papers: list[Paper], keys: list[str]) -> list[Paper]:
    by_key: dict[str, Paper] = {}
    for paper in papers:
        by_key.setdefault(bib_key(paper), paper)  # references_bib keeps the first paper of a repeated key too
    return [by_key[key] for key in keys if key in by_key]


def write_paper(
    folder: Path,
    title: str,
    sections: dict[str, str],
    results: Results,
    papers: list[Paper],
    figures: list[Figure],
    *,
    user: str = "",
) -> PaperFiles:
    """Guard the LLM's sections, then write the paper folder. `figures` paths are relative to `folder`;
    their captions are plain text (LaTeX specials are printed, not interpreted)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    refs = number_macros(results)
    keys = {bib_key(paper) for paper in papers}
    macros = {ref.macro for ref in refs}
    allowed = allowed_numbers(refs, papers)

    guarded = {name: guard_prose(text, keys, macros, allowed) for name, text in sections.items()}
    cited = cited_keys("\n".join(g.text for g in guarded.values()))
    cited_papers = _cited_papers(papers, cited)
    # Captions are written by code from results.json (figures.py): plain text, printed literally.
    captioned = [figure.model_copy(update={"caption": latex_escape(figure.caption)}) for figure in figures]

    clean_sections = {name: g.text for name, g in guarded.items()}
    tex = assemble(title, clean_sections, captioned, result_tables(results, refs), refs, cited_papers, user=user)
    files = PaperFiles(
        folder=folder,
        tex=folder / TEX_NAME,
        bib=folder / BIB_NAME,
        numbers=folder / NUMBERS_NAME,
        cited_keys=cited,
        removed_sentences=[s for g in guarded.values() for s in g.removed_sentences],
        removed_cite_keys=list(dict.fromkeys(k for g in guarded.values() for k in g.removed_keys)),
    )
    files.tex.write_text(tex, encoding="utf-8")
    files.bib.write_text(references_bib(cited_papers), encoding="utf-8")
    files.numbers.write_text(number_map_json(refs), encoding="utf-8")
    return files
