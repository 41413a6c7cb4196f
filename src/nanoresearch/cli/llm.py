"""`nanoresearch llm ask | export | import`: talk to a configured model directly, move recordings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from nanoresearch.cli.common import err, examples, out, session
from nanoresearch.config import MODEL_ROLES
from nanoresearch.errors import UserError

app = typer.Typer(help="Talk to a configured model directly.", no_args_is_help=True)


@app.command("export", epilog=examples("nanoresearch llm export RUN -o run.json"))
def llm_export(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSON file to write.")],
) -> None:
    """Write a run's recorded LLM calls to a file, to replay the run elsewhere."""
    from nanoresearch.llm.replay import export_recording
    from nanoresearch.runs import users_run

    with session(ctx) as (_, store, user_id):
        recording = export_recording(store, user_id, users_run(store, user_id, run_id).id)
    output.write_text(json.dumps(recording, indent=1), encoding="utf-8")
    err.print(f"wrote {len(recording['calls'])} calls to {output}")


@app.command("import", epilog=examples("nanoresearch llm import run.json"))
def llm_import(ctx: typer.Context, path: Annotated[Path, typer.Argument(help="A recording from `llm export`.")]) -> None:
    """Load a recording so that its calls replay (with llm.replay = "only" or "prefer")."""
    from nanoresearch.llm.replay import import_recording

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the recording {path}: {exc}") from None
    with session(ctx) as (settings, store, user_id):
        count = import_recording(store, user_id, data)
    err.print(f"imported {count} calls for {settings.user}")


@app.command("ask", epilog=examples(
    'nanoresearch llm ask "What is a Bloom filter?" --provider local',
    'nanoresearch llm ask "Summarise attention." --provider openai --model gpt-4o-mini --json',
))
def llm_ask(
    ctx: typer.Context,
    prompt: Annotated[str, typer.Argument(help="What to ask.")],
    provider: Annotated[Optional[str], typer.Option("--provider", "-p", help="Endpoint name (local, openai, deepseek, anthropic, …), or replay / replay:NAME to answer only from recordings.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Model name; default: the stage's or the endpoint's.")] = None,
    stage: Annotated[str, typer.Option(help=f"Stage whose model settings to use: {', '.join(MODEL_ROLES)}.")] = "planning",
    schema: Annotated[Optional[Path], typer.Option(help="JSON schema file; the reply is validated against it.")] = None,
    system: Annotated[Optional[str], typer.Option(help="System message.")] = None,
    max_tokens: Annotated[Optional[int], typer.Option(min=1, help="Most tokens to generate.")] = None,
    temperature: Annotated[Optional[float], typer.Option(min=0.0, max=2.0, help="Sampling temperature (0 = greedy).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reply with usage, cost and latency as JSON.")] = False,
) -> None:
    """Ask a model one question and print the answer (recorded in the store, replayable)."""
    from nanoresearch.llm.client import LLM
    from nanoresearch.llm.provider import Message

    messages = ([Message(role="system", content=system)] if system else []) + [Message(role="user", content=prompt)]
    with session(ctx) as (settings, store, user_id):
        endpoint = provider or settings.stage(stage).endpoint
        json_schema = read_schema(schema) if schema else None
        llm = LLM(settings, store, user_id)
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
