"""Semantic Scholar Graph API paper search (https://api.semanticscholar.org/graph/v1/paper/search).

Works without a key on a shared, often exhausted rate limit; `SEMANTIC_SCHOLAR_API_KEY` is sent in
the x-api-key header when set.
"""

from __future__ import annotations

import os

import httpx
from pydantic import BaseModel, Field

from nanoresearch.literature.http import DEFAULT_TIMEOUT_S, get, new_client, parse_model, read_json
from nanoresearch.literature.papers import make_paper
from nanoresearch.literature.source import Paper, SourceOptions, register

BASE_URL = "https://api.semanticscholar.org/graph/v1"
MAX_LIMIT = 100
FIELDS = "title,authors,year,abstract,venue,externalIds,url,publicationTypes"


class _Author(BaseModel):
    name: str | None = None


class _Paper(BaseModel):
    paper_id: str = Field(alias="paperId")
    title: str | None = None
    abstract: str | None = None
    year: int | None = None
    venue: str | None = None
    url: str | None = None
    external_ids: dict[str, str | int] | None = Field(default=None, alias="externalIds")
    authors: list[_Author] = []
    publication_types: list[str] | None = Field(default=None, alias="publicationTypes")


class _SearchPage(BaseModel):
    total: int
    data: list[_Paper] = []  # absent when nothing matched


class SemanticScholarSource:
    name = "semantic_scholar"

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        api_key: str | None = None,
        base_url: str = BASE_URL,
    ) -> None:
        self._client = client or new_client()
        self._timeout_s = timeout_s
        self._api_key = api_key if api_key is not None else os.environ.get("SEMANTIC_SCHOLAR_API_KEY", "")
        self._url = f"{base_url.rstrip('/')}/paper/search"

    def search(self, query: str, limit: int = 10) -> list[Paper]:
        params: dict[str, str | int] = {"query": query, "limit": min(limit, MAX_LIMIT), "fields": FIELDS}
        headers = {"x-api-key": self._api_key} if self._api_key else {}
        response = get(
            self._client, self.name, self._url, params=params, headers=headers, timeout_s=self._timeout_s,
            secrets=(self._api_key,),
            auth_hint="check SEMANTIC_SCHOLAR_API_KEY, or unset it to use the shared keyless rate limit",
        )
        page = parse_model(_SearchPage, read_json(response, self.name), self.name)
        return [paper for paper in map(_paper, page.data) if paper is not None][:limit]


def _paper(record: _Paper) -> Paper | None:
    if not record.title:
        return None
    ids = record.external_ids or {}
    return make_paper(
        source="semantic_scholar",
        title=record.title,
        authors=[a.name for a in record.authors if a.name],
        year=record.year,
        abstract=record.abstract,
        venue=record.venue,
        doi=str(ids["DOI"]) if "DOI" in ids else None,
        url=record.url,
        arxiv_id=str(ids["ArXiv"]) if "ArXiv" in ids else None,
        entry_type=_entry_type(record),
    )


def _entry_type(record: _Paper) -> str:
    # Semantic Scholar files most records, preprints and conference papers included, as JournalArticle;
    # only its Conference label is trusted, and the rest is left to the guess from the venue.
    return "inproceedings" if "Conference" in (record.publication_types or []) else ""


@register("semantic_scholar")
def _make(options: SourceOptions) -> SemanticScholarSource:
    return SemanticScholarSource(options.client, timeout_s=options.timeout_s)
