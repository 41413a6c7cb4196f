"""Making papers from source fields, and merging the copies of one paper that several sources return."""

from __future__ import annotations

from collections.abc import Iterable

from nanoresearch.literature.bibtex import assign_unique_keys, paper_key, safe_key, to_bibtex
from nanoresearch.literature.source import Paper
from nanoresearch.literature.text import (
    arxiv_id_from_doi,
    clean_text,
    normalise_arxiv_id,
    normalise_doi,
    normalise_title,
)

# Fields a later copy of a paper may fill in when the first copy lacks them.
_GAP_FIELDS = ("authors", "year", "abstract", "venue", "doi", "url", "arxiv_id", "entry_type")


def make_paper(
    *,
    source: str,
    title: str,
    authors: Iterable[str] = (),
    year: int | None = None,
    abstract: str | None = None,
    venue: str | None = None,
    doi: str | None = None,
    url: str | None = None,
    arxiv_id: str | None = None,
    key: str | None = None,
    entry_type: str = "",
) -> Paper:
    """The one way sources build a Paper: text cleaned, identifiers normalised, key and BibTeX filled in."""
    bare_doi = normalise_doi(doi)
    paper = Paper(
        key="",
        title=clean_text(title),
        authors=[name for name in (clean_text(a) for a in authors) if name],
        year=year,
        abstract=clean_text(abstract),
        venue=clean_text(venue),
        doi=bare_doi,
        url=url.strip() if url and url.strip().startswith(("http://", "https://")) else None,
        arxiv_id=normalise_arxiv_id(arxiv_id) or arxiv_id_from_doi(bare_doi),
        source=source,
        entry_type=entry_type.lower(),
    )
    paper.key = safe_key(key or "") or paper_key(paper)
    paper.bibtex = to_bibtex(paper)
    return paper


def identities(paper: Paper) -> list[str]:
    """Every identifier that marks two records as the same paper: DOI, arXiv id, normalised title."""
    found = []
    if paper.doi:
        found.append(f"doi:{paper.doi.lower()}")
    if paper.arxiv_id:
        found.append(f"arxiv:{paper.arxiv_id.lower()}")
    title = normalise_title(paper.title)
    if title:
        found.append(f"title:{title}")
    return found


def merge_duplicates(papers: Iterable[Paper]) -> list[Paper]:
    """One paper per identity, in order of first appearance; later copies fill the first copy's gaps."""
    merged: list[Paper] = []
    index_of: dict[str, int] = {}
    for paper in papers:
        ids = identities(paper)
        position = next((index_of[i] for i in ids if i in index_of), None)
        if position is None:
            position = len(merged)
            merged.append(paper)
        else:
            merged[position] = _fill_gaps(merged[position], paper)
        for identity in identities(merged[position]) + ids:
            index_of.setdefault(identity, position)
    return merged


def _fill_gaps(kept: Paper, other: Paper) -> Paper:
    updates = {name: getattr(other, name) for name in _GAP_FIELDS if not getattr(kept, name) and getattr(other, name)}
    if not updates:
        return kept
    filled = kept.model_copy(update=updates)
    return filled.model_copy(update={"bibtex": to_bibtex(filled)})


def finalise(papers: Iterable[Paper]) -> list[Paper]:
    """Duplicates merged, then every remaining paper given a key no other paper has."""
    return assign_unique_keys(merge_duplicates(papers))
