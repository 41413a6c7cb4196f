"""The token gate, the loopback rule and the workspace bound on artifact paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from web_world import World, secret_from_run

from nanoresearch.errors import UserError
from nanoresearch.web.app import create_app
from nanoresearch.web.security import TOKEN_COOKIE, TOKEN_HEADER, artifact_path, resolve_token

TOKEN = "a-long-enough-test-token"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_no_token(host: str) -> None:
    assert resolve_token(host, None) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "example.org", "::"])
def test_a_non_loopback_host_without_a_token_is_refused(host: str) -> None:
    with pytest.raises(UserError, match="without a token"):
        resolve_token(host, None)


def test_auto_generates_a_token_and_a_short_one_is_refused() -> None:
    first, second = resolve_token("0.0.0.0", "auto"), resolve_token("0.0.0.0", "auto")
    assert first != second and len(first) >= 24
    with pytest.raises(UserError, match="too short"):
        resolve_token("0.0.0.0", "abc")
    assert resolve_token("0.0.0.0", TOKEN) == TOKEN


@pytest.fixture
def gated(world: World) -> TestClient:
    return TestClient(create_app(world.settings, TOKEN), base_url="http://192.168.1.5")


@pytest.mark.parametrize("url", ["/", "/runs/{run}", "/runs/{run}/events", "/runs/{run}/files/log.jsonl",
                                 "/static/live.js"])
def test_with_a_token_every_request_needs_it(gated: TestClient, world: World, url: str) -> None:
    filled = url.format(run=world.run.id)
    assert gated.get(filled).status_code == 401
    assert gated.get(filled, headers={TOKEN_HEADER: "wrong-token-of-some-length"}).status_code == 401
    if not filled.endswith("/events"):  # the stream never ends; its refusal above is what matters
        assert gated.get(filled, headers={TOKEN_HEADER: TOKEN}).status_code == 200


def test_the_printed_url_sets_a_cookie_that_later_requests_carry(gated: TestClient, world: World) -> None:
    first = gated.get(f"/?token={TOKEN}", follow_redirects=False)
    assert first.status_code == 303 and "token" not in first.headers["location"]
    assert first.cookies[TOKEN_COOKIE] == TOKEN
    assert gated.get(f"/runs/{world.run.id}").status_code == 200  # the client kept the cookie


def test_without_a_token_only_loopback_host_names_are_answered(world: World) -> None:
    """A site rebinding its own name to 127.0.0.1 sends its own Host header: refused."""
    app = create_app(world.settings)
    assert TestClient(app, base_url="http://evil.example").get("/").status_code == 403
    assert TestClient(app, base_url="http://localhost:8765").get("/").status_code == 200


def test_artifact_path_stays_inside_the_workspace(world: World) -> None:
    workspace = Path(world.run.workspace)
    (workspace / "escape").symlink_to(world.other.workspace)
    (workspace / "link.txt").symlink_to(Path(world.other.workspace) / "secret.txt")
    (workspace / "inner.svg").symlink_to(workspace / "figures" / "curve.svg")  # a link inside is fine
    outside = secret_from_run(world)
    assert (workspace / outside).is_file()  # the probe would reach a real file without the check
    for relative in (outside, "figures/../" + outside, str(Path(world.other.workspace) / "secret.txt"),
                     "escape/secret.txt", "link.txt", "figures", "nothing.png"):
        assert artifact_path(world.run.workspace, relative) is None, relative
    assert artifact_path(world.run.workspace, "figures/curve.svg") == (workspace / "figures" / "curve.svg").resolve()
    assert artifact_path(world.run.workspace, "inner.svg") is not None
