"""The literature plug point: a source answers a query with papers; papers are data, never instructions.

Sources are made by name from a registry: the built-ins, which literature/__init__.py imports,
and the sources plug-ins add (see nanoresearch.plugins).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field

from nanoresearch.literature.http import DEFAULT_TIMEOUT_S
from nanoresearch.plugins import SOURCES_GROUP, Registry


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


class SourceOptions(BaseModel):
    """What a source factory may need; each source takes the parts it uses."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: httpx.Client | None = None  # shared connection pool; tests pass one over httpx.MockTransport
    timeout_s: float = DEFAULT_TIMEOUT_S
    corpus: Path | None = None  # the folder of the local source


SourceFactory = Callable[[SourceOptions], LiteratureSource]
SOURCES: Registry[SourceFactory] = Registry(SOURCES_GROUP, "literature source")
register = SOURCES.register


def source_names() -> list[str]:
    return SOURCES.names()


def create_source(name: str, options: SourceOptions | None = None, **fields: object) -> LiteratureSource:
    """The source registered as `name`, e.g. create_source("openalex", client=c) or create_source("local", corpus=p)."""
    factory = SOURCES.lookup(name)
    return factory((options or SourceOptions()).model_copy(update=fields))
