"""`nanoresearch ui`: refuses an unprotected public address with a clear message, prints where it listens."""

from __future__ import annotations

from typer.testing import CliRunner

from nanoresearch.cli import app
from nanoresearch.cli.web import dashboard_url


def test_ui_refuses_a_non_loopback_host_without_a_token() -> None:
    result = CliRunner().invoke(app, ["ui", "--host", "0.0.0.0"])
    assert result.exit_code != 0
    assert "without a token" in str(result.exception) or "without a token" in result.output


def test_ui_is_listed_with_its_options() -> None:
    result = CliRunner().invoke(app, ["ui", "--help"])
    assert result.exit_code == 0
    for option in ("--port", "--host", "--token", "--open"):
        assert option in result.output


def test_the_printed_url_carries_the_token_and_brackets_ipv6() -> None:
    assert dashboard_url("127.0.0.1", 8765, None) == "http://127.0.0.1:8765/"
    assert dashboard_url("::1", 9000, "tok") == "http://[::1]:9000/?token=tok"
