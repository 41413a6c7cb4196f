"""A folder of papers the user already has: BibTeX files, markdown notes and PDFs, searchable offline.

Search ranks with BM25 (SQLite FTS5, in memory) over title and abstract, titles weighted higher.
A file that cannot be read is skipped with a warning naming it; the rest of the corpus still works.

Markdown: optional YAML front matter (title, authors, year, venue, doi, url, arxiv_id, key,
abstract); otherwise the first `# Heading` is the title and the text below it the abstract.
PDF: text of the first page via `pdftotext` (poppler-utils); the title from the PDF's metadata
when it looks like one, else the first line of that text.
"""

from __future__ import annotations

import logging
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import bibtexparser
import yaml
from bibtexparser.middlewares import LatexDecodingMiddleware
from bibtexparser.model import Block, Entry
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from nanoresearch.errors import ConfigError, LiteratureError
from nanoresearch.literature.bibtex import VENUE_FIELD
from nanoresearch.literature.papers import make_paper
from nanoresearch.literature.source import LiteratureSource, Paper, SourceOptions, register
from nanoresearch.literature.text import STOPWORDS, clean_text

log = logging.getLogger(__name__)

MAX_ABSTRACT_CHARS = 4000  # a note's body or a PDF's first page stands in for the abstract
TITLE_WEIGHT = 3.0  # BM25 weight of a title match relative to an abstract match
PDF_TIMEOUT_S = 60
# Metadata titles that name the file or the tool, not the paper.
_JUNK_PDF_TITLE = re.compile(r"^(untitled|microsoft word|title)\b|\.(docx?|pdf|tex|dvi)$", re.I)
# Fields that may hold the venue, by entry type order of preference.
_VENUE_FIELDS = tuple(dict.fromkeys(VENUE_FIELD.values()))


class _BadFile(Exception):
    """A corpus file we cannot turn into papers; the message says why."""


class _FrontMatter(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str | None = None
    authors: list[str] = []
    year: int | None = None
    venue: str | None = None
    doi: str | None = None
    url: str | None = None
    arxiv_id: str | None = None
    key: str | None = None
    abstract: str | None = None

    @field_validator("authors", mode="before")
    @classmethod
    def _one_string_or_a_list(cls, value: object) -> object:
        return split_authors(value) if isinstance(value, str) else value


def split_authors(text: str) -> list[str]:
    """'A. Smith and B. Jones' or 'A. Smith; B. Jones' -> ['A. Smith', 'B. Jones']."""
    return [name.strip() for name in re.split(r"\s+and\s+|;", text) if name.strip()]


def display_name(name: str) -> str:
    """BibTeX's 'LeCun, Yann' (or 'King, Jr., Martin') -> 'Yann LeCun' ('Martin King Jr.')."""
    parts = [part.strip() for part in name.split(",")]
    if len(parts) == 2:
        return f"{parts[1]} {parts[0]}".strip()
    if len(parts) == 3:
        return f"{parts[2]} {parts[0]} {parts[1]}".strip()
    return name.strip()


class LocalCorpus:
    name = "local"

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise LiteratureError(
                f"the corpus folder {self.folder} does not exist",
                hint="pass a folder of .bib, .md or .pdf files (e.g. examples/corpus)",
            )
        self.skipped: list[str] = []  # "file: reason" for every file that was left out
        self.papers = self._load()
        self._index = _build_index(self.papers)

    def search(self, query: str, limit: int = 10) -> list[Paper]:
        expression = match_expression(query)
        if not expression or limit < 1:
            return []
        rows = self._index.execute(
            "SELECT rowid FROM papers WHERE papers MATCH ? ORDER BY bm25(papers, ?, 1.0), rowid LIMIT ?",
            (expression, TITLE_WEIGHT, limit),
        ).fetchall()
        return [self.papers[rowid - 1] for (rowid,) in rows]

    def _load(self) -> list[Paper]:
        papers: list[Paper] = []
        for path in sorted(p for p in self.folder.rglob("*") if p.is_file() and not _hidden(p, self.folder)):
            reader = _READERS.get(path.suffix.lower())
            if reader is None or path.name.lower() == "readme.md":  # a README describes the folder, it is no paper
                continue
            try:
                papers.extend(reader(self, path))
            except _BadFile as exc:
                self._skip(path, str(exc))
            except (OSError, UnicodeDecodeError) as exc:
                self._skip(path, f"cannot read it ({exc})")
        return papers

    def _skip(self, path: Path, reason: str) -> None:
        self.skipped.append(f"{path}: {reason}")
        log.warning("literature corpus: skipping %s: %s", path, reason)

    def _read_bib(self, path: Path) -> list[Paper]:
        library = bibtexparser.parse_string(
            path.read_text(encoding="utf-8"), append_middleware=[LatexDecodingMiddleware()]
        )
        for block in library.failed_blocks:
            self._skip(path, f"entry at line {_line_number(block)} is not valid BibTeX ({_first_line(block.error)})")
        papers = []
        for entry in library.entries:
            try:
                papers.append(_paper_from_entry(entry))
            except _BadFile as exc:
                self._skip(path, f"entry {entry.key!r}: {exc}")
        if not library.entries and not library.failed_blocks:
            raise _BadFile("no BibTeX entries in it")
        return papers

    def _read_markdown(self, path: Path) -> list[Paper]:
        meta, body = _split_front_matter(path.read_text(encoding="utf-8"))
        heading = re.search(r"^#\s+(.+)$", body, re.M)
        title = meta.title or (heading.group(1) if heading else "")
        if not title.strip():
            raise _BadFile("no title: add front matter with `title:` or a `# Title` line")
        repeats_title = heading is not None and clean_text(heading.group(1)) == clean_text(title)
        text = body[heading.end():] if heading and repeats_title else body
        abstract = meta.abstract or re.sub(r"^#+\s*", "", text, flags=re.M)
        return [
            make_paper(
                source=self.name, title=title, authors=meta.authors, year=meta.year,
                abstract=abstract[:MAX_ABSTRACT_CHARS], venue=meta.venue, doi=meta.doi, url=meta.url,
                arxiv_id=meta.arxiv_id, key=meta.key,
            )
        ]

    def _read_pdf(self, path: Path) -> list[Paper]:
        if shutil.which("pdftotext") is None:
            raise _BadFile("pdftotext is not installed (apt-get install poppler-utils)")
        first_page = _run(["pdftotext", "-f", "1", "-l", "1", "-enc", "UTF-8", str(path), "-"])
        lines = [line.strip() for line in first_page.splitlines() if line.strip()]
        if not lines:
            raise _BadFile("no text on its first page (a scanned image?)")
        info = _pdf_info(path)
        metadata_title = info.get("Title", "")
        has_title = bool(metadata_title) and not _JUNK_PDF_TITLE.search(metadata_title)
        title = metadata_title if has_title else lines[0]
        body = "\n".join(lines if has_title else lines[1:])
        after_abstract = re.split(r"^abstract\b[:.\s]*", body, maxsplit=1, flags=re.I | re.M)
        return [
            make_paper(
                source=self.name, title=title, authors=split_authors(info.get("Author", "").replace(",", ";")),
                abstract=after_abstract[-1][:MAX_ABSTRACT_CHARS],
            )
        ]


_READERS = {".bib": LocalCorpus._read_bib, ".md": LocalCorpus._read_markdown, ".pdf": LocalCorpus._read_pdf}


def _hidden(path: Path, folder: Path) -> bool:
    # Editors and tools keep copies in dot folders (.ipynb_checkpoints, .git); they are not the user's papers.
    return any(part.startswith(".") for part in path.relative_to(folder).parts)


def _paper_from_entry(entry: Entry) -> Paper:
    fields = {name.lower(): str(field.value) for name, field in entry.fields_dict.items()}
    if not fields.get("title", "").strip():
        raise _BadFile("it has no title")
    year = re.search(r"\d{4}", fields.get("year", ""))
    return make_paper(
        source="local",
        title=_drop_braces(fields["title"]),
        authors=[display_name(_drop_braces(name)) for name in split_authors(fields.get("author", ""))],
        year=int(year.group()) if year else None,
        abstract=_drop_braces(fields.get("abstract", "")),
        venue=_drop_braces(next((fields[f] for f in _VENUE_FIELDS if fields.get(f)), "")),
        doi=fields.get("doi"),
        url=fields.get("url"),
        arxiv_id=fields.get("eprint") if fields.get("archiveprefix", "").lower() == "arxiv" else None,
        key=entry.key,
        entry_type=entry.entry_type,
    )


def _drop_braces(text: str) -> str:
    # Case-protecting braces ({B}ayesian) are markup, not text; LaTeX commands were decoded on parsing.
    return text.replace("{", "").replace("}", "")


def _split_front_matter(text: str) -> tuple[_FrontMatter, str]:
    match = re.match(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", text, re.S)
    if not match:
        return _FrontMatter(), text
    try:
        data = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise _BadFile(f"its front matter is not valid YAML ({_first_line(exc)})") from None
    if not isinstance(data, dict):
        raise _BadFile("its front matter is not a mapping of fields")
    try:
        meta = _FrontMatter.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _BadFile(f"front matter field {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    return meta, text[match.end():]


def _run(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PDF_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise _BadFile(f"{command[0]} took more than {PDF_TIMEOUT_S} s") from None
    if done.returncode != 0:
        raise _BadFile(f"{command[0]} cannot read it: {_first_line(done.stderr) or f'exit code {done.returncode}'}")
    return done.stdout


def _pdf_info(path: Path) -> dict[str, str]:
    """The PDF's document information (Title, Author, ...); empty when pdfinfo is missing."""
    if shutil.which("pdfinfo") is None:
        return {}
    info = {}
    for line in _run(["pdfinfo", "-enc", "UTF-8", str(path)]).splitlines():
        name, _, value = line.partition(":")
        info[name.strip()] = clean_text(value)
    return info


def _line_number(block: Block) -> str:
    """The block's 1-based line in its file (bibtexparser counts from 0 and may not know it)."""
    return "?" if block.start_line is None else str(block.start_line + 1)


def _first_line(message: object) -> str:
    lines = str(message).strip().splitlines()
    return lines[0] if lines else ""


def match_expression(query: str) -> str:
    """An FTS5 MATCH for any of the query's words; each is quoted, so no word is read as FTS5 syntax."""
    words = dict.fromkeys(w for w in re.findall(r"\w+", query.lower()) if w not in STOPWORDS)
    return " OR ".join(f'"{word}"' for word in words)


def _build_index(papers: list[Paper]) -> sqlite3.Connection:
    index = sqlite3.connect(":memory:", check_same_thread=False)
    index.execute("CREATE VIRTUAL TABLE papers USING fts5(title, abstract, tokenize='porter unicode61 remove_diacritics 2')")
    index.executemany(
        "INSERT INTO papers(rowid, title, abstract) VALUES (?, ?, ?)",
        [(rowid, paper.title, paper.abstract) for rowid, paper in enumerate(papers, start=1)],
    )
    return index


@register("local")
def _local(options: SourceOptions) -> LiteratureSource:
    if options.corpus is None:
        raise ConfigError("the local literature source needs a corpus folder", hint="pass corpus=<folder>")
    return LocalCorpus(options.corpus)
