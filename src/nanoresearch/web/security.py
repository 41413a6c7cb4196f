"""Who may ask, and what they may read: the token gate, the Host check and workspace-bound artifact paths."""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

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

    def __init__(self, app, token: str | None) -> None:  # noqa: ANN001 - the ASGI app
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
        return given is not None and secrets.compare_digest(given.encode(), self.token.encode())


def _token_cookie(response: Response, token: str) -> Response:
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
    return response


def _with_page_policy(response: Response) -> Response:
    response.headers.setdefault("content-security-policy", PAGE_POLICY)
    response.headers["x-content-type-options"] = "nosniff"
    response.headers["referrer-policy"] = "no-referrer"
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
