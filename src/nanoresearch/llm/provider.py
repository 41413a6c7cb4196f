"""The LLM plug point: one small protocol, request/response models, a registry by name.

A provider turns one `LLMRequest` into one `LLMResponse`. Everything around a call (retries,
recording, replay, schema validation and repair, cost) lives in `client.py`, so a new provider
only has to speak its API.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, Field, ValidationError

from nanoresearch.config import is_loopback_url
from nanoresearch.errors import (
    AuthError,
    FatalLLMError,
    LLMTimeoutError,
    ModelNotFoundError,
    RequestRejectedError,
    TransientLLMError,
)
from nanoresearch.plugins import PROVIDERS_GROUP, Registry

if TYPE_CHECKING:
    from nanoresearch.config import EndpointSettings, Settings

ReplyShape = TypeVar("ReplyShape", bound=BaseModel)
BODY_PREVIEW_CHARS = 120


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class LLMRequest(BaseModel):
    model: str
    messages: list[Message]
    temperature: float = 0.0
    max_tokens: int = 512
    # When set, the provider should make the output conform (server JSON mode, constrained
    # decoding); the client validates and repairs whatever comes back either way.
    json_schema: dict[str, Any] | None = None
    seed: int | None = None

    def params(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "json_schema": self.json_schema,
            "seed": self.seed,
        }


class LLMResponse(BaseModel):
    text: str
    finish_reason: str | None = None
    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)
    # Exact token ids, where the provider has them (local models): the policy trains on these.
    prompt_ids: list[int] | None = None
    output_ids: list[int] | None = None


class Provider(Protocol):
    name: str

    def complete(self, request: LLMRequest) -> LLMResponse: ...


@dataclass
class ProviderContext:
    """What a provider factory may need besides its endpoint settings."""

    settings: Settings
    # Loads the user's planner with adapter version "vN" (given by the policy layer, which sits
    # above llm/: a model named `BASE+lora:vN` cannot be served without it).
    adapters: Callable[[str], Any] | None = None


ProviderFactory = Callable[[str, "EndpointSettings", ProviderContext], Provider]


# The `kind` of an endpoint names one of these: the built-ins, which llm/__init__.py imports, and
# the kinds plug-ins add (see nanoresearch.plugins).
PROVIDERS: Registry[ProviderFactory] = Registry(PROVIDERS_GROUP, "provider kind")
register = PROVIDERS.register


def provider_kinds() -> list[str]:
    return PROVIDERS.names()


def create_provider(name: str, endpoint: EndpointSettings, ctx: ProviderContext) -> Provider:
    factory = PROVIDERS.lookup(endpoint.kind, **_naming(name, endpoint, ctx.settings))
    return factory(name, endpoint, ctx)


def check_endpoint_kinds(settings: Settings) -> None:
    """Every configured endpoint names a known provider kind (no plug-in is imported for this).

    The settings cannot check it when they load (config sits below llm/), so whoever is about to
    call models checks it first: a typo then stops a run at once, not at the endpoint's first call.
    """
    for name, endpoint in settings.endpoints.items():
        PROVIDERS.require(endpoint.kind, **_naming(name, endpoint, settings))


def _naming(name: str, endpoint: EndpointSettings, settings: Settings) -> dict[str, str]:
    # An unknown kind's error names the setting, the file that holds it and how to fix it.
    return {
        "where": f" for endpoint {name!r} (endpoints.{name}.kind)",
        "fix": f"set endpoints.{name}.kind in {settings.config_file} to one of them, or install the plug-in "
        f"package that provides {endpoint.kind!r} (entry point group {PROVIDERS_GROUP})",
    }


def error_for_status(endpoint: str, model: str, status: int, detail: str) -> Exception:
    """Map an HTTP status from any vendor API to our error taxonomy (retryable or not)."""
    detail = detail.strip().replace("\n", " ")[:300]
    if status in (401, 403):
        return AuthError(
            f"{endpoint}: the server refused the API key (HTTP {status}): {detail}",
            hint="check the key in the environment variable named by this endpoint's api_key_env",
        )
    if status == 404:
        return ModelNotFoundError(
            f"{endpoint}: model {model!r} or the API path was not found (HTTP 404): {detail}",
            hint="check the model name for this stage and the endpoint's base_url",
        )
    if status in (408, 409, 429) or status >= 500:
        return TransientLLMError(f"{endpoint}: HTTP {status}: {detail}")
    if status in (400, 422):
        return RequestRejectedError(f"{endpoint}: the server rejected the request (HTTP {status}): {detail}")
    return FatalLLMError(f"{endpoint}: unexpected HTTP {status}: {detail}")


def api_key_for(endpoint_name: str, endpoint: EndpointSettings) -> str | None:
    """The endpoint's key from the environment. Servers on this machine may go without one."""
    key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
    if key:
        return key
    if is_loopback_url(endpoint.base_url):
        return None
    variable = endpoint.api_key_env or f"{endpoint_name.upper()}_API_KEY"
    raise AuthError(
        f"endpoint {endpoint_name!r} needs an API key and {variable} is not set",
        hint=f"export {variable}=... (or set api_key_env for [endpoints.{endpoint_name}] in config.toml)",
    )


def error_detail(exc: Any) -> str:
    """The server's own error message from an SDK status error, whatever the vendor."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message") or error)
        return str(error)
    return str(getattr(exc, "message", exc))


class MalformedReplyError(TransientLLMError):
    """HTTP 200 with a body that is not the API's reply: empty, an HTML page, plain text, other JSON.

    Proxies, captive portals and servers still loading a model answer like this, so it is worth
    another attempt; the message says what came back instead.
    """


def parse_reply(endpoint: str, http: Any, shape: type[ReplyShape], expected: str) -> ReplyShape:
    """The body of `http` (an httpx.Response) read as `shape`, the fields a provider uses.

    Anything else is a MalformedReplyError naming the endpoint's URL, the status and the start of
    the body; `expected` names the shape in it ("a chat completion").
    """
    url, status, body = str(http.url), http.status_code, http.text
    if not body.strip():
        problem = "an empty body"
    else:
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            problem = "a body that is not JSON"
        else:
            try:
                return shape.model_validate(data)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "(root)"
                problem = f"JSON that is not {expected} ({where}: {first['msg']})"
    preview = body.strip()[:BODY_PREVIEW_CHARS]
    raise MalformedReplyError(f"{endpoint}: {url} answered HTTP {status} with {problem}; the body starts {preview!r}")


def no_answer_error(endpoint: str, timeout_s: float) -> LLMTimeoutError:
    """The timeout, and the setting that changes it: slow servers (a model on a CPU) need more."""
    return LLMTimeoutError(
        f"no answer from endpoint {endpoint!r} within {timeout_s:g} s; "
        f"raise endpoints.{endpoint}.timeout_s in config.toml",
        hint="a model served on a CPU can take minutes per call",
    )
