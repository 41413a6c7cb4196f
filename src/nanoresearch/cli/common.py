"""What every command shares: the console pair, the session a command works in (settings, store,
user) and how our errors reach the user (message, hint, exit code)."""

from __future__ import annotations

from typing import NamedTuple

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape

from nanoresearch.config import Settings, load_settings
from nanoresearch.errors import (
    ConfigError,
    LiteratureError,
    LLMError,
    NanoResearchError,
    StoreError,
    UserError,
)
from nanoresearch.runs import users_run
from nanoresearch.store import Store
from nanoresearch.store.models import Run

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)  # paths in messages must stay copyable


def settings_from(ctx: typer.Context) -> Settings:
    """The settings for this invocation: file, environment, then the global flags (--home, --user)."""
    return load_settings(ctx.obj or {})


def short(text: str, width: int) -> str:
    """Text on one line, cut to `width` characters with an ellipsis: for table cells and tree labels."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class Session(NamedTuple):
    """What a command that reads or writes the store works with. Closing it closes the store;
    it unpacks as `settings, store, user_id`."""

    settings: Settings
    store: Store
    user_id: int

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.close()


def session(ctx: typer.Context) -> Session:
    """Load the settings, open the store and make sure the acting user exists in it: the one way a
    command gets at the store, as `with session(ctx) as (settings, store, user_id):`."""
    settings = settings_from(ctx)
    store = Store(settings.db_path)
    return Session(settings, store, store.ensure_user(settings.user))


def open_run(ctx: typer.Context, run_id: str | None) -> tuple[Session, Run]:
    """The session and the user's run with this id (their latest without one); never another user's.
    The store stays open for the rest of the command."""
    opened = session(ctx)
    return opened, users_run(opened.store, opened.user_id, run_id)


class Failure(BaseModel):
    """An error as the user sees it: one message, one fix, one exit code."""

    message: str
    hint: str
    exit_code: int


# The fix to suggest when an error carries none of its own; the most specific class wins.
FALLBACK_HINTS: dict[type[NanoResearchError], str] = {
    ConfigError: "change the setting named above, or remove it to get its default (docs/configuration.md lists them all)",
    UserError: "add --help to the command to see what it accepts",
    StoreError: "`nanoresearch doctor` checks the store and says how to fix it",
    LLMError: "`nanoresearch doctor` checks each configured endpoint and model",
    LiteratureError: "try again later, or search offline with --offline --corpus DIR",
    NanoResearchError: "`nanoresearch doctor` checks every dependency and service",
}


def failure(exc: NanoResearchError) -> Failure:
    """How an error of ours is shown: its own message and hint (or its class's), its class's exit code."""
    fallback = next(FALLBACK_HINTS[cls] for cls in type(exc).__mro__ if cls in FALLBACK_HINTS)
    return Failure(message=exc.message, hint=exc.hint or fallback, exit_code=exc.exit_code)


def report(exc: NanoResearchError) -> int:
    """Print the error as `error: …` and `hint: …` on stderr, never a traceback; return its exit code."""
    shown = failure(exc)
    err.print(f"[red]error:[/] {escape(shown.message)}", highlight=False)
    err.print(f"[dim]hint: {escape(shown.hint)}[/]", highlight=False)
    return shown.exit_code
