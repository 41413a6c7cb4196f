"""Each online source against recorded responses: mapping, request shape, secrets, malformed answers."""

from __future__ import annotations

import logging

import httpx
import pytest
from literature_fakes import ARXIV, OPENALEX, SEMANTIC_SCHOLAR, FakeWeb, recorded, recorded_json

from nanoresearch.errors import LiteratureError
from nanoresearch.literature import create_source
from nanoresearch.literature.arxiv import ArxivSource, parse_feed, search_query
from nanoresearch.literature.http import SourceUnavailable, parse_retry_after
from nanoresearch.literature.openalex import OpenAlexSource, abstract_from_inverted_index
from nanoresearch.literature.semantic_scholar import SemanticScholarSource


def test_openalex_maps_works_and_rebuilds_abstracts():
    web = FakeWeb().on(OPENALEX, recorded("openalex_works_search.json"))
    papers = OpenAlexSource(web.client(), api_key="", mailto="").search("gradient based learning", limit=5)

    assert [p.key for p in papers] == ["lecun1998gradient", "kingma2014adam"]  # the untitled dataset is dropped
    lecun, adam = papers
    assert lecun.authors == ["Yann LeCun", "Léon Bottou", "Yoshua Bengio", "Patrick Haffner"]
    assert lecun.abstract.startswith("Multilayer neural networks trained with the back-propagation algorithm")
    assert lecun.abstract.endswith("with minimal preprocessing.")
    assert (lecun.doi, lecun.venue, lecun.year, lecun.source) == ("10.1109/5.726791", "Proceedings of the IEEE", 1998,
                                                                  "openalex")
    assert lecun.bibtex.startswith("@article{lecun1998gradient,")
    # arXiv's DataCite DOI and landing page both give the arXiv id; a repository is not a journal.
    assert adam.arxiv_id == "1412.6980" and adam.bibtex.startswith("@misc{kingma2014adam,")
    assert "arXiv preprint arXiv:1412.6980" in adam.bibtex


def test_openalex_request_carries_user_agent_mailto_and_key():
    web = FakeWeb().on(OPENALEX, recorded("openalex_works_search.json"))
    OpenAlexSource(web.client(), api_key="oa-secret", mailto="ada@example.org").search("adam", limit=3)
    request = web.requests[0]
    assert request.url.path == "/works"
    assert request.url.params["search"] == "adam" and request.url.params["per-page"] == "3"
    assert request.url.params["mailto"] == "ada@example.org" and request.url.params["api_key"] == "oa-secret"
    assert request.headers["user-agent"].startswith("nanoresearch/")


def test_inverted_index_is_read_in_position_order():
    index = {"learning": [1, 4], "Deep": [0], "is": [2], "deep": [3]}
    assert abstract_from_inverted_index(index) == "Deep learning is deep learning"
    assert abstract_from_inverted_index(None) == ""


def test_semantic_scholar_maps_papers_and_sends_key_in_header():
    web = FakeWeb().on(SEMANTIC_SCHOLAR, recorded("semantic_scholar_paper_search.json"))
    papers = SemanticScholarSource(web.client(), api_key="s2-secret").search("adam", limit=10)

    assert [p.key for p in papers] == ["kingma2014adam", "srivastava2014dropout", "lecun1998gradient"]
    adam, dropout, lecun = papers
    assert adam.arxiv_id == "1412.6980" and adam.source == "semantic_scholar"
    # Filed as JournalArticle, but the venue says conference.
    assert adam.bibtex.startswith("@inproceedings") and "booktitle = {International Conference on Learning" in adam.bibtex
    assert dropout.authors[1] == "Geoffrey E. Hinton" and dropout.bibtex.startswith("@article")
    assert lecun.doi == "10.1109/5.726791" and lecun.abstract == ""
    request = web.requests[0]
    assert request.headers["x-api-key"] == "s2-secret"
    assert request.url.params["query"] == "adam" and "externalIds" in request.url.params["fields"]
    assert "s2-secret" not in str(request.url)


def test_semantic_scholar_reads_its_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("SEMANTIC_SCHOLAR_API_KEY", "from-env")
    web = FakeWeb().on(SEMANTIC_SCHOLAR, recorded("semantic_scholar_paper_search.json"))
    create_source("semantic_scholar", client=web.client()).search("adam")
    assert web.requests[0].headers["x-api-key"] == "from-env"


def test_semantic_scholar_empty_search_has_no_data_field():
    web = FakeWeb().on(SEMANTIC_SCHOLAR, httpx.Response(200, json={"total": 0, "offset": 0}))
    assert SemanticScholarSource(web.client(), api_key="").search("zzzz") == []


def test_arxiv_parses_the_atom_feed():
    web = FakeWeb().on(ARXIV, recorded("arxiv_query.atom"))
    papers = ArxivSource(web.client()).search("stochastic optimization", limit=5)

    assert [p.key for p in papers] == ["kingma2014adam", "loshchilov2016sgdr"]
    adam = papers[0]
    assert adam.arxiv_id == "1412.6980" and adam.url == "https://arxiv.org/abs/1412.6980"
    assert adam.authors == ["Diederik P. Kingma", "Jimmy Ba"] and adam.venue == "arXiv"
    assert adam.abstract.startswith("We introduce Adam, an algorithm") and "\n" not in adam.abstract
    assert web.requests[0].url.params["search_query"] == "all:stochastic AND all:optimization"


def test_arxiv_journal_reference_and_doi_are_kept():
    feed = b"""<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom">
      <entry><id>http://arxiv.org/abs/1709.06560v3</id><published>2017-09-19T17:54:06Z</published>
        <title>Deep Reinforcement Learning that Matters</title><summary>Reproducing results is hard.</summary>
        <author><name>Peter Henderson</name></author>
        <arxiv:doi>10.1609/aaai.v32i1.11694</arxiv:doi>
        <arxiv:journal_ref>Proceedings of the AAAI Conference on Artificial Intelligence 32 (2018)</arxiv:journal_ref>
      </entry></feed>"""
    (paper,) = parse_feed(feed)
    assert paper.doi == "10.1609/aaai.v32i1.11694" and paper.venue.startswith("Proceedings of the AAAI")
    assert paper.bibtex.startswith("@inproceedings{henderson2017deep,")


def test_arxiv_query_words_only():
    assert search_query('adam "optimizer" (2015)') == "all:adam AND all:optimizer AND all:2015"
    assert ArxivSource(FakeWeb().client()).search("!!!") == []  # nothing to ask, so no request


@pytest.mark.parametrize(
    ("host", "source", "reply", "message"),
    [
        (OPENALEX, OpenAlexSource, httpx.Response(200, json={"meta": {}, "results": [{"title": "no id"}]}),
         "openalex: malformed response at results.0.id"),
        (OPENALEX, OpenAlexSource, httpx.Response(200, text="<html>Bad gateway</html>"),
         "openalex: the response is not JSON"),
        (SEMANTIC_SCHOLAR, SemanticScholarSource, httpx.Response(200, json={"data": "oops", "total": 1}),
         "semantic_scholar: malformed response at data"),
        (ARXIV, ArxivSource, httpx.Response(200, text="<feed><entry>"), "arxiv: the response is not valid XML"),
        (ARXIV, ArxivSource, httpx.Response(200, text="<rss/>"), "arxiv: expected an Atom <feed>"),
        (ARXIV, ArxivSource, recorded("arxiv_error.atom"),
         "arxiv: the query was rejected: incorrect id format for 1234.12345v"),
    ],
)
def test_malformed_answers_raise_an_error_naming_the_source(host, source, reply, message):
    web = FakeWeb().on(host, reply)
    with pytest.raises(LiteratureError) as caught:
        source(web.client()).search("anything")
    assert caught.value.message.startswith(message)
    assert not isinstance(caught.value, SourceUnavailable)  # retrying cannot fix a malformed answer


def test_failures_are_classified_for_retrying():
    web = (
        FakeWeb()
        .on(OPENALEX, httpx.Response(429, headers={"Retry-After": "7"}))
        .on(OPENALEX, httpx.Response(503))
        .on(OPENALEX, httpx.ReadTimeout("timed out"))
        .on(OPENALEX, httpx.ConnectError("[Errno 111] Connection refused"))
    )
    source = OpenAlexSource(web.client(), timeout_s=5)
    caught = []
    for _ in range(4):
        with pytest.raises(SourceUnavailable) as error:
            source.search("x")
        caught.append(error.value)
    assert caught[0].retry_after == 7 and "rate limited (HTTP 429), asks to wait 7 s" in caught[0].message
    assert "server error (HTTP 503)" in caught[1].message and caught[1].retry_after is None
    assert caught[2].message == "openalex: no answer within 5 s"
    assert "cannot connect (ConnectError" in caught[3].message


def test_refused_requests_name_the_fix_and_never_the_key(monkeypatch, caplog):
    monkeypatch.setenv("OPENALEX_API_KEY", "oa-secret-123")
    echo = httpx.Response(403, text="Invalid api_key=oa-secret-123 for this endpoint")
    web = FakeWeb().on(OPENALEX, echo)
    with caplog.at_level(logging.DEBUG), pytest.raises(LiteratureError) as caught:
        create_source("openalex", client=web.client()).search("x")
    assert "HTTP 403" in caught.value.message and "OPENALEX_API_KEY" in (caught.value.hint or "")
    assert "oa-secret-123" not in str(caught.value)
    assert web.requests[0].url.params["api_key"] == "oa-secret-123"
    assert "oa-secret-123" not in caplog.text  # httpx logs each request's full URL; the filter redacts it


def test_httpx_request_log_keeps_working_with_the_key_redacted(caplog):
    web = FakeWeb().on(OPENALEX, recorded("openalex_works_search.json"))
    with caplog.at_level(logging.INFO, logger="httpx"):
        OpenAlexSource(web.client(), api_key="oa-secret-456").search("x")
    assert "api_key=[redacted]" in caplog.text and "200 OK" in caplog.text and "oa-secret-456" not in caplog.text


def test_papers_never_carry_secrets():
    web = FakeWeb().on(OPENALEX, recorded("openalex_works_search.json"))
    papers = OpenAlexSource(web.client(), api_key="oa-secret-789", mailto="ada@example.org").search("x")
    dumped = "".join(p.model_dump_json() for p in papers)
    assert "oa-secret-789" not in dumped and "ada@example.org" not in dumped


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: no wait
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_recorded_fixtures_have_the_real_shapes():
    # Guards the fixtures themselves: a hand edit that drifts from the APIs' shapes would make the tests lie.
    openalex = recorded_json("openalex_works_search.json")
    assert {"meta", "results"} <= openalex.keys() and "abstract_inverted_index" in openalex["results"][0]
    s2 = recorded_json("semantic_scholar_paper_search.json")
    assert {"total", "offset", "data"} <= s2.keys() and "paperId" in s2["data"][0]
