"""Any OpenAI-compatible chat endpoint: OpenAI, DeepSeek, vLLM, Ollama, llama.cpp server."""

from __future__ import annotations

from typing import Any

from nanoresearch.config import EndpointSettings
from nanoresearch.errors import (
    LLMTimeoutError,
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
    register,
)

SCHEMA_DIALECTS = ("json_schema", "json_object", "prompt")


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
            timeout=endpoint.timeout_s,
            max_retries=0,
        )
        self._timeout = endpoint.timeout_s
        self._dialects = list(SCHEMA_DIALECTS) if endpoint.structured == "auto" else [endpoint.structured]

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
                self._dialects.pop(0)  # this server refuses that dialect; remember and try the next

    def _create(self, request: LLMRequest, dialect: str) -> LLMResponse:
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": [m.model_dump() for m in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if dialect == "json_schema":
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": request.json_schema},
            }
        elif dialect == "json_object":
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        openai = self._openai
        try:
            reply = self._client.chat.completions.create(**kwargs)
        except openai.APITimeoutError:
            raise LLMTimeoutError(f"{self.name}: no reply within {self._timeout:g} s") from None
        except openai.APIConnectionError as exc:
            raise TransientLLMError(f"{self.name}: cannot reach {self._client.base_url}: {exc}") from None
        except openai.APIStatusError as exc:
            detail = error_detail(exc)
            # llama-cpp-python's server answers a response_format it does not know with HTTP 500.
            status = 422 if exc.status_code == 500 and "response_format" in kwargs and "response_format" in detail else exc.status_code
            raise error_for_status(self.name, request.model, status, detail) from None
        if not reply.choices:
            raise TransientLLMError(f"{self.name}: the reply has no choices")
        choice = reply.choices[0]
        usage = reply.usage
        return LLMResponse(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )


@register("openai")
def _make(name: str, endpoint: EndpointSettings, ctx: ProviderContext) -> OpenAICompatProvider:
    return OpenAICompatProvider(name, endpoint)
