"""The paper page's data: the LaTeX source cut into text and number macros, and results.json as lines.

Each `\\Res...` macro in the source links to its row in numbers.json's map, and that row links to the
line of results.json its JSON pointer names, so any number in the PDF can be traced to the file that
produced it. Everything here is plain text for the template to escape.
"""

from __future__ import annotations

import json
import re

from pydantic import BaseModel, ValidationError

from nanoresearch.paper.numbers import NumberRef
from nanoresearch.store.models import Run
from nanoresearch.web.artifacts import read_json, read_text

PAPER_TEX = "paper/paper.tex"
PAPER_PDF = "paper/paper.pdf"
NUMBERS = "paper/numbers.json"
RESULTS = "results.json"
MACRO = re.compile(r"\\Res[A-Za-z]+")


class Segment(BaseModel):
    text: str
    macro: str | None = None  # set when the text is a number macro that numbers.json knows


class JsonLine(BaseModel):
    pointer: str  # JSON pointer of the value on this line ("" for the document)
    depth: int
    text: str


class PaperView(BaseModel):
    has_pdf: bool
    source: list[Segment]
    numbers: list[NumberRef]
    results: list[JsonLine]


def number_map(run: Run) -> list[NumberRef]:
    data = read_json(run, NUMBERS)
    if not isinstance(data, dict):
        return []
    refs = []
    for macro, entry in data.items():
        try:
            refs.append(NumberRef.model_validate({**entry, "macro": macro}))
        except (ValidationError, TypeError):
            continue  # one bad entry must not hide the others
    return refs


def source_segments(tex: str, known: set[str]) -> list[Segment]:
    """The source cut at each number macro numbers.json knows (a TeX macro name is every letter that follows)."""
    segments, start = [], 0
    for match in MACRO.finditer(tex):
        if match.group() not in known:
            continue
        segments.append(Segment(text=tex[start:match.start()]))
        segments.append(Segment(text=match.group(), macro=match.group()))
        start = match.end()
    segments.append(Segment(text=tex[start:]))
    return [s for s in segments if s.text]


def json_lines(value: object, pointer: str = "", depth: int = 0, key: str = "") -> list[JsonLine]:
    """results.json pretty-printed one value a line, each line knowing its JSON pointer."""
    label = f"{json.dumps(key)}: " if key else ""
    if isinstance(value, dict):
        lines = [JsonLine(pointer=pointer, depth=depth, text=label + "{")]
        for name, item in value.items():
            lines += json_lines(item, f"{pointer}/{_escaped(name)}", depth + 1, name)
        return lines + [JsonLine(pointer=pointer + "#end", depth=depth, text="}")]
    if isinstance(value, list):
        lines = [JsonLine(pointer=pointer, depth=depth, text=label + "[")]
        for index, item in enumerate(value):
            lines += json_lines(item, f"{pointer}/{index}", depth + 1)
        return lines + [JsonLine(pointer=pointer + "#end", depth=depth, text="]")]
    return [JsonLine(pointer=pointer, depth=depth, text=label + json.dumps(value))]


def _escaped(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")  # RFC 6901


def paper_view(run: Run, has_pdf: bool) -> PaperView:
    numbers = number_map(run)
    tex = read_text(run, PAPER_TEX) or ""
    results = read_json(run, RESULTS)
    return PaperView(has_pdf=has_pdf, source=source_segments(tex, {n.macro for n in numbers}), numbers=numbers,
                     results=json_lines(results) if results is not None else [])
