"""Write the paper folder: paper.tex, references.bib, numbers.json and checks.json.

The guarantees hold by construction: prose passes `guard_prose` (no TeX code, no citation of a key
outside the retrieved papers, no undefined macro, no typed number), the fact checker (no dataset,
model family or size the fact sheet does not hold) and the claims check (no improvement that
results.json does not show); references.bib holds exactly the retrieved papers that the checked
text cites, and the tables are drawn from the same macros. Markdown, a sentence cut off at the token
limit, a section left empty and a related work that cites nothing are repaired, and every removal
and repair is listed in checks.json.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from nanoresearch.literature.source import Paper
from nanoresearch.paper.bibliography import bib_key, references_bib
from nanoresearch.paper.checks import PaperChecks, Removal, Repair
from nanoresearch.paper.claims_check import ClaimContext, check_claims, claim_context
from nanoresearch.paper.fact_checker import FactContext, check_facts
from nanoresearch.paper.factsheet import FactSheet
from nanoresearch.paper.guard import cited_keys, escape_prose, guard_citations, guard_macros, guard_numbers
from nanoresearch.paper.latex import latex_escape
from nanoresearch.paper.numbers import NumberRef, number_macros, number_map_json
from nanoresearch.paper.repairs import (
    EMPTY_NOTE,
    cite_mentioned_papers,
    markdown_to_latex,
    retrieved_papers_paragraph,
    trim_unfinished,
)
from nanoresearch.paper.results import Results
from nanoresearch.paper.tables import result_tables
from nanoresearch.paper.template import Figure, assemble

TEX_NAME, BIB_NAME, NUMBERS_NAME, CHECKS_NAME = "paper.tex", "references.bib", "numbers.json", "checks.json"
RELATED_WORK = "related_work"


class PaperFiles(BaseModel):
    folder: Path
    tex: Path
    bib: Path
    numbers: Path
    checks_file: Path
    cited_keys: list[str]  # in order of first citation; each has an entry in references.bib
    removed_sentences: list[str]  # prose dropped by the guard, the fact checker or the claims check
    removed_cite_keys: list[str]  # cited keys that are not among the retrieved papers
    checks: PaperChecks


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


class ProseContext(BaseModel):
    """What a section's prose may use and state."""

    keys: set[str]  # cite keys of the retrieved papers
    macros: set[str]  # the \Res... macros defined from results.json
    numbers: set[str]  # numbers prose may type (allowed_numbers)
    facts: FactContext | None  # None: no fact sheet, no fact check
    claims: ClaimContext


class CheckedSection(BaseModel):
    text: str
    removed: list[Removal] = []
    removed_keys: list[str] = []
    repairs: list[Repair] = []


def prose_context(results: Results, papers: list[Paper], sheet: FactSheet | None) -> ProseContext:
    refs = number_macros(results)
    numbers = allowed_numbers(refs, papers) | (sheet.size_numbers() | sheet.setting_texts() if sheet else set())
    facts = None
    if sheet is not None:
        claims_by_paper: dict[str, list[str]] = {}
        for claim in sheet.claims:
            claims_by_paper.setdefault(claim.paper, []).append(f"{claim.claim} {claim.quote}")
        texts = {bib_key(p): "\n".join([p.title, p.abstract, *claims_by_paper.get(p.key, [])]) for p in papers}
        facts = FactContext(
            sheet=sheet.text(model_words=False),
            sizes={str(size.count) for size in sheet.sizes},
            knobs=sheet.knob_values(),
            papers=texts,
            crashed=any(trial.failure for trial in sheet.trials),
        )
    return ProseContext(
        keys={bib_key(paper) for paper in papers},
        macros={ref.macro for ref in refs},
        numbers=numbers,
        facts=facts,
        claims=claim_context(results, refs),
    )


def check_section(name: str, text: str, context: ProseContext) -> CheckedSection:
    """One section of LLM prose made safe and true to the sheet, with what was removed and repaired."""
    text, markdown = markdown_to_latex(text)
    repairs = [Repair(section=name, kind="markdown", detail=change) for change in markdown]
    text, fragment = trim_unfinished(text)
    if fragment is not None:
        repairs.append(Repair(section=name, kind="cut_off", detail=f"ended mid-sentence; dropped: {fragment[:200]}"))
    # guard_prose's order (escaping first, so every check sees the text as LaTeX will), with the fact
    # and claims checks before the number guard, so that "a CNN on 60,000 images" is removed for the CNN.
    text, removed_keys = guard_citations(escape_prose(text), context.keys)
    text, for_macros = guard_macros(text, context.macros)
    removed = [Removal(section=name, check="guard", sentence=s, reason="uses a \\Res macro results.json does not define")
               for s in for_macros]  # fmt: skip
    if context.facts is not None:
        text, unsupported = check_facts(text, context.facts)
        removed += [Removal(section=name, check="facts", sentence=s, reason=why) for s, why in unsupported]
    text, unbacked = check_claims(text, context.claims)
    removed += [Removal(section=name, check="claims", sentence=s, reason=why) for s, why in unbacked]
    text, for_numbers = guard_numbers(text, context.numbers)
    reason = "types a number that is neither a result macro's value nor on the fact sheet"
    removed += [Removal(section=name, check="guard", sentence=s, reason=reason) for s in for_numbers]
    return CheckedSection(text=text, removed=removed, removed_keys=removed_keys, repairs=repairs)


def repair_related_work(sections: dict[str, CheckedSection], papers: list[Paper]) -> None:
    """The related work cites the retrieved papers it names; when the paper would cite none at all,
    it lists them, so that a paper written from eight retrieved papers never has an empty bibliography."""
    related = sections.get(RELATED_WORK)
    if related is None or not papers:
        return
    related.text, added = cite_mentioned_papers(related.text, papers)
    if added:
        detail = f"cited the papers it names: {', '.join(added)}"
        related.repairs.append(Repair(section=RELATED_WORK, kind="bibliography", detail=detail))
    if not any(cited_keys(section.text) for section in sections.values()):
        related.text = (related.text + "\n\n" + retrieved_papers_paragraph(papers)).strip()
        detail = f"no retrieved paper was cited: listed all {len(papers)}"
        related.repairs.append(Repair(section=RELATED_WORK, kind="bibliography", detail=detail))


def fill_empty(name: str, section: CheckedSection) -> None:
    """A section left without text says so in the paper, instead of compiling as a bare heading."""
    if not section.text.strip():
        section.text = EMPTY_NOTE
        section.repairs.append(Repair(section=name, kind="empty_section", detail="no text left after the checks"))


def write_paper(
    folder: Path,
    title: str,
    sections: dict[str, str],
    results: Results,
    papers: list[Paper],
    figures: list[Figure],
    *,
    user: str = "",
    sheet: FactSheet | None = None,
) -> PaperFiles:
    """Check the LLM's sections, then write the paper folder. `figures` paths are relative to `folder`;
    their captions are plain text (LaTeX specials are printed, not interpreted). Without a fact sheet
    there is no fact check; everything else runs."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    refs = number_macros(results)
    context = prose_context(results, papers, sheet)
    checked = {name: check_section(name, text, context) for name, text in sections.items()}
    repair_related_work(checked, papers)
    for name, section in checked.items():
        fill_empty(name, section)
    cited = cited_keys("\n".join(section.text for section in checked.values()))
    cited_papers = _cited_papers(papers, cited)
    # Captions are written by code from results.json (figures.py): plain text, printed literally.
    captioned = [figure.model_copy(update={"caption": latex_escape(figure.caption)}) for figure in figures]

    clean_sections = {name: section.text for name, section in checked.items()}
    tex = assemble(title, clean_sections, captioned, result_tables(results, refs), refs, cited_papers, user=user)
    checks = PaperChecks(
        removed=[removal for section in checked.values() for removal in section.removed],
        removed_cite_keys=list(dict.fromkeys(k for section in checked.values() for k in section.removed_keys)),
        repairs=[repair for section in checked.values() for repair in section.repairs],
    )
    files = PaperFiles(
        folder=folder,
        tex=folder / TEX_NAME,
        bib=folder / BIB_NAME,
        numbers=folder / NUMBERS_NAME,
        checks_file=folder / CHECKS_NAME,
        cited_keys=cited,
        removed_sentences=[removal.sentence for removal in checks.removed],
        removed_cite_keys=checks.removed_cite_keys,
        checks=checks,
    )
    files.tex.write_text(tex, encoding="utf-8")
    files.bib.write_text(references_bib(cited_papers), encoding="utf-8")
    files.numbers.write_text(number_map_json(refs), encoding="utf-8")
    files.checks_file.write_text(checks.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return files
