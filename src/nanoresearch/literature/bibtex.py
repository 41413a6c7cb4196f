"""BibTeX for papers: stable keys, valid entries, and escaping so that no text from a paper becomes LaTeX."""

from __future__ import annotations

import re
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Iterable

from nanoresearch.errors import LiteratureError
from nanoresearch.literature.source import Paper
from nanoresearch.literature.text import STOPWORDS, ascii_fold, normalise_title

_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
# Characters a URL may keep as they are; everything else (braces, backslashes, spaces) is percent-encoded.
_URL_SAFE = "-._~:/?#[]@!$&'()*+,;=%"
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_:.+/-]")
_NAME_SUFFIXES = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"})

# Where each entry type keeps the venue.
VENUE_FIELD = {
    "article": "journal",
    "inproceedings": "booktitle",
    "incollection": "booktitle",
    "book": "publisher",
    "techreport": "institution",
    "phdthesis": "school",
    "mastersthesis": "school",
    "misc": "howpublished",
}
_CONFERENCE = re.compile(
    r"proceedings|conference|workshop|symposium|advances in neural information processing"
    r"|\b(?:neurips|nips|icml|iclr|cvpr|iccv|eccv|aaai|ijcai|acl|emnlp|naacl|kdd|uai|aistats|colt|sigir|www)\b",
    re.I,
)
# Journals whose names look like conference proceedings.
_JOURNAL_NAMED_PROCEEDINGS = re.compile(r"proceedings of the (?:ieee|national academy|royal society)|\bpnas\b", re.I)


def escape_latex(text: str) -> str:
    """Plain text as LaTeX that prints it literally; the result never contains a command or unbalanced brace."""
    return "".join(_LATEX_ESCAPES.get(char, char) for char in text)


def escape_url(url: str) -> str:
    # \url reads % and # as comment and parameter characters when the .bbl is input, so they are escaped.
    return urllib.parse.quote(url, safe=_URL_SAFE).replace("%", r"\%").replace("#", r"\#")


def safe_key(key: str) -> str:
    """A key BibTeX accepts: no spaces, braces, commas or quotes."""
    return _KEY_UNSAFE.sub("", key)


def paper_key(paper: Paper) -> str:
    """First author's surname + year + first significant title word, e.g. lecun1998gradient."""
    year = str(paper.year) if paper.year else "nd"
    return f"{_first_author_surname(paper.authors)}{year}{_first_significant_word(paper.title)}"


def _first_author_surname(authors: list[str]) -> str:
    if not authors:
        return "anon"
    name = authors[0].strip()
    if "," in name:  # "LeCun, Yann"
        surname = name.split(",")[0]
    else:  # "Yann LeCun", "Martin Luther King Jr."
        words = [w for w in name.split() if w.lower() not in _NAME_SUFFIXES]
        surname = words[-1] if words else ""
    return re.sub(r"[^a-z]", "", ascii_fold(surname)) or "anon"


def _first_significant_word(title: str) -> str:
    for word in re.findall(r"[a-z0-9]+", ascii_fold(title)):
        if word not in STOPWORDS:
            return word
    return ""


def entry_type(paper: Paper) -> str:
    """The source's type when it knows one; otherwise guessed from the venue."""
    known = paper.entry_type.lower()
    if known:
        return known if known in VENUE_FIELD else "misc"
    venue = paper.venue.strip()
    if not venue or venue.lower().startswith("arxiv"):
        return "misc"
    if _CONFERENCE.search(venue) and not _JOURNAL_NAMED_PROCEEDINGS.search(venue):
        return "inproceedings"
    return "article"


def to_bibtex(paper: Paper) -> str:
    """A BibTeX entry built from the paper's fields only, every field escaped."""
    kind = entry_type(paper)
    fields: list[tuple[str, str]] = []
    if paper.authors:
        fields.append(("author", " and ".join(escape_latex(name) for name in paper.authors)))
    # Inner braces keep the title's capitals (BFGS, SVM) in styles that lowercase titles.
    fields.append(("title", "{" + escape_latex(paper.title) + "}"))
    venue = _venue_text(paper, kind)
    if venue:
        fields.append((VENUE_FIELD[kind], escape_latex(venue)))
    if paper.year:
        fields.append(("year", str(paper.year)))
    if paper.doi:
        fields.append(("doi", escape_url(paper.doi)))
    if paper.arxiv_id:
        fields += [("eprint", escape_latex(paper.arxiv_id)), ("archiveprefix", "arXiv")]
    if paper.url:
        fields.append(("url", escape_url(paper.url)))
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@{kind}{{{safe_key(paper.key) or paper_key(paper)},\n{body}\n}}\n"


def _venue_text(paper: Paper, kind: str) -> str:
    if kind == "misc" and paper.arxiv_id and (not paper.venue or paper.venue.lower().startswith("arxiv")):
        return f"arXiv preprint arXiv:{paper.arxiv_id}"
    return paper.venue


def with_key(paper: Paper, key: str) -> Paper:
    """The same paper under another key, its BibTeX rebuilt to match."""
    renamed = paper.model_copy(update={"key": key})
    return renamed.model_copy(update={"bibtex": to_bibtex(renamed)})


def assign_unique_keys(papers: Iterable[Paper]) -> list[Paper]:
    """Different papers sharing a key get suffixes a, b, ... in order; no suffix may hit a key in use."""
    papers = list(papers)
    counts = Counter(paper.key for paper in papers)
    taken = {key for key, count in counts.items() if count == 1}
    next_suffix: defaultdict[str, int] = defaultdict(int)
    unique: list[Paper] = []
    for paper in papers:
        key = paper.key
        if counts[key] > 1:
            while True:
                candidate = key + _letters(next_suffix[key])
                next_suffix[key] += 1
                if candidate not in taken:
                    break
            key = candidate
        taken.add(key)
        unique.append(paper if key == paper.key else with_key(paper, key))
    return unique


def _letters(index: int) -> str:
    """0 -> a, 25 -> z, 26 -> aa: suffixes never run out."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return letters


def bibliography(papers: Iterable[Paper]) -> str:
    """A .bib file's text. Entries are rebuilt from fields, so a tampered `bibtex` string is never copied."""
    entries: dict[str, Paper] = {}
    for paper in papers:
        seen = entries.get(paper.key)
        if seen is None:
            entries[paper.key] = paper
        elif normalise_title(seen.title) != normalise_title(paper.title):
            raise LiteratureError(
                f"two different papers share the BibTeX key {paper.key!r}: {seen.title!r} and {paper.title!r}",
                hint="run the papers through assign_unique_keys() first",
            )
    return "\n".join(to_bibtex(paper) for paper in entries.values())
