"""Evidence is a claim with a quote from its own paper, checked by code. The issue's run stored the
SVM abstract of cortes1995support as a claim of alpaydin1998optical, cut at 240 characters."""

from __future__ import annotations

import json

from conftest import CORPUS, GOAL
from helpers import ScriptedProvider
from nanoresearch.literature import search_literature
from nanoresearch.literature.source import Paper
from nanoresearch.pipeline.stages.ideation import extract_evidence, quote_finding


def corpus_papers(cache_dir) -> dict[str, Paper]:
    return {p.key: p for p in search_literature([GOAL], offline=True, corpus=CORPUS, cache_dir=cache_dir, limit=8)}


def test_a_quote_must_be_in_its_own_paper(settings) -> None:
    papers = corpus_papers(settings.cache_dir)
    svm = papers["cortes1995support"].abstract
    listed = list(papers.values())
    misattributed = quote_finding(0, {"paper": "alpaydin1998optical", "quote": svm[:240]}, listed)
    assert misattributed is not None and "from cortes1995support, not from alpaydin1998optical" in misattributed.reason
    assert quote_finding(0, {"paper": "cortes1995support", "quote": svm[:240]}, listed) is None
    # case, spacing and line breaks do not count; the words do
    loose = "  " + "\n".join(svm[:120].upper().split(" ")) + " "
    assert quote_finding(0, {"paper": "cortes1995support", "quote": loose}, listed) is None
    invented = quote_finding(0, {"paper": "cortes1995support", "quote": "support vector machines beat every neural network"},
                             listed)
    assert invented is not None and "not in the text of cortes1995support" in invented.reason
    short = quote_finding(0, {"paper": "cortes1995support", "quote": "support-vector network"}, listed)
    assert short is not None and "at least 5 words" in short.reason


def test_claims_that_fail_are_dropped_and_counted_and_a_long_quote_is_kept_whole(make_context) -> None:
    ctx = make_context(ScriptedProvider(name="local"))
    papers = corpus_papers(ctx.settings.cache_dir)
    chosen = list(papers.values())[: ctx.settings.pipeline.evidence_papers]
    lecun = papers["lecun1998gradient"].abstract
    assert len(lecun) > 300 and "lecun1998gradient" in [p.key for p in chosen]
    claims = {"claims": [
        {"paper": "lecun1998gradient", "claim": "Convolutional networks trained end to end beat other digit recognisers",
         "quote": lecun[:330]},
        {"paper": "alpaydin1998optical", "claim": "Support-vector networks map inputs to a high-dimensional space",
         "quote": papers["cortes1995support"].abstract[:200]},
    ]}
    reply = json.dumps(claims)
    provider = ScriptedProvider(reply, reply, name="local")  # the answer, and the same again after the repair prompt
    ctx.llm._providers["local"] = provider
    evidence = extract_evidence(ctx, chosen)

    assert [c["paper"] for c in evidence["claims"]] == ["lecun1998gradient"]
    assert evidence["claims"][0]["quote"] == lecun[:330]  # whole: no 240-character cut
    (dropped,) = evidence["dropped"]
    assert dropped["paper"] == "alpaydin1998optical" and "from cortes1995support" in dropped["reason"]
    assert "the quote is from cortes1995support" in provider.history[1].messages[-1].content  # the repair said why
