"""references.bib from retrieved papers: valid BibTeX whose text cannot run TeX code.

A paper's own `bibtex` (from a literature source) is used only when it is one entry, its braces
balance and it holds no command but accents and escaped characters; otherwise the entry is rebuilt
from the paper's fields. Either way the key is the paper's key, made safe, and Unicode is mapped to
what pdflatex can typeset.
"""

from __future__ import annotations

import hashlib
import re

from nanoresearch.literature.source import Paper
from nanoresearch.paper.latex import latex_escape, tex_char

_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_:.+/-]")
_ENTRY_HEAD = re.compile(r"\s*@(?P<type>[A-Za-z]+)\s*\{(?P<key>[^,{}]*),")  # the key is replaced anyway
_ENTRY_TYPES = {
    "article", "inproceedings", "conference", "incollection", "book", "inbook", "misc", "techreport",
    "phdthesis", "mastersthesis", "unpublished", "proceedings", "online",
}  # fmt: skip
# What a trusted entry may hold after a backslash: an accent (\"o, \'{e}), an escaped character, a symbol.
_ALLOWED_ESCAPE = re.compile(
    r"\\(?:['`^\"~=.]|[uvHckbdtr](?![A-Za-z])|[&%$#_{}]"
    r"|(?:ss|o|O|aa|AA|ae|AE|oe|OE|l|L|i|j|textbackslash|textasciitilde|textasciicircum"
    r"|textbraceleft|textbraceright|textendash|textemdash)(?![A-Za-z]))"
)
_URL = re.compile(r"https?://[A-Za-z0-9._~:/?=&+@!*,;()-]+")  # no %, # or braces: \url would misread them
_DOI = re.compile(r"10\.[A-Za-z0-9._;()/:-]+")


def bib_key(paper: Paper) -> str:
    """The paper's key as BibTeX accepts it; a title hash when nothing usable is left."""
    key = _KEY_UNSAFE.sub("", paper.key)
    return key or "ref" + hashlib.sha1(paper.title.encode()).hexdigest()[:8]


def _trusted(bibtex: str) -> bool:
    head = _ENTRY_HEAD.match(bibtex)
    if not head or head["type"].lower() not in _ENTRY_TYPES or not bibtex.rstrip().endswith("}"):
        return False
    body = _ALLOWED_ESCAPE.sub("", bibtex)
    if re.search(r"[\\%#$^&_]", body):
        return False
    text = bibtex.rstrip()
    depth = 0
    for char in text[text.index("{") : -1]:  # BibTeX counts escaped braces too
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth <= 0:
            return False  # the entry closes before the end: a second entry or junk follows
    return depth == 1


def _field(name: str, value: str) -> str:
    return f"  {name} = {{{value}}},\n"


def _bib_name(name: str) -> str:
    """An author as BibTeX parses it: 'First Last' or 'Last, First'; anything odder is kept whole in braces."""
    name = latex_escape(name)
    if name.count(",") > 1 or re.search(r"\band\b", name, re.I):
        return "{" + name + "}"
    return name


def _built_entry(paper: Paper, key: str) -> str:
    """A minimal @article (with a venue) or @misc entry from the paper's fields, all of them escaped."""
    kind = "article" if paper.venue.strip() else "misc"
    fields = _field("title", "{" + latex_escape(paper.title) + "}")  # double braces keep its capitals
    if paper.authors:
        fields += _field("author", " and ".join(_bib_name(name) for name in paper.authors))
    if paper.year:
        fields += _field("year", str(paper.year))
    if paper.venue.strip():
        fields += _field("journal", latex_escape(paper.venue))
    if paper.doi and _DOI.fullmatch(paper.doi.strip()):
        fields += _field("doi", paper.doi.strip())
    if paper.url and _URL.fullmatch(paper.url.strip()):
        fields += _field("url", paper.url.strip())
    if paper.arxiv_id:
        fields += _field("note", "arXiv:" + latex_escape(paper.arxiv_id))
    return f"@{kind}{{{key},\n{fields}}}\n"


def bib_entry(paper: Paper, key: str) -> str:
    bibtex = paper.bibtex.strip()
    if bibtex and _trusted(bibtex):
        head = _ENTRY_HEAD.match(bibtex)
        assert head is not None  # _trusted checked it
        entry = f"@{head['type']}{{{key}," + bibtex[head.end() :]
        return "".join(char if char.isascii() else tex_char(char) for char in entry) + "\n"
    return _built_entry(paper, key)


def references_bib(papers: list[Paper]) -> str:
    """One entry per paper, in the given order; a repeated key keeps its first paper (BibTeX stops on duplicates)."""
    entries: dict[str, str] = {}
    for paper in papers:
        key = bib_key(paper)
        entries.setdefault(key, bib_entry(paper, key))
    return "\n".join(entries.values())
