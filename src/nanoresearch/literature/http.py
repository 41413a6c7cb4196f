"""What the HTTP sources share: one request helper that maps failures to our errors, and response checks.

Secrets (API keys) travel in headers or query parameters. They never appear in our messages, and a
logging filter removes them from httpx's own request log lines, which print the full URL.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from nanoresearch import __version__
from nanoresearch.errors import LiteratureError

USER_AGENT = f"nanoresearch/{__version__} (literature search; python-httpx)"
DEFAULT_TIMEOUT_S = 20.0
_SECRET_PARAMS = re.compile(r"((?<![a-z0-9])(?:api_key|apikey|key|token)=)[^&\s\"']+", re.I)

Model = TypeVar("Model", bound=BaseModel)


class SourceUnavailable(LiteratureError):
    """Worth retrying: timeouts, dropped connections, rate limits (429) and server errors (5xx)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(arg) for arg in record.args)
        record.msg = _redact_arg(record.msg)
        return True


def _redact_arg(arg: object) -> object:
    # Only text and URLs can hold a key; numbers must stay numbers for %d in the format string.
    if isinstance(arg, (str, httpx.URL)):
        text = str(arg)
        redacted = _SECRET_PARAMS.sub(r"\1[redacted]", text)
        return redacted if redacted != text else arg
    return arg


logging.getLogger("httpx").addFilter(_RedactSecrets())


def new_client() -> httpx.Client:
    return httpx.Client(headers={"User-Agent": USER_AGENT}, follow_redirects=True)


def get(
    client: httpx.Client,
    source: str,
    url: str,
    *,
    params: Mapping[str, str | int],
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
    secrets: Sequence[str] = (),
    auth_hint: str | None = None,
) -> httpx.Response:
    """GET that answers a 2xx response or raises: SourceUnavailable when retrying may help, else LiteratureError."""
    try:
        response = client.get(
            url, params=params, headers={"User-Agent": USER_AGENT, **(headers or {})}, timeout=timeout_s
        )
    except httpx.TimeoutException:
        raise SourceUnavailable(f"{source}: no answer within {timeout_s:g} s") from None
    except httpx.TransportError as exc:
        raise SourceUnavailable(f"{source}: cannot connect ({type(exc).__name__}: {_redact(str(exc), secrets)})") from None
    status = response.status_code
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        reason = "rate limited (HTTP 429)" if status == 429 else f"server error (HTTP {status})"
        wait = f", asks to wait {retry_after:g} s" if retry_after is not None else ""
        raise SourceUnavailable(f"{source}: {reason}{wait}", retry_after=retry_after)
    if status >= 400:
        detail = _redact(" ".join(response.text.split())[:200], secrets)
        hint = auth_hint if status in (401, 403) else None
        raise LiteratureError(f"{source}: request refused (HTTP {status}): {detail}", hint=hint)
    return response


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _SECRET_PARAMS.sub(r"\1[redacted]", text)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: either a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def read_json(response: httpx.Response, source: str) -> Any:
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type")
        raise LiteratureError(f"{source}: the response is not JSON ({kind}): {response.text[:80]!r}") from None


def parse_model(model: type[Model], data: Any, source: str) -> Model:
    """Validate a decoded response against the shape we rely on; name the first bad field if it fails."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "top level"
        raise LiteratureError(
            f"{source}: malformed response at {where}: {first['msg']} ({exc.error_count()} problem(s))"
        ) from None
