"""The fallback chain over real source clients and a scripted web: retries, fall-through, cache."""

from __future__ import annotations

import httpx
import pytest
from literature_fakes import ARXIV, OPENALEX, SEMANTIC_SCHOLAR, FakeWeb, recorded

from nanoresearch.errors import LiteratureError
from nanoresearch.literature import FallbackChain, LiteratureCache, RetryPolicy, create_source


class SleepRecorder:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def chain_over(web: FakeWeb, *names: str, cache: LiteratureCache | None = None, retry: RetryPolicy | None = None,
               sleep: SleepRecorder | None = None) -> FallbackChain:
    client = web.client()
    return FallbackChain([create_source(name, client=client) for name in names], cache=cache, retry=retry,
                         sleep=sleep or SleepRecorder())


def test_429_then_success_waits_as_told_by_retry_after():
    web = FakeWeb().on(OPENALEX, httpx.Response(429, headers={"Retry-After": "2"}), recorded("openalex_works_search.json"))
    sleep = SleepRecorder()
    answer = chain_over(web, "openalex", "arxiv", sleep=sleep).answer("gradient learning", 5)
    assert answer.answered_by == "openalex" and not answer.failures and len(answer.papers) == 2
    assert sleep.waits == [2.0]
    assert web.hosts_asked() == [OPENALEX, OPENALEX]


def test_retry_after_beyond_the_cap_moves_on_without_waiting():
    web = (FakeWeb()
           .on(SEMANTIC_SCHOLAR, httpx.Response(429, headers={"Retry-After": "3600"}))
           .on(ARXIV, recorded("arxiv_query.atom")))
    sleep = SleepRecorder()
    answer = chain_over(web, "semantic_scholar", "arxiv", sleep=sleep,
                        retry=RetryPolicy(max_retry_after_s=30)).answer("adam", 5)
    assert answer.answered_by == "arxiv" and sleep.waits == []
    assert answer.failures[0].source == "semantic_scholar" and answer.failures[0].attempts == 1
    assert "asks to wait 3600 s" in answer.failures[0].error


def test_server_errors_are_retried_with_backoff_then_the_next_source_answers():
    web = (FakeWeb()
           .on(OPENALEX, httpx.Response(500), httpx.Response(502), httpx.Response(500))
           .on(SEMANTIC_SCHOLAR, recorded("semantic_scholar_paper_search.json")))
    sleep = SleepRecorder()
    answer = chain_over(web, "openalex", "semantic_scholar", "arxiv", sleep=sleep,
                        retry=RetryPolicy(attempts=3, backoff_s=0.5)).answer("adam", 5)
    assert answer.answered_by == "semantic_scholar"
    assert {p.source for p in answer.papers} == {"semantic_scholar"}
    assert sleep.waits == [0.5, 1.0]  # exponential, between the three attempts only
    assert answer.failures[0].attempts == 3 and "HTTP 500" in answer.failures[0].error
    assert web.hosts_asked() == [OPENALEX] * 3 + [SEMANTIC_SCHOLAR]  # arXiv was never needed


def test_a_timeout_is_retried():
    web = FakeWeb().on(ARXIV, httpx.ReadTimeout("timed out"), recorded("arxiv_query.atom"))
    answer = chain_over(web, "arxiv").answer("adam", 5)
    assert answer.answered_by == "arxiv" and len(answer.papers) == 2


def test_a_refused_or_malformed_answer_falls_through_at_once():
    web = (FakeWeb()
           .on(OPENALEX, httpx.Response(400, json={"error": "Invalid query parameters"}))
           .on(SEMANTIC_SCHOLAR, httpx.Response(200, json={"unexpected": True}))
           .on(ARXIV, recorded("arxiv_query.atom")))
    answer = chain_over(web, "openalex", "semantic_scholar", "arxiv").answer("adam", 5)
    assert answer.answered_by == "arxiv"
    assert [(f.source, f.attempts) for f in answer.failures] == [("openalex", 1), ("semantic_scholar", 1)]


def test_when_every_source_fails_the_error_lists_each_failure():
    web = (FakeWeb()
           .on(OPENALEX, *[httpx.Response(503)] * 2)
           .on(SEMANTIC_SCHOLAR, httpx.Response(403, text="Forbidden"))
           .on(ARXIV, *[httpx.ConnectError("[Errno -3] Temporary failure in name resolution")] * 2))
    chain = chain_over(web, "openalex", "semantic_scholar", "arxiv", retry=RetryPolicy(attempts=2, backoff_s=0))
    with pytest.raises(LiteratureError) as caught:
        chain.answer("handwritten digits", 5)
    message = caught.value.message
    assert message.startswith("no literature source answered 'handwritten digits':")
    assert "openalex: server error (HTTP 503) [2 attempts]" in message
    assert "semantic_scholar: request refused (HTTP 403): Forbidden [1 attempt]" in message
    assert "arxiv: cannot connect (ConnectError: [Errno -3] Temporary failure in name resolution) [2 attempts]" in message
    assert "--offline --corpus" in (caught.value.hint or "")


def test_a_cached_answer_makes_no_request(tmp_path):
    cache = LiteratureCache(tmp_path)
    first = FakeWeb().on(OPENALEX, httpx.Response(500)).on(ARXIV, recorded("arxiv_query.atom"))
    live = chain_over(first, "openalex", "arxiv", cache=cache, retry=RetryPolicy(attempts=1)).answer("Adam  optimizer", 5)
    assert live.answered_by == "arxiv" and not live.from_cache

    silent = FakeWeb()  # any request would fail the test
    again = chain_over(silent, "openalex", "arxiv", cache=cache).answer("adam optimizer", 5)
    assert silent.requests == []
    assert again.from_cache and again.answered_by == "arxiv" and again.papers == live.papers
    assert len(list((tmp_path / "literature").glob("*.json"))) == 1


def test_the_cache_key_includes_source_query_and_limit(tmp_path):
    cache = LiteratureCache(tmp_path)
    paths = {cache.path_for("arxiv", "adam", 5), cache.path_for("openalex", "adam", 5),
             cache.path_for("arxiv", "adam", 10), cache.path_for("arxiv", "sgd", 5)}
    assert len(paths) == 4 and all(p.parent == tmp_path / "literature" for p in paths)


def test_a_damaged_cache_entry_is_a_miss_and_gets_rewritten(tmp_path, caplog):
    cache = LiteratureCache(tmp_path)
    path = cache.path_for("arxiv", "adam", 5)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    web = FakeWeb().on(ARXIV, recorded("arxiv_query.atom"))
    answer = chain_over(web, "arxiv", cache=cache).answer("adam", 5)
    assert not answer.from_cache and "ignoring unreadable literature cache entry" in caplog.text
    assert cache.get("arxiv", "adam", 5) == answer.papers
