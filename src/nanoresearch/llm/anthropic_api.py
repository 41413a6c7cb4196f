"""Anthropic's Messages API. Structured output goes through a forced tool call."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from nanoresearch.config import EndpointSettings
from nanoresearch.errors import (
    MissingDependencyError,
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

TOOL_NAME = "reply"


class ContentBlock(BaseModel):
    type: str
    text: str = ""
    input: Any = None


class MessageUsage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0


class MessageReply(BaseModel):
    """What we read of a Messages API reply."""

    content: list[ContentBlock]
    stop_reason: str | None = None
    usage: MessageUsage = MessageUsage()


class AnthropicProvider:
    def __init__(self, name: str, endpoint: EndpointSettings) -> None:
        try:
            import anthropic
        except ImportError:
            raise MissingDependencyError(
                "the Anthropic SDK is not installed", hint="pip install 'nanoresearch[anthropic]'"
            ) from None
        self.name = name
        self._anthropic = anthropic
        self._client = anthropic.Anthropic(
            api_key=api_key_for(name, endpoint) or "no-key-needed",
            base_url=endpoint.base_url,
            timeout=endpoint.answer_timeout_s(),
            max_retries=0,
        )
        self._timeout = endpoint.answer_timeout_s()

    def complete(self, request: LLMRequest) -> LLMResponse:
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        kwargs: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "extra_body": {"temperature": request.temperature},  # anthropic>=1 dropped the keyword; the API still takes it
            "messages": [m.model_dump() for m in request.messages if m.role != "system"],
        }
        if system:
            kwargs["system"] = system
        if request.json_schema is not None:
            kwargs["tools"] = [
                {"name": TOOL_NAME, "description": "Return the answer.", "input_schema": request.json_schema}
            ]
            kwargs["tool_choice"] = {"type": "tool", "name": TOOL_NAME}
        anthropic = self._anthropic
        try:
            # The raw reply: the SDK would fail inside json() on an empty or HTML body.
            raw = self._client.messages.with_raw_response.create(**kwargs)
        except anthropic.APITimeoutError:
            raise no_answer_error(self.name, self._timeout) from None
        except anthropic.APIConnectionError as exc:
            raise TransientLLMError(f"{self.name}: cannot reach the API: {exc}") from None
        except anthropic.APIStatusError as exc:
            raise error_for_status(self.name, request.model, exc.status_code, error_detail(exc)) from None
        reply = parse_reply(self.name, raw.http_response, MessageReply, "a Messages API reply")
        return LLMResponse(
            text=_reply_text(reply.content),
            # One name across providers for a reply cut by the token limit: the client never accepts one.
            finish_reason="length" if reply.stop_reason == "max_tokens" else reply.stop_reason,
            prompt_tokens=reply.usage.input_tokens,
            completion_tokens=reply.usage.output_tokens,
        )


def _reply_text(blocks: list[ContentBlock]) -> str:
    for block in blocks:
        if block.type == "tool_use":
            return json.dumps(block.input)
    return "".join(block.text for block in blocks if block.type == "text")


@register("anthropic")
def _make(name: str, endpoint: EndpointSettings, ctx: ProviderContext) -> AnthropicProvider:
    return AnthropicProvider(name, endpoint)
