"""A server that refuses a structured-output dialect is asked in it once per process, not once per client:
llama.cpp's server answers `json_schema` with HTTP 500, and the product makes a new LLM client per
command, judge call and evaluation cell."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from llm.servers import Reply, ScriptedServer, openai_chat, openai_error
from llm.test_openai_compat import Capital, make_llm, make_settings
from nanoresearch.store import Store

# What llama-cpp-python's server says to a response_format it does not know (HTTP 500).
REFUSAL = openai_error("1 validation error for CreateChatCompletionRequest\nresponse_format\n  Input should be "
                       "a valid dictionary or instance of ResponseFormat", type_="internal_server_error")


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as scripted:
        yield scripted


def dialect(body: object) -> str:
    return body.get("response_format", {}).get("type", "prompt") if isinstance(body, dict) else "?"


def test_a_refused_dialect_is_not_asked_again_by_the_next_client_of_the_same_server(server: ScriptedServer, store: Store):
    answer = json.dumps({"country": "France", "city": "Paris"})
    server.reply_with(Reply(500, REFUSAL)).reply(200, openai_chat(answer), times=2)
    settings = make_settings(server.url + "/v1")
    for _ in range(2):  # two clients, as two commands (or two judge calls) make
        done = make_llm(settings, store).complete("The capital of France?", endpoint="srv", model="m1", schema=Capital)
        assert isinstance(done.parsed, Capital) and done.parsed.city == "Paris"
    sent = [dialect(request.body) for request in server.requests]
    # Before, each new client began with json_schema again: [json_schema, json_object, json_schema, ...].
    assert sent == ["json_schema", "json_object", "json_object"]
