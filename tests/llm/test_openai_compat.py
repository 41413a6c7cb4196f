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
    ScriptedServer,
    llama_cpp_available,
    openai_chat,
    openai_error,
)

from nanoresearch.config import Settings, load_settings
from nanoresearch.errors import (
    AuthError,
    LLMTimeoutError,
    ModelNotFoundError,
    TransientLLMError,
)
from nanoresearch.llm.client import LLM
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

    with pytest.raises(TransientLLMError, match="429"):
        scripted_llm.complete("hi", endpoint="srv", model="m1")

    assert len(server.requests) == scripted_llm.settings.llm.max_attempts == 3


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


def test_reply_slower_than_timeout_is_a_timeout_error_after_retries(server: ScriptedServer, store: Store) -> None:
    llm = make_llm(make_settings(server.url + "/v1", timeout_s=0.3, llm={"max_attempts": 2}), store)
    server.reply(200, openai_chat("too late"), delay_s=5, times=2)

    with pytest.raises(LLMTimeoutError):
        llm.complete("hi", endpoint="srv", model="m1")

    assert len(server.requests) == 2


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
    run = store.create_run("run-1", store.ensure_project(user_id, "p"), "goal", str(home / "ws"), {})
    llm = make_llm(settings, store, run_id=run.id)
    server.reply(200, openai_chat("ok", prompt_tokens=1000, completion_tokens=500))

    done = llm.complete("hi", endpoint="srv", model="m1")

    expected = (1000 * 1.0 + 500 * 2.0) / 1_000_000
    assert done.cost_usd == pytest.approx(expected)
    [call] = store.llm_calls(user_id, run.id)
    assert call.cost_usd == pytest.approx(expected)
    assert store.spent(user_id, run.id) == {"tokens": 1500, "usd": pytest.approx(expected)}
