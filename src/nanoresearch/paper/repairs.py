"""Repairs of what a small model leaves in a section: Markdown, a sentence cut off at the token limit,
a section the checks emptied, a related work that cites none of the papers it was given.

Each repair returns what it did, so `write_paper` records it in checks.json: nothing is compiled
silently.
"""

from __future__ import annotations

import re

from nanoresearch.literature.source import Paper
from nanoresearch.paper.bibliography import bib_key
from nanoresearch.paper.guard import cited_keys, split_sentences
from nanoresearch.paper.latex import latex_escape

EMPTY_NOTE = "\\emph{(No text of this section passed the paper's checks: checks.json lists what was removed and why.)}"
_HEADING = re.compile(r"[ \t]*#{1,6}[ \t]+(?P<title>.*?)[ \t#]*")
# A line of nothing but a few bold words ("**Abstract**", "**Why it matters:**") is a heading too.
_BOLD_HEADING = re.compile(r"[ \t]*\*\*(?P<title>[^*\n]+?):?\*\*:?[ \t]*")
# "... as shown. ## Contributions We propose ...": a heading the model ran into its prose.
_INLINE_HEADING = re.compile(r"(?<=[.!?:])[ \t]+#{1,6}[ \t]+")
# The title is the capitalised words before the one that starts the next sentence ("Related Work Prior studies").
_TITLE_THEN_PROSE = re.compile(r"(?P<title>(?:[A-Z][\w-]*[ \t]+){1,5}?)(?P<prose>[A-Z][\w-]*[ \t]+[a-z].*)")
MAX_TITLE_WORDS = 6
MIN_REPEAT_WORDS = 8  # shorter repeats ("See Table 1.") may be meant
_BULLET = re.compile(r"[ \t]*(?:[-*+•]|\d{1,2}[.)])[ \t]+(?P<item>\S.*)")
_FENCE = re.compile(r"[ \t]*(?:```|~~~)")
_BOLD = re.compile(r"\*\*(?=\S)(?P<text>[^*\n]+?)(?<=\S)\*\*|__(?=\S)(?P<under>[^_\n]+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![*\w\\])\*(?=[^\s*])(?P<text>[^*\n]+?)(?<=[^\s*])\*(?![*\w])")
_CODE = re.compile(r"`(?P<text>[^`\n]+)`")
# A full stop, or a citation after one ("... as shown before. \\cite{x}"): the unknown key is the guard's to drop.
_FINISHED = re.compile(r"(?:[.!?]|\\cite\w*\*?(?:\[[^\]]*\])*\{[^{}]*\})[\s)\]}\"'”’]*$")


# ---------------------------------------------------------------- Markdown


def markdown_to_latex(text: str) -> tuple[str, list[str]]:
    """Markdown turned into the LaTeX the guard keeps; (text, what was changed).

    A paragraph written twice goes. A heading (or a line of only a few bold words) before any prose
    repeats the section's own heading and goes; a later one becomes a \\subsection. A bullet list becomes running sentences, a fenced code block goes (a paper's
    prose holds no code), **bold**, *emphasis* and `code` become \\textbf, \\emph and plain text."""
    lines, repeats = _without_repeats([part for whole in text.splitlines() for part in _split_inline_headings(whole)])
    lines, changes = _block_markdown(lines)
    changes = repeats + changes
    text = "\n".join(lines)
    for pattern, replacement, name in (
        (_BOLD, lambda m: "\\textbf{" + (m["text"] or m["under"]) + "}", "bold"),
        (_ITALIC, lambda m: "\\emph{" + m["text"] + "}", "emphasis"),
        (_CODE, lambda m: m["text"], "inline code"),
    ):
        text, count = pattern.subn(replacement, text)
        if count:
            changes.append(f"{count} Markdown {name} mark(s) converted")
    return text, changes


def _without_repeats(lines: list[str]) -> tuple[list[str], list[str]]:
    """A paragraph the model already wrote in this section goes (a small model loops, writing its
    section twice over), and a heading over nothing but such paragraphs goes with them."""
    runs = [(lines[start:end], _kind(lines[start])) for start, end in _runs(lines)]
    seen: set[str] = set()
    repeated: set[int] = set()
    for index, (block, kind) in enumerate(runs):
        key = " ".join(" ".join(block).split()).casefold()
        if kind == "prose" and len(key.split()) >= MIN_REPEAT_WORDS and key in seen:
            repeated.add(index)
        seen.add(key)
    changes = [f"a paragraph written twice removed: {' '.join(runs[i][0])[:80]}" for i in sorted(repeated)]
    for index, (block, kind) in enumerate(runs):
        under = [i for i in range(index + 1, _next_heading(runs, index)) if runs[i][1] == "prose"]
        if kind == "heading" and under and set(under) <= repeated:
            repeated.add(index)
            changes.append(f"a heading over only repeated text removed: {block[0].strip()}")
    return [line for index, (block, _) in enumerate(runs) if index not in repeated for line in block], changes


def _kind(line: str) -> str:
    return "heading" if _heading(line) else ("blank" if not line.strip() else "prose")


def _heading(line: str) -> re.Match[str] | None:
    bold = _BOLD_HEADING.fullmatch(line)
    return _HEADING.fullmatch(line) or (bold if bold and len(bold["title"].split()) <= MAX_TITLE_WORDS else None)


def _runs(lines: list[str]) -> list[tuple[int, int]]:
    """The lines split into runs of one kind: a heading line alone, blank lines, a paragraph of prose."""
    starts = [i for i, line in enumerate(lines) if i == 0 or _kind(line) == "heading" or _kind(line) != _kind(lines[i - 1])]
    return list(zip(starts, [*starts[1:], len(lines)], strict=True)) if lines else []


def _next_heading(runs: list[tuple[list[str], str]], index: int) -> int:
    return next((i for i in range(index + 1, len(runs)) if runs[i][1] == "heading"), len(runs))


def _block_markdown(lines: list[str]) -> tuple[list[str], list[str]]:
    out: list[str] = []
    changes: list[str] = []
    items: list[str] = []
    in_code = False
    for line in lines:
        if _FENCE.match(line):
            if not in_code:
                changes.append("a Markdown code block removed")
            in_code = not in_code
            continue
        bullet = _BULLET.fullmatch(line)
        if in_code or bullet:
            items += [_as_sentence(bullet["item"])] if bullet and not in_code else []
            continue
        if items:
            out.append(" ".join(items))
            changes.append(f"a Markdown list of {len(items)} item(s) written as sentences")
            items = []
        heading = _heading(line)
        if heading:
            prose_before = any(previous.strip() for previous in out)
            out += [f"\n\\subsection{{{heading['title']}}}\n"] if prose_before else []
            changes.append(f"Markdown heading '{line.strip()}' " + ("made a subsection" if prose_before else "removed"))
            continue
        out.append(line)
    if items:
        out.append(" ".join(items))
        changes.append(f"a Markdown list of {len(items)} item(s) written as sentences")
    return out, changes


def _split_inline_headings(line: str) -> list[str]:
    """A heading run into a line of prose put on its own line, the prose after it on the next."""
    first, *headed = _INLINE_HEADING.split(line)
    parts = [first]
    for rest in headed:
        if len(rest.split()) <= MAX_TITLE_WORDS and not _FINISHED.search(rest):
            parts.append(f"## {rest}")
            continue
        split = _TITLE_THEN_PROSE.fullmatch(rest)
        parts += [f"## {split['title'].strip()}", split["prose"]] if split else [rest]
    return parts


def _as_sentence(item: str) -> str:
    item = item.strip()
    return item if _FINISHED.search(item) else item.rstrip(",;:") + "."


# ---------------------------------------------------------------- cut off


def trim_unfinished(text: str) -> tuple[str, str | None]:
    """The text up to its last full sentence, and the unfinished fragment dropped (None when it ends well)."""
    stripped = text.rstrip()
    if not stripped or _FINISHED.search(stripped):
        return text, None
    sentences = split_sentences(stripped)
    fragment = sentences[-1][0]
    return "".join(sentence + gap for sentence, gap in sentences[:-1]).rstrip(), fragment.strip()


# ---------------------------------------------------------------- bibliography


def _surname(author: str) -> str:
    """'Yann LeCun' -> 'LeCun', 'Srivastava, Nitish' -> 'Srivastava'."""
    name = author.split(",")[0] if "," in author else (author.split() or [""])[-1]
    return name.strip()


def _mentioned(paper: Paper, sentence: str) -> bool:
    surname = _surname(paper.authors[0]) if paper.authors else ""
    if len(surname) >= 3 and re.search(rf"\b{re.escape(surname)}\b", sentence):
        return True
    title = " ".join(paper.title.split())
    return len(title) >= 12 and title.lower() in " ".join(sentence.split()).lower()


def cite_mentioned_papers(text: str, papers: list[Paper]) -> tuple[str, list[str]]:
    """Add \\citep to each sentence without a citation that names a retrieved paper (its first author's
    surname or its title); (text, the keys added)."""
    added: list[str] = []
    out: list[str] = []
    for sentence, gap in split_sentences(text):
        keys = [] if cited_keys(sentence) else [bib_key(p) for p in papers if _mentioned(p, sentence)]
        keys = list(dict.fromkeys(keys))
        if keys:
            added += keys
            end = re.search(r"[.!?]?[\s)\]}\"'”’]*$", sentence)
            cut = end.start() if end else len(sentence)
            sentence = f"{sentence[:cut]}~\\citep{{{','.join(keys)}}}{sentence[cut:]}"
        out.append(sentence + gap)
    return "".join(out), list(dict.fromkeys(added))


def retrieved_papers_paragraph(papers: list[Paper]) -> str:
    """A sentence written by code that cites every retrieved paper by its title."""
    listed = "; ".join(f"{latex_escape(p.title)}~\\citep{{{bib_key(p)}}}" for p in papers)
    return f"This study draws on the work its literature search retrieved: {listed}."
