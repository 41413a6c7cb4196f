"""The OpenAI-compatible provider, through `LLM.complete`, against real and scripted servers.

The `slow` tests talk to a real llama.cpp server (llama-cpp-python) serving SmolLM2-135M; the rest
talk to `ScriptedServer`, which answers with queued replies and records what it received.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from servers import (
    LlamaServer,
    Reply,
    ScriptedServer,
    free_port,
    llama_cpp_available,
    openai_chat,
    openai_error,
)

from nanoresearch.config import Settings, load_settings
from nanoresearch.errors import (
    AuthError,
    EndpointUnavailableError,
    LLMTimeoutError,
    ModelNotFoundError,
    NanoResearchError,
    StructuredOutputError,
    TransientLLMError,
)
from nanoresearch.llm.client import LLM
from nanoresearch.llm.openai_compat import OpenAICompatProvider
from nanoresearch.llm.provider import LLMRequest, MalformedReplyError, Message
from nanoresearch.store import Store

FAST_RETRIES = {"max_attempts": 3, "backoff_initial_s": 0.01, "backoff_max_s": 0.05, "replay": "off"}


def make_settings(base_url: str, *, llm: dict[str, Any] | None = None, **endpoint: Any) -> Settings:
    return load_settings(
        {
            "endpoints": {"srv": {"kind": "openai", "base_url": base_url, "timeout_s": 5, **endpoint}},
            "llm": {**FAST_RETRIES, **(llm or {})},
        }
    )


def make_llm(settings: Settings, store: Store, run_id: str | None = None) -> LLM:
    return LLM(settings, store, store.ensure_user(settings.user), run_id=run_id)


# --- against a real llama.cpp server ----------------------------------------------------------


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    if not llama_cpp_available():
        pytest.skip("llama-cpp-python is not installed (pip install 'nanoresearch[dev]')")
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with LlamaServer(log_path=log) as server:
        yield server


@pytest.fixture
def real_llm(llama_server: LlamaServer, store: Store) -> LLM:
    return make_llm(make_settings(llama_server.base_url, timeout_s=120), store)


class Capital(BaseModel):
    country: str
    city: str


@pytest.mark.slow
def test_real_server_plain_completion_returns_text_and_usage(real_llm: LLM, llama_server: LlamaServer) -> None:
    done = real_llm.complete("Say hello in one short sentence.", endpoint="srv", model=llama_server.alias, max_tokens=24)

    assert done.text.strip()
    assert done.prompt_tokens > 0
    assert done.completion_tokens > 0
    assert not done.replayed


@pytest.mark.slow
def test_real_server_structured_output_is_schema_valid(real_llm: LLM, llama_server: LlamaServer) -> None:
    done = real_llm.complete(
        "What is the capital of France? Give the country and its capital city.",
        endpoint="srv",
        model=llama_server.alias,
        schema=Capital,
        max_tokens=64,
    )

    assert isinstance(done.parsed, Capital)
    assert "paris" in done.parsed.city.lower()


@pytest.mark.slow
def test_real_server_refuses_json_schema_so_provider_settles_on_json_object(
    real_llm: LLM, llama_server: LlamaServer
) -> None:
    real_llm.complete("Name one country.", endpoint="srv", model=llama_server.alias, schema=Capital, max_tokens=64)

    # llama.cpp's server only knows {"type": "json_object", "schema": ...}; the provider remembers.
    assert real_llm.provider("srv")._dialects[0] == "json_object"


# --- against the scripted server --------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as scripted:
        yield scripted


@pytest.fixture
def scripted_llm(server: ScriptedServer, store: Store) -> LLM:
    return make_llm(make_settings(server.url + "/v1"), store)


def test_server_error_then_success_is_retried(server: ScriptedServer, scripted_llm: LLM) -> None:
    server.reply(500, openai_error("overloaded", "server_error")).reply(200, openai_chat("fine"))

    done = scripted_llm.complete("hi", endpoint="srv", model="m1")

    assert done.text == "fine"
    assert len(server.requests) == 2
    assert all(r.path == "/v1/chat/completions" for r in server.requests)


def test_rate_limit_that_persists_gives_up_after_max_attempts(server: ScriptedServer, scripted_llm: LLM) -> None:
    server.reply(429, openai_error("slow down", "rate_limit_error"), times=3)

    with pytest.raises(EndpointUnavailableError, match="429") as caught:
        scripted_llm.complete("hi", endpoint="srv", model="m1")

    assert len(server.requests) == scripted_llm.settings.llm.max_attempts == 3
    assert isinstance(caught.value.__cause__, TransientLLMError)


def test_bad_key_is_an_auth_error_with_a_hint_and_no_retry(server: ScriptedServer, scripted_llm: LLM) -> None:
    server.reply(401, openai_error("Incorrect API key provided", "invalid_api_key"))

    with pytest.raises(AuthError) as caught:
        scripted_llm.complete("hi", endpoint="srv", model="m1")

    assert len(server.requests) == 1
    assert "api_key_env" in (caught.value.hint or "")
    assert "Incorrect API key provided" in str(caught.value)


def test_unknown_model_is_model_not_found_and_no_retry(server: ScriptedServer, scripted_llm: LLM) -> None:
    server.reply(404, openai_error("The model `nope` does not exist", "invalid_request_error", "model_not_found"))

    with pytest.raises(ModelNotFoundError, match="nope"):
        scripted_llm.complete("hi", endpoint="srv", model="nope")

    assert len(server.requests) == 1


def test_reply_slower_than_timeout_names_the_timeout_and_its_setting(server: ScriptedServer, store: Store) -> None:
    llm = make_llm(make_settings(server.url + "/v1", timeout_s=0.3, llm={"max_attempts": 2}), store)
    server.reply(200, openai_chat("too late"), delay_s=5, times=2)

    with pytest.raises(EndpointUnavailableError) as caught:
        llm.complete("hi", endpoint="srv", model="m1")

    assert len(server.requests) == 2
    assert isinstance(caught.value.__cause__, LLMTimeoutError)
    assert "no answer from endpoint 'srv' within 0.3 s" in caught.value.message
    assert "raise endpoints.srv.timeout_s in config.toml" in caught.value.message


def test_default_timeout_is_long_for_a_server_on_this_machine_and_short_for_a_remote_api() -> None:
    local = load_settings({"endpoints": {"vllm": {"kind": "openai", "base_url": "http://127.0.0.1:8000/v1"}}})
    chosen = load_settings(
        {"endpoints": {"vllm": {"kind": "openai", "base_url": "http://localhost:8000/v1", "timeout_s": 30}}}
    )

    assert OpenAICompatProvider("vllm", local.endpoint("vllm"))._timeout == 600
    assert OpenAICompatProvider("vllm", chosen.endpoint("vllm"))._timeout == 30
    assert local.endpoint("openai").answer_timeout_s() == 60


def test_unreachable_server_is_endpoint_unavailable_with_a_resume_hint(store: Store, home: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nobody listens there
    settings = make_settings(url)
    user_id = store.ensure_user(settings.user)
    run = store.create_run("run-1", store.ensure_project(user_id, "p"), "goal", str(home / "ws"))

    with pytest.raises(EndpointUnavailableError) as caught:
        make_llm(settings, store, run_id=run.id).complete("hi", endpoint="srv", model="m1")

    assert f"endpoint 'srv' ({url}) failed all 3 attempts" in caught.value.message
    assert "cannot reach" in caught.value.message
    assert "nanoresearch resume run-1" in (caught.value.hint or "")
    assert isinstance(caught.value.__cause__, TransientLLMError)
    assert store.llm_calls(user_id) == []


# What proxies, captive portals and half-started servers answer with HTTP 200.
BAD_BODIES = {
    "empty": Reply(raw=""),
    "html": Reply(raw="<!DOCTYPE html><html><body>Please log in to the Wi-Fi</body></html>", content_type="text/html"),
    "plain text": Reply(raw="upstream connect error", content_type="text/plain"),
    "not JSON, said to be JSON": Reply(raw="{'choices': oops"),
    "JSON without choices": Reply(body={"object": "error", "message": "model is loading"}),
    "JSON with no choice in it": Reply(body={"choices": []}),
    "a JSON list": Reply(body=[1, 2, 3]),
}


@pytest.mark.parametrize("bad", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_malformed_200_reply_is_retried_until_a_proper_one(server: ScriptedServer, scripted_llm: LLM, bad: Reply) -> None:
    server.reply_with(bad).reply(200, openai_chat("fine"))

    done = scripted_llm.complete("hi", endpoint="srv", model="m1")

    assert done.text == "fine"
    assert len(server.requests) == 2


@pytest.mark.parametrize("bad", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_malformed_200_reply_that_persists_is_a_clear_error(server: ScriptedServer, scripted_llm: LLM, bad: Reply) -> None:
    server.reply_with(bad, times=3)

    with pytest.raises(EndpointUnavailableError) as caught:
        scripted_llm.complete("hi", endpoint="srv", model="m1")

    assert len(server.requests) == 3
    cause = caught.value.__cause__
    assert isinstance(cause, MalformedReplyError) and isinstance(cause, TransientLLMError)
    message = caught.value.message
    assert f"{server.url}/v1/chat/completions answered HTTP 200 with" in message
    assert repr(bad.payload().decode().strip()[:20])[:-1] in message  # the start of the body


def test_malformed_reply_error_names_what_came_back(server: ScriptedServer, scripted_llm: LLM) -> None:
    server.reply_with(BAD_BODIES["empty"]).reply_with(BAD_BODIES["html"]).reply_with(BAD_BODIES["JSON without choices"])
    provider = scripted_llm.provider("srv")
    request = LLMRequest(model="m1", messages=[Message(role="user", content="hi")])

    problems = []
    for _ in range(3):
        with pytest.raises(MalformedReplyError) as caught:
            provider.complete(request)
        problems.append(caught.value.message)

    assert "with an empty body" in problems[0]
    assert "with a body that is not JSON" in problems[1] and "<!DOCTYPE html>" in problems[1]
    assert "JSON that is not a chat completion (choices: Field required)" in problems[2]


class Hypothesis(BaseModel):
    hypothesis: str
    rationale: str


CUT = '{"hypothesis": "Augmenting digits with small rot'
WHOLE = '{"hypothesis": "Augmenting digits with small rotations helps", "rationale": "digits vary in slant"}'


def test_a_reply_cut_by_the_token_limit_is_asked_again_with_more_room(
    server: ScriptedServer, scripted_llm: LLM
) -> None:
    server.reply(200, openai_chat(CUT, finish_reason="length")).reply(200, openai_chat(WHOLE))

    done = scripted_llm.complete("propose", endpoint="srv", model="m1", schema=Hypothesis, max_tokens=100)

    assert done.parsed == Hypothesis.model_validate_json(WHOLE)
    assert [r.body["max_tokens"] for r in server.requests] == [100, 200]
    assert server.requests[1].body["messages"] == server.requests[0].body["messages"]  # the same question
    [cut, whole] = scripted_llm.store.llm_calls(scripted_llm.user_id)
    assert cut.failure and "cut off by the token limit" in cut.failure
    assert whole.failure is None


def test_a_reply_always_cut_off_is_never_accepted(server: ScriptedServer, scripted_llm: LLM) -> None:
    server.reply(200, openai_chat(CUT, finish_reason="length"), times=3)

    with pytest.raises(StructuredOutputError, match="cut off by the token limit") as caught:
        scripted_llm.complete("propose", endpoint="srv", model="m1", schema=Hypothesis, max_tokens=100)

    assert isinstance(caught.value, NanoResearchError)
    # The raised limit once, then a repair round that asks for a shorter object.
    assert [r.body["max_tokens"] for r in server.requests] == [100, 200, 200]
    assert "shorter" in server.requests[2].body["messages"][-1]["content"]


def test_a_cut_string_closed_by_brackets_is_not_an_answer_even_without_finish_reason(
    server: ScriptedServer, scripted_llm: LLM
) -> None:
    # A proxy or an older server may say "stop" for a cut reply: the open string still gives it away.
    server.reply(200, openai_chat('{"hypothesis": "Aug", "rationale": "digits vary in sl')).reply(200, openai_chat(WHOLE))

    done = scripted_llm.complete("propose", endpoint="srv", model="m1", schema=Hypothesis, max_tokens=100)

    assert done.parsed.rationale == "digits vary in slant"
    assert "stops before its end" in server.requests[1].body["messages"][-1]["content"]


def test_missing_key_for_a_remote_endpoint_fails_before_any_request(store: Store) -> None:
    settings = make_settings("https://api.example.com/v1", api_key_env="EXAMPLE_API_KEY")
    llm = make_llm(settings, store)

    # A request would be refused by the network guard and surface as a transient error instead.
    with pytest.raises(AuthError, match="EXAMPLE_API_KEY") as caught:
        llm.complete("hi", endpoint="srv", model="m1")

    assert "export EXAMPLE_API_KEY" in (caught.value.hint or "")
    assert store.llm_calls(llm.user_id) == []


def test_api_key_is_sent_but_never_recorded(
    server: ScriptedServer, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-scripted-secret-0123456789"
    monkeypatch.setenv("SCRIPTED_API_KEY", key)
    llm = make_llm(make_settings(server.url + "/v1", api_key_env="SCRIPTED_API_KEY"), store)
    server.reply(200, openai_chat(f"you said {key}"))

    llm.complete(f"my key is {key}", endpoint="srv", model="m1")

    assert server.requests[0].header("Authorization") == f"Bearer {key}"
    [call] = store.llm_calls(llm.user_id)
    recorded = call.model_dump_json()
    assert key not in recorded
    assert "[REDACTED]" in call.request["messages"][-1]["content"]
    assert call.response_text == "you said [REDACTED]"


def test_cost_comes_from_configured_price_and_is_charged_to_the_run(
    server: ScriptedServer, store: Store, home: Path
) -> None:
    settings = load_settings(
        {
            "endpoints": {"srv": {"kind": "openai", "base_url": server.url + "/v1", "timeout_s": 5}},
            "llm": FAST_RETRIES,
            "prices": {"m1": {"input": 1.0, "output": 2.0}},
        }
    )
    user_id = store.ensure_user(settings.user)
    run = store.create_run("run-1", store.ensure_project(user_id, "p"), "goal", str(home / "ws"))
    llm = make_llm(settings, store, run_id=run.id)
    server.reply(200, openai_chat("ok", prompt_tokens=1000, completion_tokens=500))

    done = llm.complete("hi", endpoint="srv", model="m1")

    expected = (1000 * 1.0 + 500 * 2.0) / 1_000_000
    assert done.cost_usd == pytest.approx(expected)
    [call] = store.llm_calls(user_id, run.id)
    assert call.cost_usd == pytest.approx(expected)
    assert store.spent(user_id, run.id) == {"tokens": 1500, "usd": pytest.approx(expected)}
