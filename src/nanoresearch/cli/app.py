"""The `nanoresearch` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nanoresearch import __version__
from nanoresearch.cli.knowledge import register as register_knowledge
from nanoresearch.cli.literature import app as literature_app
from nanoresearch.cli.policy import register as register_policy
from nanoresearch.cli.profile import register as register_profile
from nanoresearch.cli.research import register as register_pipeline
from nanoresearch.cli.trials import app as trials_app
from nanoresearch.cli.web import register as register_web
from nanoresearch.config import (
    STAGES,
    Settings,
    init_config_file,
    load_settings,
    settings_as_toml,
)
from nanoresearch.errors import NanoResearchError, UserError

app = typer.Typer(
    name="nanoresearch",
    help="Automated research that co-evolves with you: literature, experiments, a reviewed paper.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Show or create the configuration.", no_args_is_help=True)
llm_app = typer.Typer(help="Talk to a configured model directly.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(llm_app, name="llm")
app.add_typer(trials_app, name="trials")
app.add_typer(literature_app, name="literature")
register_pipeline(app)
register_policy(app)
register_knowledge(app)
register_profile(app)
register_web(app)

out = Console()
err = Console(stderr=True, soft_wrap=True)  # paths in messages must stay copyable


def _version(value: bool) -> None:
    if value:
        out.print(f"nanoresearch {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    home: Annotated[Optional[Path], typer.Option(help="Home folder (default ~/.nanoresearch or $NANORESEARCH_HOME).")] = None,
    user: Annotated[Optional[str], typer.Option(help="Act as this user (default: your login name).")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    ctx.obj = {"home": str(home) if home else None, "user": user}


def settings_from(ctx: typer.Context, **overrides: Any) -> Settings:
    return load_settings({**(ctx.obj or {}), **overrides})


# config


@config_app.command("show")
def config_show(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Print the effective settings (file, environment and flags merged)."""
    settings = settings_from(ctx)
    if as_json:
        out.print_json(settings.model_dump_json())
    else:
        err.print(f"# from {settings.config_file}{'' if settings.config_file.exists() else ' (not created yet)'}")
        out.print(settings_as_toml(settings), markup=False, highlight=False)


@config_app.command("init")
def config_init(ctx: typer.Context, force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False) -> None:
    """Write a starting config.toml in the home folder."""
    home = (ctx.obj or {}).get("home")
    path = init_config_file(Path(home) if home else None, force=force)
    out.print(f"wrote {path}")


# doctor


@app.command()
def doctor(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
    no_model: Annotated[bool, typer.Option("--no-model", help="Find the local model but do not load it.")] = False,
) -> None:
    """Check every dependency and service NanoResearch can use, with a fix for each missing one."""
    from nanoresearch.doctor import healthy, run_checks

    settings = settings_from(ctx)
    checks = run_checks(settings, load_model=not no_model)
    if as_json:
        out.print_json(json.dumps([c.model_dump() for c in checks]))
    else:
        table = Table(title=f"nanoresearch {__version__} — doctor", show_lines=False)
        for column in ("", "check", "found", "fix"):
            table.add_column(column)
        for c in checks:
            mark = "[green]ok[/]" if c.ok else ("[red]FAIL[/]" if c.required else "[yellow]missing[/]")
            table.add_row(mark, escape(c.name), escape(c.detail), "" if c.ok else escape(c.hint))
        out.print(table)
    if not healthy(checks):
        raise typer.Exit(1)


# llm


@llm_app.command("export")
def llm_export(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSON file to write.")],
) -> None:
    """Write a run's recorded LLM calls to a file, to replay the run elsewhere."""
    from nanoresearch.llm.replay import export_recording
    from nanoresearch.runs import users_run
    from nanoresearch.store import Store

    settings = settings_from(ctx)
    with Store(settings.db_path) as store:
        user_id = store.ensure_user(settings.user)
        recording = export_recording(store, user_id, users_run(store, user_id, run_id).id)
    output.write_text(json.dumps(recording, indent=1), encoding="utf-8")
    err.print(f"wrote {len(recording['calls'])} calls to {output}")


@llm_app.command("import")
def llm_import(ctx: typer.Context, path: Annotated[Path, typer.Argument(help="A recording from `llm export`.")]) -> None:
    """Load a recording so that its calls replay (with llm.replay = "only" or "prefer")."""
    from nanoresearch.llm.replay import import_recording
    from nanoresearch.store import Store

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the recording {path}: {exc}") from None
    settings = settings_from(ctx)
    with Store(settings.db_path) as store:
        count = import_recording(store, store.ensure_user(settings.user), data)
    err.print(f"imported {count} calls for {settings.user}")


@llm_app.command("ask")
def llm_ask(
    ctx: typer.Context,
    prompt: Annotated[str, typer.Argument(help="What to ask.")],
    provider: Annotated[Optional[str], typer.Option("--provider", "-p", help="Endpoint name (local, openai, deepseek, anthropic, …), or replay / replay:NAME to answer only from recordings.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Model name; default: the stage's or the endpoint's.")] = None,
    stage: Annotated[str, typer.Option(help=f"Stage whose model settings to use: {', '.join(STAGES)}.")] = "planning",
    schema: Annotated[Optional[Path], typer.Option(help="JSON schema file; the reply is validated against it.")] = None,
    system: Annotated[Optional[str], typer.Option(help="System message.")] = None,
    max_tokens: Annotated[Optional[int], typer.Option(min=1, help="Most tokens to generate.")] = None,
    temperature: Annotated[Optional[float], typer.Option(min=0.0, max=2.0, help="Sampling temperature (0 = greedy).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reply with usage, cost and latency as JSON.")] = False,
) -> None:
    """Ask a model one question and print the answer (recorded in the store, replayable)."""
    from nanoresearch.llm.client import LLM
    from nanoresearch.llm.provider import Message
    from nanoresearch.store import Store

    settings = settings_from(ctx)
    endpoint = provider or settings.stage(stage).endpoint
    json_schema = read_schema(schema) if schema else None
    messages = ([Message(role="system", content=system)] if system else []) + [Message(role="user", content=prompt)]
    with Store(settings.db_path) as store:
        llm = LLM(settings, store, store.ensure_user(settings.user))
        model = model or llm.default_model(stage, endpoint)
        with err.status(f"asking {endpoint}/{model} …"):
            reply = llm.complete(messages, stage=stage, endpoint=provider, model=model, schema=json_schema,
                                 max_tokens=max_tokens, temperature=temperature)
    if as_json:
        out.print_json(reply.model_dump_json())
        return
    if json_schema is not None:
        out.print_json(json.dumps(reply.parsed))
    else:
        out.print(reply.text, markup=False, highlight=False)
    cost = "unknown cost" if reply.cost_usd is None else f"${reply.cost_usd:.6f}"
    source = "replayed from the store" if reply.replayed else f"{reply.latency_s:.1f} s"
    err.print(f"[dim]{reply.provider}/{reply.model} · {reply.prompt_tokens}+{reply.completion_tokens} tokens · {cost} · {source}[/]")


def read_schema(path: Path) -> dict[str, Any]:
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"schema file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"schema file {path} cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"schema file {path} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(schema, dict):
        raise UserError(f"schema file {path} must hold a JSON object (a JSON schema)")
    from nanoresearch.llm.structured import check_schema

    check_schema(schema)
    return schema


def main() -> None:
    try:
        app()
    except NanoResearchError as exc:
        err.print(f"[red]error:[/] {escape(exc.message)}", highlight=False)
        if exc.hint:
            err.print(f"[dim]hint: {escape(exc.hint)}[/]", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
