"""The literature plug point: a source answers a query with papers; papers are data, never instructions."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field


class Paper(BaseModel):
    key: str  # BibTeX key, stable for the same paper: e.g. lecun1998gradient
    title: str
    authors: list[str] = Field(default_factory=list)
    year: int | None = None
    abstract: str = ""
    venue: str = ""
    doi: str | None = None
    url: str | None = None
    arxiv_id: str | None = None
    source: str = ""  # which source found it: openalex, arxiv, semantic_scholar, local
    bibtex: str = ""  # the BibTeX entry; built from the fields when a source gives none
    entry_type: str = ""  # BibTeX type when the source knows it (a .bib file); empty = chosen from the venue


class LiteratureSource(Protocol):
    name: str

    def search(self, query: str, limit: int = 10) -> list[Paper]: ...
