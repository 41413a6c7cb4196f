"""arXiv export API search (https://export.arxiv.org/api/query), an Atom feed read with xml.etree.

The feed carries the preprint's own metadata; a published version's DOI and journal reference come
in arxiv: elements when the authors added them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import httpx

from nanoresearch.errors import LiteratureError
from nanoresearch.literature.http import DEFAULT_TIMEOUT_S, get, new_client
from nanoresearch.literature.papers import make_paper
from nanoresearch.literature.source import Paper, SourceOptions, register
from nanoresearch.literature.text import normalise_arxiv_id

BASE_URL = "https://export.arxiv.org/api/query"
MAX_RESULTS = 100
NS = {"atom": "http://www.w3.org/2005/Atom", "arxiv": "http://arxiv.org/schemas/atom"}
_ERROR_ID = "arxiv.org/api/errors"


def search_query(query: str) -> str:
    """arXiv's query language: every word must appear somewhere (all:word AND all:word ...)."""
    words = re.findall(r"[\w-]+", query)
    return " AND ".join(f"all:{word}" for word in words)


class ArxivSource:
    name = "arxiv"

    def __init__(
        self, client: httpx.Client | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S, base_url: str = BASE_URL
    ) -> None:
        self._client = client or new_client()
        self._timeout_s = timeout_s
        self._url = base_url

    def search(self, query: str, limit: int = 10) -> list[Paper]:
        expression = search_query(query)
        if not expression:
            return []
        params: dict[str, str | int] = {
            "search_query": expression,
            "start": 0,
            "max_results": min(limit, MAX_RESULTS),
            "sortBy": "relevance",
        }
        response = get(self._client, self.name, self._url, params=params, timeout_s=self._timeout_s)
        return parse_feed(response.content)[:limit]


def parse_feed(content: bytes) -> list[Paper]:
    try:
        root = ET.fromstring(content)
    except ET.ParseError as exc:
        raise LiteratureError(f"arxiv: the response is not valid XML ({exc})") from None
    if root.tag != f"{{{NS['atom']}}}feed":
        raise LiteratureError(f"arxiv: expected an Atom <feed>, got <{root.tag}>")
    papers = []
    for entry in root.findall("atom:entry", NS):
        entry_id = _text(entry, "atom:id")
        if _ERROR_ID in entry_id:  # arXiv reports a bad query as a feed with one error entry
            raise LiteratureError(f"arxiv: the query was rejected: {_text(entry, 'atom:summary')}")
        papers.append(_paper(entry, entry_id))
    return papers


def _paper(entry: ET.Element, entry_id: str) -> Paper:
    arxiv_id = normalise_arxiv_id(entry_id)
    title = _text(entry, "atom:title")
    if not arxiv_id or not title:
        raise LiteratureError(f"arxiv: malformed entry {entry_id or '(no id)'}: missing arXiv id or title")
    published = _text(entry, "atom:published")
    return make_paper(
        source="arxiv",
        title=title,
        authors=[_text(author, "atom:name") for author in entry.findall("atom:author", NS)],
        year=int(published[:4]) if re.match(r"\d{4}", published) else None,
        abstract=_text(entry, "atom:summary"),
        venue=_text(entry, "arxiv:journal_ref") or "arXiv",
        doi=_text(entry, "arxiv:doi") or None,
        url=f"https://arxiv.org/abs/{arxiv_id}",
        arxiv_id=arxiv_id,
    )


def _text(element: ET.Element, path: str) -> str:
    return (element.findtext(path, default="", namespaces=NS) or "").strip()


@register("arxiv")
def _make(options: SourceOptions) -> ArxivSource:
    return ArxivSource(options.client, timeout_s=options.timeout_s)
