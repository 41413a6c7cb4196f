"""The Anthropic provider, through `LLM.complete`, against a scripted Messages API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import BaseModel
from servers import Reply, ScriptedServer, anthropic_error, anthropic_message

from nanoresearch.config import load_settings
from nanoresearch.errors import AuthError, EndpointUnavailableError
from nanoresearch.llm.client import LLM
from nanoresearch.llm.provider import MalformedReplyError, Message
from nanoresearch.store import Store


class Verdict(BaseModel):
    label: str
    score: int


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as scripted:
        yield scripted


@pytest.fixture
def claude(server: ScriptedServer, store: Store) -> LLM:
    settings = load_settings(
        {
            "endpoints": {"claude": {"kind": "anthropic", "base_url": server.url, "timeout_s": 5}},
            "llm": {"max_attempts": 3, "backoff_initial_s": 0.01, "backoff_max_s": 0.05, "replay": "off"},
        }
    )
    return LLM(settings, store, store.ensure_user(settings.user))


def test_plain_text_reply(server: ScriptedServer, claude: LLM) -> None:
    server.reply(200, anthropic_message("Hello there.", input_tokens=3, output_tokens=5))

    done = claude.complete("hi", endpoint="claude", model="claude-test")

    assert done.text == "Hello there."
    assert (done.prompt_tokens, done.completion_tokens) == (3, 5)
    [seen] = server.requests
    assert (seen.method, seen.path) == ("POST", "/v1/messages")
    assert seen.body["model"] == "claude-test"
    assert seen.body["messages"] == [{"role": "user", "content": "hi"}]
    assert seen.body["temperature"] == 0.0
    assert "tools" not in seen.body


def test_structured_output_goes_through_a_forced_tool_call(server: ScriptedServer, claude: LLM) -> None:
    server.reply(200, anthropic_message(tool_input={"label": "good", "score": 7}))
    messages = [Message(role="system", content="You grade ideas."), Message(role="user", content="Grade: cats")]

    done = claude.complete(messages, endpoint="claude", model="claude-test", schema=Verdict)

    assert isinstance(done.parsed, Verdict)
    assert done.parsed.score == 7
    body = server.requests[0].body
    [tool] = body["tools"]
    assert tool["name"] == "reply"
    assert tool["input_schema"]["required"] == ["label", "score"]
    assert body["tool_choice"] == {"type": "tool", "name": "reply"}
    # The system message (with the schema instruction appended) moves to the top-level field.
    assert body["system"].startswith("You grade ideas.")
    assert [m["role"] for m in body["messages"]] == ["user"]


@pytest.mark.parametrize("status", [529, 500])
def test_overloaded_or_server_error_is_retried(server: ScriptedServer, claude: LLM, status: int) -> None:
    server.reply(status, anthropic_error("Overloaded", "overloaded_error"))
    server.reply(200, anthropic_message("after a retry"))

    done = claude.complete("hi", endpoint="claude", model="claude-test")

    assert done.text == "after a retry"
    assert len(server.requests) == 2


def test_bad_key_is_an_auth_error_without_retry(server: ScriptedServer, claude: LLM) -> None:
    server.reply(401, anthropic_error("invalid x-api-key", "authentication_error"))

    with pytest.raises(AuthError, match="invalid x-api-key") as caught:
        claude.complete("hi", endpoint="claude", model="claude-test")

    assert len(server.requests) == 1
    assert "api_key_env" in (caught.value.hint or "")


BAD_BODIES = {
    "empty": Reply(raw=""),
    "html": Reply(raw="<html><body>Gateway says hello</body></html>", content_type="text/html"),
    "plain text": Reply(raw="no healthy upstream", content_type="text/plain"),
    "JSON without content": Reply(body={"type": "message", "role": "assistant"}),
}


@pytest.mark.parametrize("bad", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_malformed_200_reply_is_retried_until_a_proper_one(server: ScriptedServer, claude: LLM, bad: Reply) -> None:
    server.reply_with(bad).reply(200, anthropic_message("after a retry"))

    done = claude.complete("hi", endpoint="claude", model="claude-test")

    assert done.text == "after a retry"
    assert len(server.requests) == 2


@pytest.mark.parametrize("bad", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_malformed_200_reply_that_persists_is_a_clear_error(server: ScriptedServer, claude: LLM, bad: Reply) -> None:
    server.reply_with(bad, times=3)

    with pytest.raises(EndpointUnavailableError) as caught:
        claude.complete("hi", endpoint="claude", model="claude-test")

    assert len(server.requests) == 3
    assert isinstance(caught.value.__cause__, MalformedReplyError)
    assert f"{server.url}/v1/messages answered HTTP 200 with" in caught.value.message


def test_a_tool_call_cut_by_max_tokens_is_asked_again_with_more_room(server: ScriptedServer, claude: LLM) -> None:
    # Valid-looking, but the API says the token limit cut it: "go" may be the start of "good".
    server.reply(200, anthropic_message(tool_input={"label": "go", "score": 7}, stop_reason="max_tokens"))
    server.reply(200, anthropic_message(tool_input={"label": "good", "score": 7}))

    done = claude.complete("grade", endpoint="claude", model="claude-test", schema=Verdict, max_tokens=50)

    assert done.parsed == Verdict(label="good", score=7)
    assert [r.body["max_tokens"] for r in server.requests] == [50, 100]
