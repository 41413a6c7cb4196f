"""A fallback chain: ask sources in order, retrying the transient failures of each, until one answers.

A timeout, dropped connection, 429 or 5xx is retried with exponential backoff (a 429/503's
Retry-After is honoured when it is within a cap; a longer wait means: move on to the next source).
Any other failure (refused request, malformed answer) moves on at once. The answer records which
source gave it; when every source fails, the error lists each one's failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from pydantic import BaseModel
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from nanoresearch.errors import LiteratureError
from nanoresearch.literature.cache import LiteratureCache
from nanoresearch.literature.http import SourceUnavailable
from nanoresearch.literature.source import LiteratureSource, Paper

log = logging.getLogger(__name__)


class RetryPolicy(BaseModel):
    attempts: int = 3  # per source, the first try included
    backoff_s: float = 1.0  # the first wait; doubled after each failure
    max_backoff_s: float = 8.0
    max_retry_after_s: float = 30.0


class SourceFailure(BaseModel):
    source: str
    attempts: int
    error: str


class ChainAnswer(BaseModel):
    papers: list[Paper]
    answered_by: str
    from_cache: bool = False
    failures: list[SourceFailure] = []  # sources tried before the one that answered


class FallbackChain:
    name = "chain"

    def __init__(
        self,
        sources: Sequence[LiteratureSource],
        *,
        cache: LiteratureCache | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not sources:
            raise ValueError("a fallback chain needs at least one source")
        self.sources = list(sources)
        self.cache = cache
        self.retry = retry or RetryPolicy()
        self._sleep = sleep

    def search(self, query: str, limit: int = 10) -> list[Paper]:
        return self.answer(query, limit).papers

    def answer(self, query: str, limit: int = 10) -> ChainAnswer:
        cached = self._cached(query, limit)
        if cached is not None:
            return cached
        failures: list[SourceFailure] = []
        for source in self.sources:
            attempts = [0]
            try:
                papers = self._retrying()(self._counted(source, attempts), query, limit)
            except LiteratureError as exc:
                failures.append(SourceFailure(source=source.name, attempts=attempts[0], error=exc.message))
                log.info("literature source %s failed for %r: %s", source.name, query, exc.message)
                continue
            if self.cache is not None:
                self.cache.put(source.name, query, limit, papers)
            log.info("%r answered by %s: %d papers", query, source.name, len(papers))
            return ChainAnswer(papers=papers, answered_by=source.name, failures=failures)
        raise _all_failed(query, failures)

    def _cached(self, query: str, limit: int) -> ChainAnswer | None:
        # Any source's stored answer beats asking live: a repeated query must not touch the network.
        if self.cache is None:
            return None
        for source in self.sources:
            papers = self.cache.get(source.name, query, limit)
            if papers is not None:
                return ChainAnswer(papers=papers, answered_by=source.name, from_cache=True)
        return None

    def _retrying(self) -> Retrying:
        return Retrying(
            stop=stop_after_attempt(self.retry.attempts),
            wait=self._wait_seconds,
            retry=retry_if_exception(self._worth_retrying),
            sleep=self._sleep,
            reraise=True,
        )

    @staticmethod
    def _counted(source: LiteratureSource, attempts: list[int]) -> Callable[[str, int], list[Paper]]:
        def search(query: str, limit: int) -> list[Paper]:
            attempts[0] += 1
            return source.search(query, limit)

        return search

    def _worth_retrying(self, error: BaseException) -> bool:
        if not isinstance(error, SourceUnavailable):
            return False
        return error.retry_after is None or error.retry_after <= self.retry.max_retry_after_s

    def _wait_seconds(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:  # within the cap, or _worth_retrying would have stopped
            return float(retry_after)
        return min(self.retry.backoff_s * 2 ** (state.attempt_number - 1), self.retry.max_backoff_s)


def _all_failed(query: str, failures: list[SourceFailure]) -> LiteratureError:
    # Each error already starts with its source's name.
    lines = "; ".join(f"{f.error} [{f.attempts} attempt{'s' if f.attempts != 1 else ''}]" for f in failures)
    return LiteratureError(
        f"no literature source answered {query!r}: {lines}",
        hint="check the network and API keys, or search offline with a local corpus (--offline --corpus DIR)",
    )
