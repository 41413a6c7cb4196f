"""The paper: LaTeX from a template, numbers and tables from results.json, BibTeX from retrieved papers.

The pipeline calls `write_paper` (guards the LLM's prose and writes paper.tex, references.bib,
numbers.json) and then `compile_pdf`. The writer LLM is shown `facts_text(number_macros(results))`
and cites numbers by macro.
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
