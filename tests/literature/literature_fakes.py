"""A scripted web for literature tests: replies queued per host, every request recorded."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

RECORDED = Path(__file__).parent / "recorded"
OPENALEX = "api.openalex.org"
ARXIV = "export.arxiv.org"
SEMANTIC_SCHOLAR = "api.semanticscholar.org"


def recorded(name: str) -> httpx.Response:
    """A 200 response carrying a recorded body, with the content type its API sends."""
    body = (RECORDED / name).read_bytes()
    kind = "application/atom+xml; charset=utf-8" if name.endswith(".atom") else "application/json"
    return httpx.Response(200, content=body, headers={"content-type": kind})


def recorded_json(name: str) -> dict:
    return json.loads((RECORDED / name).read_text())


class FakeWeb:
    """Answers each host from its own queue (a Response or an exception to raise); an unscripted request fails."""

    def __init__(self) -> None:
        self.replies: dict[str, list[httpx.Response | Exception]] = {}
        self.requests: list[httpx.Request] = []

    def on(self, host: str, *replies: httpx.Response | Exception) -> FakeWeb:
        self.replies.setdefault(host, []).extend(replies)
        return self

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self._answer))

    def hosts_asked(self) -> list[str]:
        return [request.url.host for request in self.requests]

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.replies.get(request.url.host)
        if not queue:
            raise AssertionError(f"unexpected request to {request.url}")
        reply = queue.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply
