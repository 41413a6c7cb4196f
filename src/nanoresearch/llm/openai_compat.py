"""Any OpenAI-compatible chat endpoint: OpenAI, DeepSeek, vLLM, Ollama, llama.cpp server."""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel, Field

from nanoresearch.config import EndpointSettings
from nanoresearch.errors import (
    MissingDependencyError,
    RequestRejectedError,
    TransientLLMError,
)
from nanoresearch.llm.provider import (
    LLMRequest,
    LLMResponse,
    ProviderContext,
    api_key_for,
    error_detail,
    error_for_status,
    no_answer_error,
    parse_reply,
    register,
)
from nanoresearch.llm.structured import server_schema

SCHEMA_DIALECTS = ("json_schema", "json_object", "prompt")
# The dialects each server (by base URL) still accepts, for the life of this process: every provider
# for that server (a client per command, per judge call, per evaluation cell) starts from what the first
# one learnt, instead of paying one refused request (llama.cpp's HTTP 500) per provider.
_DIALECTS_LEFT: dict[str, list[str]] = {}
_DIALECTS_LOCK = threading.Lock()


class ChatMessage(BaseModel):
    content: str | None = None


class ChatChoice(BaseModel):
    message: ChatMessage
    finish_reason: str | None = None


class ChatUsage(BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class ChatReply(BaseModel):
    """What we read of a chat completion; servers add fields of their own, which are ignored."""

    choices: list[ChatChoice] = Field(min_length=1)
    usage: ChatUsage | None = None


class OpenAICompatProvider:
    def __init__(self, name: str, endpoint: EndpointSettings) -> None:
        try:
            import openai
        except ImportError:
            raise MissingDependencyError(
                "the OpenAI SDK is not installed", hint="pip install 'nanoresearch[openai]'"
            ) from None
        self.name = name
        self._openai = openai
        # Our client owns retries (same policy for every provider), so the SDK's are off.
        self._client = openai.OpenAI(
            base_url=endpoint.base_url,
            api_key=api_key_for(name, endpoint) or "no-key-needed",
            timeout=endpoint.answer_timeout_s(),
            max_retries=0,
        )
        self._timeout = endpoint.answer_timeout_s()
        if endpoint.structured == "auto":
            with _DIALECTS_LOCK:
                self._dialects = _DIALECTS_LEFT.setdefault(str(self._client.base_url), list(SCHEMA_DIALECTS))
        else:
            self._dialects = [endpoint.structured]

    def complete(self, request: LLMRequest) -> LLMResponse:
        if request.json_schema is None:
            return self._create(request, "prompt")
        while True:
            dialect = self._dialects[0]
            try:
                return self._create(request, dialect)
            except RequestRejectedError:
                if dialect == "prompt" or len(self._dialects) == 1:
                    raise
                self._refused(dialect)

    def _refused(self, dialect: str) -> None:
        """This server refuses that dialect: remember it (for every provider of the server) and use the next."""
        with _DIALECTS_LOCK:
            if self._dialects[0] == dialect:  # another thread may have learnt it meanwhile
                self._dialects.pop(0)

    def _create(self, request: LLMRequest, dialect: str) -> LLMResponse:
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": [m.model_dump() for m in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.seed is not None:
            kwargs["seed"] = request.seed
        schema = server_schema(request.json_schema) if request.json_schema is not None else None
        if dialect == "json_schema":
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
        elif dialect == "json_object":
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        openai = self._openai
        try:
            # The raw reply: the SDK would hand back an HTML page as a str, or fail inside json().
            raw = self._client.chat.completions.with_raw_response.create(**kwargs)
        except openai.APITimeoutError:
            raise no_answer_error(self.name, self._timeout) from None
        except openai.APIConnectionError as exc:
            raise TransientLLMError(f"{self.name}: cannot reach {self._client.base_url}: {exc}") from None
        except openai.APIStatusError as exc:
            detail = error_detail(exc)
            # llama-cpp-python's server answers a response_format it does not know with HTTP 500.
            status = 422 if exc.status_code == 500 and "response_format" in kwargs and "response_format" in detail else exc.status_code
            raise error_for_status(self.name, request.model, status, detail) from None
        reply = parse_reply(self.name, raw.http_response, ChatReply, "a chat completion")
        choice = reply.choices[0]
        usage = reply.usage or ChatUsage()
        return LLMResponse(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason,
            prompt_tokens=usage.prompt_tokens or 0,
            completion_tokens=usage.completion_tokens or 0,
        )


@register("openai")
def _make(name: str, endpoint: EndpointSettings, ctx: ProviderContext) -> OpenAICompatProvider:
    return OpenAICompatProvider(name, endpoint)
