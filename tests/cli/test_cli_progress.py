"""What a run prints where no terminal is (a pipe, `| tee`, CI, nohup): every stage's `done` line carries the
stage's time, tokens and money and the budget left, read from the store's ledger, and a long quiet spell
(a model call) gets a heartbeat line."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import pytest
from recorded_demo import replay_demo
from rich.console import Console

from nanoresearch.cli.display import Reporter
from nanoresearch.compute.budget import spent
from nanoresearch.config import load_settings
from nanoresearch.pipeline.context import STAGE_NAMES
from nanoresearch.pipeline.progress import StageCost, done_line, stage_cost
from nanoresearch.runs import new_run
from nanoresearch.store import Store
from nanoresearch.store.budget import parse_budget
from nanoresearch.store.models import RunOptions

DONE = re.compile(r"^  done \((?P<time>\d+\.\d s|\d+ m \d\d s|\d+ h \d\d m) · (?P<tokens>[\d,]+) tokens · "
                  r"\$(?P<usd>\d+\.\d{4}) · left: (?P<left>[^)]*)\): \S")


@pytest.mark.slow
def test_a_recorded_run_in_a_pipe_shows_time_tokens_money_and_budget_on_every_stage_line(capsys, monkeypatch) -> None:
    recording, result = replay_demo(capsys, monkeypatch)
    done = [line for line in result.err.splitlines() if line.lstrip().startswith("done")]
    assert len(done) == len(STAGE_NAMES)
    matches = [DONE.match(line) for line in done]
    assert all(matches), done
    # The numbers are the ledger's: the trials left after the last stage are the budget less the trials run.
    with Store(load_settings().db_path) as store:
        user_id = store.ensure_user("alice")
        (run,) = store.list_runs(user_id)
        used = spent(store, user_id, run.id)
    assert used.trials > 0
    assert matches[-1]["left"] == f"trials {parse_budget(recording['budget']).trials - used.trials:,.0f}"
    assert sum(float(m["tokens"].replace(",", "")) for m in matches) == used.tokens  # a replayed call costs nothing


def test_a_stage_cost_is_what_the_ledger_charged_while_it_ran(store, settings) -> None:
    user_id = store.ensure_user(settings.user)
    run = new_run(store, settings, user_id, "p", "a goal of some words", RunOptions(budget=parse_budget("tokens=10k,usd=1")),
                  kind="research")
    store.charge(user_id, run.id, "tokens", 1500, "llm_call:1")  # before the stage: the run's, not the stage's
    before = spent(store, user_id, run.id)
    store.charge(user_id, run.id, "tokens", 1234, "llm_call:2")
    store.charge(user_id, run.id, "usd", 0.0125, "llm_call:2")
    cost = stage_cost(store, user_id, run.id, before, 75.5)
    assert cost == StageCost(seconds=75.5, tokens=1234, usd=0.0125, left={"tokens": 10_000 - 2734, "usd": 1 - 0.0125})
    assert DONE.match(done_line("a summary", cost))
    assert done_line("a summary", cost).startswith("  done (1 m 15 s · 1,234 tokens · $0.0125 · left: tokens 7,266, usd $0.9875)")


def test_without_a_terminal_a_quiet_spell_gets_a_heartbeat_line(store, settings) -> None:
    user_id = store.ensure_user(settings.user)
    run = new_run(store, settings, user_id, "p", "a goal of some words", RunOptions(budget=parse_budget("trials=3")),
                  kind="research")
    store.charge(user_id, run.id, "tokens", 321, "llm_call:1")
    written = io.StringIO()
    console = Console(file=written, force_terminal=False, width=200)
    with Reporter(console, store, user_id, run.id, run.options.budget, heartbeat_s=0.2) as reporter:
        reporter.say("[stage] ideation: search the literature")
        deadline = time.monotonic() + 60
        while "still working" not in written.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
    heartbeat = next(line for line in written.getvalue().splitlines() if "still working" in line)
    assert re.search(r"ideation \d+\.\d s · 0 trials · 321 tokens · \$0\.0000 · left: trials 3$", heartbeat), heartbeat


def test_a_librarys_warning_during_a_run_goes_to_the_runs_log_not_the_screen(store, settings, capsys) -> None:
    import numpy

    user_id = store.ensure_user(settings.user)
    run = new_run(store, settings, user_id, "p", "a goal of some words", RunOptions(), kind="research")
    written = io.StringIO()
    with Reporter(Console(file=written, force_terminal=False), store, user_id, run.id, run.options.budget):
        assert numpy.isnan(numpy.mean([]))  # numpy warns: "Mean of empty slice"
    assert "Mean of empty slice" not in written.getvalue() + capsys.readouterr().err
    events = [json.loads(line) for line in (Path(run.workspace) / "log.jsonl").read_text().splitlines()]
    warned = {e["message"]: e for e in events if e["event"] == "warning"}
    assert warned["Mean of empty slice"]["category"] == "RuntimeWarning"
    assert "numpy" in warned["Mean of empty slice"]["source"]
