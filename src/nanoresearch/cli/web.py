"""`nanoresearch ui`: serve the dashboard. FastAPI and uvicorn come from the `web` extra, imported late
so that the rest of the command line works without them."""

from __future__ import annotations

import webbrowser
from typing import Annotated, Optional

import typer

from nanoresearch.cli.common import examples, settings_from
from nanoresearch.errors import UserError
from nanoresearch.web.security import resolve_token

DEFAULT_PORT = 8765


app = typer.Typer()


@app.command("ui", epilog=examples("nanoresearch ui", "nanoresearch ui --port 9000 --open"))
def ui(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = DEFAULT_PORT,
    host: Annotated[str, typer.Option(help="Address to listen on; anything but loopback needs --token.")] = "127.0.0.1",
    token: Annotated[Optional[str], typer.Option(help="Require this token on every request; `auto` generates one.")] = None,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the dashboard in the default browser.")] = False,
) -> None:
    """Watch and audit your runs in a local web page (runs, stage timeline, trial lineage, live)."""
    settings = settings_from(ctx)
    secret = resolve_token(host, token)
    uvicorn, create_app, freeze_loaded_objects = _web_modules()
    dashboard = create_app(settings, secret)
    freeze_loaded_objects()
    url = dashboard_url(host, port, secret)
    typer.echo(f"dashboard for {settings.user}: {url}  (Ctrl-C stops it)")
    if open_browser:
        webbrowser.open(url)
    # A short graceful shutdown: an open page holds its event stream forever and would block Ctrl-C.
    uvicorn.run(dashboard, host=host, port=port, log_level="warning", timeout_graceful_shutdown=1)


def dashboard_url(host: str, port: int, token: str | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def _web_modules():  # noqa: ANN202 - uvicorn and the app's builders
    try:
        import uvicorn

        from nanoresearch.web.app import create_app, freeze_loaded_objects
    except ImportError as exc:
        raise UserError(f"the dashboard needs the web extra ({exc.name} is missing)",
                        hint="pip install 'nanoresearch[web]'") from None
    return uvicorn, create_app, freeze_loaded_objects
