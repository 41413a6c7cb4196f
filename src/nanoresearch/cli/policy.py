"""`nanoresearch policy train | status | history | rollback VERSION | reset`: the planner's per-user adapter.

torch is imported only by `train` and `rollback`, which load the model.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nanoresearch.cli.common import err, out, session, settings_from
from nanoresearch.config import Settings
from nanoresearch.errors import UserError
from nanoresearch.policy.adapters import (
    AdapterError,
    PolicyPaths,
    VersionMeta,
    active_version,
    parse_version,
    policy_paths,
    read_meta,
    read_metrics,
    version_numbers,
)
from nanoresearch.policy.metrics import ProbeSet, UpdateMetrics
from nanoresearch.policy.triples import ReplayBuffer, triples_from_store
from nanoresearch.store import Store

app = typer.Typer(help="The planner's per-user adapter, trained by SDPO on your feedback.", no_args_is_help=True)


@app.command("train", epilog="Examples:\n  nanoresearch policy train\n  nanoresearch policy train --steps 12 --probes probes.json --json")
def train(
    ctx: typer.Context,
    steps: Annotated[int | None, typer.Option(min=1, max=1000, help="Optimizer steps (default: policy.steps).")] = None,
    probes: Annotated[str | None, typer.Option(help="A JSON file of probe pairs (ProbeSet) instead of derived ones.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Train the planner's adapter on your feedback not yet learned from, and check the update."""
    from nanoresearch.policy.train import train_user

    probe_set = _read_probes(probes) if probes else None
    with session(ctx) as (settings, store, user_id):
        if steps is not None:
            settings = settings.model_copy(update={"policy": settings.policy.model_copy(update={"steps": steps})})
        pending = _status(settings, store, user_id, policy_paths(settings))["pending feedback"]
        if pending:  # said before the model loads, so the first line is what happens next
            err.print(f"checking {pending} new feedback for relevance (policy.min_relevance = {settings.policy.min_relevance}),"
                      f" then training the planner of {settings.user} on what passes ({settings.policy.steps} steps) ...")
        result = train_user(settings, store, probes=probe_set)
    if as_json:
        out.print_json(result.model_dump_json())
        return
    for item in result.skipped:
        err.print(f"[dim]feedback {item.feedback_id} skipped: {escape(item.reason)}[/]")
    for flagged in result.flagged:
        err.print(f"[yellow]feedback {flagged.feedback_id} flagged:[/] {escape(flagged.feedback)!r}: {escape(flagged.reason)}")
    colour = {"trained": "green", "rolled_back": "red", "flagged": "yellow"}.get(result.status, "dim")
    out.print(f"[{colour}]{result.status}[/]: {escape(result.message)}")
    if result.metrics:
        _print_wide(_metrics_table([(result.metrics.version, None, result.metrics)], None))


def _read_probes(path: str) -> ProbeSet:
    try:
        with open(path, encoding="utf-8") as file:
            return ProbeSet.model_validate(json.load(file))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read probe pairs from {path}: {str(exc).splitlines()[0]}",
                        hint='a JSON object {"method": ..., "user": [pairs], "control": [pairs]}') from None


@app.command("status", epilog="Examples:\n  nanoresearch policy status\n  nanoresearch policy status --json")
def status(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The active adapter, the replay buffer and the feedback waiting to be learned from."""
    with session(ctx) as (settings, store, user_id):
        info = _status(settings, store, user_id, policy_paths(settings))
    if as_json:
        out.print_json(json.dumps(info))
        return
    for key, value in info.items():
        out.print(f"{key:>16}: {escape(str(value))}")


def _status(settings: Settings, store: Store, user_id: int, paths: PolicyPaths) -> dict[str, Any]:
    model = settings.stage("planner").model
    buffer = ReplayBuffer(paths.buffer, settings.policy.buffer_size)
    triples, _ = triples_from_store(store, user_id, model)
    active = active_version(paths)
    return {
        "user": settings.user, "planner": model, "active": "base" if active is None else f"v{active}",
        "versions": len(version_numbers(paths)), "buffer": f"{len(buffer.triples)}/{settings.policy.buffer_size} triples",
        "pending feedback": len(buffer.pending(triples)), "trains": settings.policy.when, "folder": str(paths.root),
    }


@app.command("history", epilog="Examples:\n  nanoresearch policy history\n  nanoresearch policy history --json")
def history(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every adapter version with its measured gap, probe margins and drift."""
    paths = policy_paths(settings_from(ctx))
    rows = [_version_row(paths, v) for v in version_numbers(paths)]
    active = active_version(paths)
    if as_json:
        out.print_json(json.dumps([
            {"version": v, "active": v == active, "meta": m.model_dump() if m else None,
             "metrics": x.model_dump() if x else None} for v, m, x in rows
        ]))
        return
    if not rows:
        out.print(f"no adapter versions yet for {escape(str(paths.root.parent.name))}: the planner is the base model")
        return
    _print_wide(_metrics_table(rows, active))


def _version_row(paths: PolicyPaths, version: int) -> tuple[int, VersionMeta | None, UpdateMetrics | None]:
    try:
        meta = read_meta(paths, version)
    except AdapterError:
        meta = None
    return version, meta, read_metrics(paths, version)


def _print_wide(table: Table) -> None:
    # Piped output gets rich's 80 columns, which would cut the figures; a terminal keeps its own width.
    Console(width=max(out.width, 120)).print(table)


def _metrics_table(rows: list[tuple[int, VersionMeta | None, UpdateMetrics | None]], active: int | None) -> Table:
    """One row a version (* = active): feedback trained + replayed, then each figure before → after."""
    table = Table(box=box.SIMPLE, pad_edge=False)
    for column in ("version", "status", "fb", "gap |Δlog|", "gap KL", "probe margin", "control", "KL base", "ppl×"):
        table.add_column(column, no_wrap=True)
    for version, _meta, metrics in rows:
        name = f"{'*' if version == active else ' '}v{version}"
        if metrics is None:
            table.add_row(name, "[red]unreadable[/]", *[""] * 7)
            continue
        b, a = metrics.before, metrics.after
        table.add_row(
            name, "[red]rolled back[/]" if metrics.rolled_back else "kept", f"{len(metrics.trained)}+{len(metrics.replayed)}",
            f"{b.gap.abs_log_ratio:.2f}→{a.gap.abs_log_ratio:.2f}", f"{b.gap.kl:.2f}→{a.gap.kl:.2f}",
            f"{b.margin:+.3f}→{a.margin:+.3f}", f"{b.control_margin:+.3f}→{a.control_margin:+.3f}",
            f"{a.drift.kl_to_base:.3f}", f"{a.drift.perplexity_ratio:.2f}",
        )
    return table


@app.command("rollback", epilog="Examples:\n  nanoresearch policy rollback v2")
def rollback(ctx: typer.Context, version: Annotated[str, typer.Argument(help="The version to make active, e.g. v2.")]) -> None:
    """Make an earlier (or any kept) adapter version the planner's again."""
    from nanoresearch.policy.adapters import rollback as do_rollback

    settings = settings_from(ctx)
    meta = do_rollback(settings, parse_version(version))
    out.print(f"the planner of {settings.user} now uses v{meta.version} (made {meta.created_at})")


@app.command("reset", epilog="Examples:\n  nanoresearch policy reset\n  nanoresearch policy reset --purge")
def reset(
    ctx: typer.Context,
    purge: Annotated[bool, typer.Option(help="Also delete every version and the replay buffer.")] = False,
) -> None:
    """Go back to the base planner (versions are kept unless --purge)."""
    from nanoresearch.policy.adapters import reset as do_reset

    settings = settings_from(ctx)
    do_reset(settings, purge)
    out.print(f"the planner of {settings.user} is the base model again" + ("; versions and buffer deleted" if purge else ""))
