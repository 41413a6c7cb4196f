"""Literature search: sources by name, a fallback chain with a cache, a local corpus, and one entry point.

`search_literature` is what the pipeline calls. Online, each query goes to the local corpus (when
given) and to the chain OpenAlex -> Semantic Scholar -> arXiv; offline, to the local corpus only.
The papers of all queries are merged (same DOI, arXiv id or title = same paper) and given unique
BibTeX keys, in a stable order: by query, then source (local first), then rank.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import httpx

from nanoresearch.errors import LiteratureError

# Importing the built-in online sources registers them (source.SOURCES; local_corpus registers
# "local") before anyone can ask for one.
from nanoresearch.literature import arxiv, openalex, semantic_scholar  # noqa: F401
from nanoresearch.literature.cache import LiteratureCache
from nanoresearch.literature.chain import ChainAnswer, FallbackChain, RetryPolicy, SourceFailure
from nanoresearch.literature.http import new_client
from nanoresearch.literature.local_corpus import LocalCorpus
from nanoresearch.literature.papers import finalise, make_paper
from nanoresearch.literature.source import (
    LiteratureSource,
    Paper,
    SourceOptions,
    create_source,
    register,
    source_names,
)

__all__ = [
    "DEFAULT_ONLINE_SOURCES",
    "ChainAnswer",
    "FallbackChain",
    "LiteratureCache",
    "LiteratureSource",
    "LocalCorpus",
    "Paper",
    "RetryPolicy",
    "SourceFailure",
    "SourceOptions",
    "create_source",
    "make_paper",
    "register",
    "search_literature",
    "source_names",
]

log = logging.getLogger(__name__)

# OpenAlex first: broadest coverage. Semantic Scholar's keyless rate limit is often exhausted, and
# arXiv only knows preprints, so they come after.
DEFAULT_ONLINE_SOURCES = ("openalex", "semantic_scholar", "arxiv")


def search_literature(
    queries: Iterable[str],
    *,
    offline: bool,
    corpus: Path | None,
    cache_dir: Path,
    limit: int = 10,
    sources: Sequence[str] = DEFAULT_ONLINE_SOURCES,
    client: httpx.Client | None = None,
    retry: RetryPolicy | None = None,
) -> list[Paper]:
    """Papers for all queries, merged and uniquely keyed. Offline, only the local corpus is searched.

    When every online source fails and a local corpus was given, the search goes on with the corpus
    alone (with a warning); without a corpus that failure is raised.
    """
    use_online = not offline and bool(sources)
    if corpus is None and not use_online:
        raise LiteratureError(
            "no literature source to search: offline search reads only a local corpus, and none was given",
            hint="pass a folder of .bib/.md/.pdf files (--corpus DIR), e.g. examples/corpus",
        )
    local = LocalCorpus(corpus) if corpus is not None else None
    with _client_for(client, needed=use_online) as http:
        chain = (
            FallbackChain([create_source(name, client=http) for name in sources], cache=LiteratureCache(cache_dir),
                          retry=retry)
            if use_online else None
        )
        found: list[Paper] = []
        for query in dict.fromkeys(q for q in queries if q.strip()):  # each distinct query once, in order
            if local is not None:
                found += local.search(query, limit)
            if chain is not None:
                try:
                    found += chain.search(query, limit)
                except LiteratureError as exc:
                    if local is None:
                        raise
                    log.warning("%s; going on with the local corpus only", exc.message)
                    chain = None  # the next queries would fail the same way, slowly
    return finalise(found)


def _client_for(client: httpx.Client | None, *, needed: bool) -> AbstractContextManager[httpx.Client | None]:
    # A caller's client stays open for the caller; one made here is closed when the search ends.
    if client is not None or not needed:
        return nullcontext(client)
    return new_client()
