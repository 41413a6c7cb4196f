"""`nanoresearch watch [RUN]`: follow a run from another terminal, or from a pipe, until it ends; and
where a running run is now (its live stage, how long it has run, its last step), which `status` shows.

`watch` reads what the run writes as it goes: the events of its `log.jsonl` and its trials in the
store. It prints them as the run printed them (each stage's `done` line with its time, tokens, money
and budget left), with the run's status line underneath in a terminal and a heartbeat line after a
quiet spell elsewhere, and returns once the run is no longer running.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from nanoresearch.cli.common import open_run, out
from nanoresearch.pipeline.progress import StageCost, done_line, duration_text
from nanoresearch.runs import shown_status
from nanoresearch.store import Store
from nanoresearch.store.models import Step, Trial

POLL_S = 0.5  # how often to look for new events: the log and the store are local files
LOG_FILE = "log.jsonl"

app = typer.Typer()


@app.command("watch")
def watch(ctx: typer.Context, run_id: Annotated[Optional[str], typer.Argument(help="Run id (default: your latest).")] = None) -> None:
    """Follow a run live until it ends: its stages with their time, tokens, money and budget left, its trials,
    and a sign of life during long model calls. Works in a terminal and in a pipe.

    Example: nanoresearch watch run-20261205-080102-ab12 | tee run.log
    """
    from nanoresearch.cli.display import Reporter  # the pipeline loads torch: only when watching

    (_, store, user_id), record = open_run(ctx, run_id)
    out.print(f"watching [bold]{record.id}[/] ({shown_status(record)}); Ctrl-C stops watching, not the run")
    with Reporter(out, store, user_id, record.id, record.options.budget, log_warnings=False) as reporter:
        for at, message in run_lines(store, record.id, Path(record.workspace) / LOG_FILE):
            reporter.say(message, at=at)
    out.print(f"run {record.id} is {shown_status(store.get_run(record.id))}")


def run_lines(store: Store, run_id: str, log: Path, poll_s: float = POLL_S) -> Iterator[tuple[float, str]]:
    """(when, line) for each event of the run and each trial that starts or ends, in the order they happened,
    until the run stops running and all it wrote has been read."""
    from nanoresearch.pipeline.orchestrator import STAGES

    descriptions = {stage.name: stage.description for stage in STAGES}
    offset, opened = 0, ""
    trials_seen: dict[int, str] = {}
    while True:
        running = shown_status(store.get_run(run_id)) == "running"  # read before the log: nothing written after is lost
        events, offset = new_events(log, offset)
        lines: list[tuple[float, str]] = []
        for event in events:
            stage = event.get("stage")
            if stage in descriptions and stage != opened:  # a stage's first event opens it, whatever that event is
                opened = stage
                lines.append((event["t"], f"[stage] {stage}: {descriptions[stage]}"))
            lines.extend((event["t"], message) for message in event_lines(event))
        lines.extend(trial_lines(store.trials(run_id), trials_seen))
        yield from sorted(lines, key=lambda line: line[0])
        if not running:
            return
        time.sleep(poll_s)


def new_events(log: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """The whole lines the log gained since `offset`, as events, and the offset after them; a line being
    written is left for the next look."""
    try:
        with log.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:  # the run has not logged anything yet
        return [], offset
    complete = data[: data.rfind(b"\n") + 1]
    events = []
    for line in complete.decode("utf-8", errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue  # not an event (a line cut by a crash): nothing to show
    return [e for e in events if isinstance(e, dict) and "event" in e and "t" in e], offset + len(complete)


def event_lines(event: dict[str, Any]) -> list[str]:
    """How the run printed this event (nothing for the bookkeeping ones)."""
    kind, stage = event["event"], event.get("stage", "")
    if kind == "stage_plan":
        from nanoresearch.pipeline.coevolution.planner import plan_lines

        return [f"  {line}" for line in plan_lines(event.get("plan", {}), event.get("degenerate", {}))]
    if kind == "stage_done":
        has_cost = all(name in event for name in StageCost.model_fields)  # a run logged before costs were
        return [done_line(event.get("summary", ""), StageCost.model_validate(event) if has_cost else None)]
    if kind == "stage_failed":
        return [f"  {stage} failed: {event.get('error', '')}"]
    if kind == "feedback":
        return [f"  feedback on {stage}: {event.get('action', '')} {event.get('text', '')}".rstrip()]
    if kind in ("run_paused", "run_stopped"):
        return [f"run {kind.removeprefix('run_')} in {stage}: {event.get('message') or event.get('reason', '')}"]
    if kind == "policy_update":
        return [f"planner policy: {event.get('message', '')}"]
    if kind == "run_done":
        return ["run done"]
    return []


def trial_lines(trials: list[Trial], seen: dict[int, str]) -> list[tuple[float, str]]:
    """A line for each trial that started or ended since the last look (`seen`: the state each was shown in)."""
    from nanoresearch.trials.lineage import outcome_text

    lines = []
    for trial in trials:
        state = outcome_text(trial)
        if not trial.job_id or seen.get(trial.id) == state:  # never started, or shown as it is
            continue
        seen[trial.id] = state
        at = trial.ended_at if trial.status != "running" and trial.ended_at else time.time()
        lines.append((at, f"trial {trial.id} ({trial.proposer}): {state}"))
    return lines


# where a running run is now (status)


def seconds_since(stamp: str) -> float:
    """Seconds since a store timestamp (ISO 8601 with its time zone)."""
    return time.time() - datetime.fromisoformat(stamp).timestamp()


def live_stage_cells(steps: list[Step], stage: Step) -> tuple[str, str]:
    """The status and summary cells of the stage running now: how long it has run (since it was saved
    `running`) and the last step it checkpointed."""
    done = [s for s in steps if s.stage == stage.stage and s.step != "stage" and s.status == "done"]
    last = max(done, key=lambda s: s.updated_at, default=None)
    summary = f"last step: {last.step}, {duration_text(seconds_since(last.updated_at))} ago" if last else ""
    return f"running {duration_text(seconds_since(stage.updated_at))}", summary


def between_stages(steps: list[Step]) -> str:
    """What a running run whose stages are all done or pending is doing: what comes after its last checkpoint."""
    last = max(steps, key=lambda s: s.updated_at, default=None)
    if last is None:
        return "now: starting"
    ago = duration_text(seconds_since(last.updated_at))
    if last.stage == "run":
        return f"now: ending the run (skills, planner policy); last step: {last.step}, {ago} ago"
    return f"now: between stages, after {last.stage} (feedback, memory); last step: {last.step}, {ago} ago"
