"""The paper: LaTeX from a template, numbers and tables from results.json, BibTeX from retrieved papers.

The pipeline builds a `FactSheet` (factsheet.py) for the writer LLM, which cites numbers by macro;
`write_paper` checks its prose (guard.py, fact_checker.py, claims_check.py), repairs what a small model
leaves (repairs.py) and writes paper.tex, references.bib, numbers.json and checks.json; then
`compile_pdf`.
"""

from nanoresearch.paper.compile import CompileResult, compile_pdf
from nanoresearch.paper.guard import escape_prose, guard_citations, guard_macros, guard_numbers, guard_prose
from nanoresearch.paper.numbers import NumberRef, facts_text, macros_tex, number_macros, number_map_json
from nanoresearch.paper.tables import TABLE_LABELS, result_tables
from nanoresearch.paper.template import SECTION_NAMES, Figure, assemble
from nanoresearch.paper.write import PaperFiles, write_paper

__all__ = [
    "SECTION_NAMES",
    "TABLE_LABELS",
    "CompileResult",
    "Figure",
    "NumberRef",
    "PaperFiles",
    "assemble",
    "compile_pdf",
    "escape_prose",
    "facts_text",
    "guard_citations",
    "guard_macros",
    "guard_numbers",
    "guard_prose",
    "macros_tex",
    "number_macros",
    "number_map_json",
    "result_tables",
    "write_paper",
]
