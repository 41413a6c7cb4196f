"""Who may ask, and what they may read: the token gate, the Host check and workspace-bound artifact paths."""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp

from nanoresearch.errors import UserError

TOKEN_COOKIE = "nanoresearch_token"
TOKEN_HEADER = "x-nanoresearch-token"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
# Inline scripts are never allowed: even if escaping failed somewhere, injected <script> would not run.
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token: str | None) -> str | None:
    """The token the server will demand: none on loopback unless given; `auto` makes one up.

    Anyone on the network could read every run otherwise, so a non-loopback host without a token is refused."""
    if token == "auto":
        return secrets.token_urlsafe(24)
    if token is not None and len(token) < 16:
        raise UserError("the token is too short to protect the dashboard (16 characters at least)",
                        hint="use --token auto to have one generated and printed")
    if token is None and not is_loopback_host(host):
        raise UserError(f"refusing to listen on {host} without a token: anyone who can reach it could read your runs",
                        hint="add --token auto (a token is generated and printed), or --token SECRET")
    return token


class TokenGate(BaseHTTPMiddleware):
    """With a token: every request carries it (cookie or header); `?token=` once sets the cookie.

    Without one (loopback only): the Host must be a loopback name, so that a web page the user visits
    cannot reach the dashboard by pointing its own domain at 127.0.0.1 (DNS rebinding)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if self.token is None:
            if not is_loopback_host(request.url.hostname or ""):
                return PlainTextResponse("this dashboard answers on localhost only", status_code=403)
            return _with_page_policy(await call_next(request))
        if self._matches(request.query_params.get("token")):
            return _token_cookie(RedirectResponse(str(request.url.remove_query_params("token")), status_code=303), self.token)
        if not (self._matches(request.cookies.get(TOKEN_COOKIE)) or self._matches(request.headers.get(TOKEN_HEADER))):
            return PlainTextResponse("a token is required: open the URL that `nanoresearch ui` printed", status_code=401)
        return _with_page_policy(await call_next(request))

    def _matches(self, given: str | None) -> bool:
        return given is not None and self.token is not None and secrets.compare_digest(given.encode(), self.token.encode())


def _token_cookie(response: Response, token: str) -> Response:
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
    return response


def _with_page_policy(response: Response) -> Response:
    response.headers.setdefault("content-security-policy", PAGE_POLICY)
    response.headers["x-content-type-options"] = "nosniff"
    # Never tell another site what was open; our own forms keep their Origin (with no-referrer they send "null").
    response.headers["referrer-policy"] = "same-origin"
    return response


def artifact_path(workspace: str, relative: str) -> Path | None:
    """The file `relative` names inside the workspace, or None when it is missing or would leave it
    (`..`, an absolute path, or a symlink pointing out: the resolved path must stay inside)."""
    root = Path(workspace).resolve()
    if Path(relative).is_absolute():
        return None
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


CSRF_FIELD = "csrf"
MAX_FORM_BYTES = 64 * 1024  # a comment, not an upload


class Forbidden(Exception):
    """A POST that did not come from one of our own pages."""


async def checked_form(request: Request, csrf_token: str) -> dict[str, str]:
    """The fields of a POSTed form, once it is shown to come from a page we served.

    Our pages carry a per-server token in each form; another site can make the browser POST here (with
    the user's cookie) but cannot read our pages to learn the token. The Origin, when sent, must be us
    ("null", which a page can ask its browser to send, is not us)."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Forbidden("the request came from another site")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Forbidden("the form is too large")
    fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True).items()}
    given = fields.pop(CSRF_FIELD, "")
    if not secrets.compare_digest(given.encode(), csrf_token.encode()):
        raise Forbidden("the form's CSRF token is missing or wrong: reload the page and send it again")
    return fields
