"""OpenAlex works search (https://api.openalex.org/works?search=...).

OpenAlex wants a free API key (`OPENALEX_API_KEY`, sent as the api_key parameter) and an email
(`OPENALEX_MAILTO`) for its polite pool. Abstracts come as an inverted index (word -> positions),
which we turn back into text.
"""

from __future__ import annotations

import os

import httpx
from pydantic import BaseModel

from nanoresearch.literature.http import DEFAULT_TIMEOUT_S, get, new_client, parse_model, read_json
from nanoresearch.literature.papers import make_paper
from nanoresearch.literature.source import Paper, SourceOptions, register

BASE_URL = "https://api.openalex.org"
MAX_PER_PAGE = 200
# Only the fields we map: smaller, faster answers.
FIELDS = "id,doi,title,display_name,publication_year,authorships,abstract_inverted_index,primary_location"
# OpenAlex's source types -> BibTeX entry types.
ENTRY_TYPES = {"journal": "article", "conference": "inproceedings", "repository": "misc", "book series": "incollection"}


class _Author(BaseModel):
    display_name: str | None = None


class _Authorship(BaseModel):
    author: _Author = _Author()


class _Venue(BaseModel):
    display_name: str | None = None
    type: str | None = None


class _Location(BaseModel):
    source: _Venue | None = None
    landing_page_url: str | None = None


class _Work(BaseModel):
    id: str
    doi: str | None = None
    title: str | None = None
    display_name: str | None = None
    publication_year: int | None = None
    authorships: list[_Authorship] = []
    abstract_inverted_index: dict[str, list[int]] | None = None
    primary_location: _Location | None = None


class _WorksPage(BaseModel):
    results: list[_Work]


def abstract_from_inverted_index(index: dict[str, list[int]] | None) -> str:
    """{"Deep": [0], "learning": [1, 5], ...} -> "Deep learning ..."."""
    if not index:
        return ""
    words = {position: word for word, positions in index.items() for position in positions}
    return " ".join(words[position] for position in sorted(words))


class OpenAlexSource:
    name = "openalex"

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        api_key: str | None = None,
        mailto: str | None = None,
        base_url: str = BASE_URL,
    ) -> None:
        self._client = client or new_client()
        self._timeout_s = timeout_s
        self._api_key = api_key if api_key is not None else os.environ.get("OPENALEX_API_KEY", "")
        self._mailto = mailto if mailto is not None else os.environ.get("OPENALEX_MAILTO", "")
        self._url = f"{base_url.rstrip('/')}/works"

    def search(self, query: str, limit: int = 10) -> list[Paper]:
        params: dict[str, str | int] = {"search": query, "per-page": min(limit, MAX_PER_PAGE), "select": FIELDS}
        if self._api_key:
            params["api_key"] = self._api_key
        if self._mailto:
            params["mailto"] = self._mailto
        response = get(
            self._client, self.name, self._url, params=params, timeout_s=self._timeout_s, secrets=(self._api_key,),
            auth_hint="set OPENALEX_API_KEY to a valid key (free at https://openalex.org/settings/api)",
        )
        page = parse_model(_WorksPage, read_json(response, self.name), self.name)
        return [paper for paper in map(_paper, page.results) if paper is not None][:limit]


def _paper(work: _Work) -> Paper | None:
    title = work.title or work.display_name
    if not title:  # OpenAlex has untitled records (datasets, fragments); they cannot be cited
        return None
    location = work.primary_location or _Location()
    venue = location.source or _Venue()
    landing = location.landing_page_url or ""
    return make_paper(
        source="openalex",
        title=title,
        authors=[a.author.display_name for a in work.authorships if a.author.display_name],
        year=work.publication_year,
        abstract=abstract_from_inverted_index(work.abstract_inverted_index),
        venue=venue.display_name,
        doi=work.doi,
        url=landing or work.id,
        arxiv_id=landing if "arxiv.org" in landing else None,
        entry_type=ENTRY_TYPES.get(venue.type or "", ""),
    )


@register("openalex")
def _make(options: SourceOptions) -> OpenAlexSource:
    return OpenAlexSource(options.client, timeout_s=options.timeout_s)
